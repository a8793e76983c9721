// `migrate up` during `cdk deploy` (config migrateOnDeploy): a CloudFormation custom resource whose
// provider invokes the migrate function's current version, and fails the deployment (which rolls
// back this database's stack) when the migration fails. It re-runs when the function changes.
//
// CDK's triggers.Trigger does the same, but builds its provider from raw CloudFormation resources:
// a role with the AWSLambdaBasicExecutionRole managed policy and a function logging into a group
// Lambda creates without retention, all invisible to cdk-nag (whose rules look at CfnRole and
// CfnFunction). This provider is made of L2 constructs, checked by cdk-nag like every function: an
// inline role that may invoke exactly that version and write its own log group, nothing else. Its
// code is CDK's own: the trigger handler behind the custom-resource entry point that answers
// CloudFormation, copied from aws-cdk-lib (the versions the tests ran against).
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { CustomResource, Duration, Stage } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { lambdaArchitecture, type PgopsFunction } from './pgops-function.ts';

const CDK_HANDLERS = join(dirname(createRequire(import.meta.url).resolve('aws-cdk-lib/package.json')), 'custom-resource-handlers', 'dist');

/** The provider's files: the name each has in the bundle, and where aws-cdk-lib keeps it. */
export const PROVIDER_FILES = {
  // Invokes HandlerArn (retrying AccessDenied while IAM propagates); throws on a function error.
  'index.js': join(CDK_HANDLERS, 'triggers', 'lambda', 'index.js'),
  // Calls ./index's handler and PUTs SUCCESS or FAILED (with the error) to CloudFormation's response URL.
  '__entrypoint__.js': join(CDK_HANDLERS, 'core', 'nodejs-entrypoint-handler', 'index.js'),
} as const;

/** The custom resource's type: CDK's trigger handler, CDK's name for it. */
export const TRIGGER_RESOURCE_TYPE = 'Custom::Trigger';

export interface MigrateOnDeployProps {
  migrate: PgopsFunction;
  /** How long the provider waits for the migration (at most 14 minutes: the provider itself has 15). */
  timeout: Duration;
  environmentName: string;
  databaseId: string;
  architecture: 'arm64' | 'x86_64';
  logRetention: logs.RetentionDays;
}

export class MigrateOnDeploy extends Construct {
  readonly provider: lambda.Function;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  readonly resource: CustomResource;

  constructor(scope: Construct, id: string, props: MigrateOnDeployProps) {
    super(scope, id);
    // A new version whenever the function's code or configuration changes: that change re-runs the migration.
    const version = props.migrate.function.currentVersion;

    this.logGroup = new logs.LogGroup(this, 'Logs', { retention: props.logRetention });
    this.role = new iam.Role(this, 'ProviderRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `pgops ${props.environmentName} migrate-on-deploy (${props.databaseId}): invokes the migrate function during cdk deploy`,
    });
    this.role.addToPolicy(new iam.PolicyStatement({ sid: 'WriteOwnLogs', actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [this.logGroup.logGroupArn] }));
    this.role.addToPolicy(new iam.PolicyStatement({ sid: 'InvokeMigrateVersion', actions: ['lambda:InvokeFunction'], resources: [version.functionArn] }));

    this.provider = new lambda.Function(this, 'Provider', {
      description: `pgops migrate-on-deploy (${props.databaseId}): runs migrate up during cdk deploy`,
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambdaArchitecture(props.architecture),
      handler: '__entrypoint__.handler',
      code: lambda.Code.fromAsset(providerDirectory(this)),
      // Room to answer CloudFormation after a migration that used all of props.timeout.
      timeout: props.timeout.plus(Duration.minutes(1)),
      memorySize: 256,
      role: this.role,
      logGroup: this.logGroup,
    });

    this.resource = new CustomResource(this, 'Default', {
      resourceType: TRIGGER_RESOURCE_TYPE,
      serviceToken: this.provider.functionArn,
      properties: {
        HandlerArn: version.functionArn,
        InvocationType: 'RequestResponse',
        Timeout: String(props.timeout.toMilliseconds()),
        ExecuteOnHandlerChange: true,
      },
    });
    // The migration runs once the function, its role and its policy are in place.
    this.resource.node.addDependency(props.migrate);
  }
}

/** The provider's code, assembled once per cloud assembly beside its staged assets (no temporary files left behind). */
function providerDirectory(scope: Construct): string {
  const dir = join(Stage.of(scope)!.assetOutdir, 'pgops-migrate-on-deploy-provider');
  if (existsSync(dir)) return dir;
  mkdirSync(dir, { recursive: true });
  for (const [name, from] of Object.entries(PROVIDER_FILES)) {
    if (!existsSync(from)) throw new Error(`aws-cdk-lib no longer ships ${from}: lib/constructs/migrate-on-deploy.ts must follow its trigger provider`);
    copyFileSync(from, join(dir, name));
  }
  return dir;
}
