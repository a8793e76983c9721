// CDK app entry (cdk.json: "npx tsx bin/app.ts"). The configuration is the context "pgops" of
// cdk.json, or a file: `npx cdk synth -c pgopsConfigFile=deploy/prod.json`.
import { App } from 'aws-cdk-lib';
import { PgopsConfigError } from '../lib/config.ts';
import { buildPgopsApp } from '../lib/pgops-app.ts';

const app = new App();
try {
  buildPgopsApp(app);
} catch (err) {
  if (!(err instanceof PgopsConfigError)) throw err;
  // Every bad field, without a stack trace: this is the operator's input, not a bug.
  process.stderr.write(`${err.message}\n`);
  process.exit(2);
}
