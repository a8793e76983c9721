// The migrate function: invoked by deployment pipelines (and optionally on deploy); applies the
// migrations/ shipped in its bundle. It reads its secret and alerts; it touches no storage.
import { Duration } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { PgopsFunction } from '../pgops-function.ts';
import { alertAndSecretStatements, BUNDLED_MIGRATIONS, nodeCode, nodeEnvironment, type JobContext } from './context.ts';

export function migrateFunction(scope: Construct, ctx: JobContext): PgopsFunction {
  const fn = new PgopsFunction(scope, 'Migrate', {
    ...ctx.functionDefaults,
    job: 'migrate',
    description: `pgops migrate (${ctx.database.id}): applies migrations/ shipped in this bundle`,
    code: nodeCode(ctx, 'migrate', true),
    timeout: Duration.minutes(15),
    memorySize: 512,
    retryAttempts: 0,
    environment: { ...nodeEnvironment(ctx), ...BUNDLED_MIGRATIONS },
    onError: 'A migration failed (or the function crashed): the pipeline that invoked it has failed too. Read the error in the alert or the function logs, fix the migration, and deploy again; `pgops migrate status` shows what is applied.',
  });
  alertAndSecretStatements(ctx).forEach((s) => fn.allow(s));
  return fn;
}
