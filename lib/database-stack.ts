// One database's stack, `pgops-<env>-db-<id>`: everything pgops runs for that database (functions,
// Fargate tasks, schedules, alarms, point-in-time recovery, migrate-on-deploy) and the outputs
// pipelines and operators read. The environment's shared resources (alert topic, cluster, dead-letter
// queues, schedule group) stay in the ops stack, deployed first.
//
// Why a stack per database (not one ops stack, not nested stacks):
// - Limits: a database is 45 to 70 resources; one stack for all stopped at 10 databases
//   (CloudFormation's 500). Apart, each stack stays far below, whatever the count, with room for the
//   per-database alarms and metrics still to come.
// - Blast radius: a failed deployment (a migration that fails under migrateOnDeploy) rolls back only
//   its own database; nested stacks would roll the whole environment back with it.
// - Deployment: `cdk deploy pgops-prod-db-auth` changes one database; `--all --concurrency N` deploys
//   them in parallel. Upgrading from one ops stack works in one `cdk deploy --all`: the ops stack
//   drops the per-database resources before the database stacks create them again (same names).
// - References: the few shared values (topic and its key, cluster, queues) are read by CDK's weak
//   cross-stack references (cdk.json: Fn::GetStackOutput, one output per value, no exports to lock);
//   the bucket and the schedule group are found by name, the image by its content hash.
import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import type { DatabaseConfig, PgopsConfig } from './config.ts';
import { DatabaseOps } from './constructs/database-ops.ts';
import { JobImage } from './constructs/job-image.ts';
import { MigrateOnDeploy } from './constructs/migrate-on-deploy.ts';
import type { SharedOps } from './ops-stack.ts';
import { backupBucketName } from './permissions.ts';

/** Stack names allow letters, digits and "-": "_" in a database id becomes "-" (ids stay unique: config.ts). */
export function databaseStackName(environment: string, databaseId: string): string {
  return `pgops-${environment}-db-${databaseId.replace(/_/g, '-')}`;
}

/** "auth-db" -> "AuthDb": for output keys, which allow letters and digits only. */
export function pascal(id: string): string {
  return id.split(/[-_]/).map((p) => p.charAt(0).toUpperCase() + p.slice(1)).join('');
}

export interface DatabaseStackProps extends StackProps {
  config: PgopsConfig;
  database: DatabaseConfig;
  shared: SharedOps;
  bucketKey: kms.IKey;
  /** The repository root: function entries, migrations/, docker/Dockerfile. */
  repoRoot: string;
}

export class DatabaseStack extends Stack {
  readonly database: DatabaseConfig;
  readonly ops: DatabaseOps;
  readonly migrateOnDeploy?: MigrateOnDeploy;

  constructor(scope: Construct, id: string, props: DatabaseStackProps) {
    super(scope, id, props);
    const { config, database: db, shared } = props;
    this.database = db;
    const logRetention = config.logRetentionDays as logs.RetentionDays;
    // By name, from this stack's own account and region: no reference to the storage stack.
    const bucket = s3.Bucket.fromBucketName(this, 'BackupBucket', backupBucketName(config.environment));
    // The same image in every database stack: one asset (same content hash), built and pushed once per deployment.
    const image = new JobImage(this, 'JobImage', { repoRoot: props.repoRoot, pgMajor: config.pgMajor, architecture: config.architecture });

    // The construct id keeps the logical ids readable across stacks (DbauthMigrateFunction...).
    this.ops = new DatabaseOps(this, `Db-${db.id}`, {
      config, database: db, repoRoot: props.repoRoot, bucket, bucketKey: props.bucketKey, image: image.asset, logRetention,
      alerting: shared.alerting, clusterArn: shared.clusterArn, clusterName: shared.clusterName,
      failureQueue: shared.failureQueue, scheduleDeadLetterQueue: shared.scheduleDeadLetterQueue, scheduleGroupName: shared.scheduleGroupName,
    });

    if (config.migrateOnDeploy) {
      // Re-runs whenever the migrate function changes, i.e. whenever migrations/ changes.
      this.migrateOnDeploy = new MigrateOnDeploy(this, `MigrateOnDeploy-${db.id}`, {
        migrate: this.ops.migrate,
        timeout: Duration.minutes(14),
        environmentName: config.environment,
        databaseId: db.id,
        architecture: config.architecture,
        logRetention,
      });
    }
    this.outputs();
  }

  /**
   * What pipelines and operators read, under the keys the single ops stack used (only the stack name
   * changed): the migrate function; with `pitr`, the task `pgops pitr` runs on and the receiver or the host's policy.
   */
  private outputs(): void {
    const id = this.database.id;
    const ops = this.ops;
    new CfnOutput(this, 'MigrateFunctionArn', {
      key: `MigrateFunctionArn${pascal(id)}`,
      description: `Invoke from pipelines: aws lambda invoke --function-name <this> --payload '{"command":"up"}' (database ${id})`,
      value: ops.migrate.function.functionArn,
    });
    if (ops.managedPitr) {
      new CfnOutput(this, 'PitrStateMachineArn', {
        key: `PitrStateMachineArn${pascal(id)}`,
        description: `Point-in-time recovery of database ${id} in AWS: pgops pitr --rds-instance|--aurora-cluster ... --in-aws --state-machine <this>`,
        value: ops.managedPitr.stateMachine.stateMachineArn,
      });
    }
    const pitr = ops.pitr;
    if (!pitr) return;
    new CfnOutput(this, 'PitrTaskDefinitionArn', {
      key: `PitrTaskDefinitionArn${pascal(id)}`,
      description: `pgops pitr of database ${id}: aws ecs run-task --task-definition <this> --overrides '{"containerOverrides":[{"name":"pgops","command":["pitr", ...]}]}'`,
      value: ops.task.taskDefinition.taskDefinitionArn,
    });
    if (pitr.receiver) {
      new CfnOutput(this, 'WalReceiverService', {
        key: `WalReceiverService${pascal(id)}`,
        description: `The WAL receiver of database ${id} (pg_receivewal through slot ${pitr.settings.slot ?? ''})`,
        value: pitr.receiver.service.attrName,
      });
    }
    if (pitr.hostPolicy) {
      new CfnOutput(this, 'WalArchivePolicyArn', {
        key: `WalArchivePolicyArn${pascal(id)}`,
        description: `Attach to the role of database ${id}'s host (instance profile): pgops wal push (archive_command) and wal fetch`,
        value: pitr.hostPolicy.managedPolicyArn,
      });
    }
  }
}
