// The stateless stack: functions, the Fargate task, schedules, alerting. It can be destroyed and
// redeployed at will; the backups live in the storage stack.
import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as triggers from 'aws-cdk-lib/triggers';
import type { Construct } from 'constructs';
import type { PgopsConfig } from './config.ts';
import { topicAlarm } from './constructs/alarm.ts';
import { Alerting } from './constructs/alerting.ts';
import { DatabaseOps, type DatabaseOpsProps } from './constructs/database-ops.ts';
import { JobImage } from './constructs/job-image.ts';
import { notifySlackFunction } from './constructs/jobs/notify-slack.ts';
import type { PgopsFunction } from './constructs/pgops-function.ts';
import { acknowledge, NAG } from './nag.ts';
import { backupBucketName } from './permissions.ts';

export interface OpsStackProps extends StackProps {
  config: PgopsConfig;
  bucketKey: kms.IKey;
  /** The repository root: function entries, migrations/, docker/Dockerfile. */
  repoRoot: string;
}

/** "auth-db" -> "AuthDb": for output keys, which allow letters and digits only. */
export function pascal(id: string): string {
  return id.split(/[-_]/).map((p) => p.charAt(0).toUpperCase() + p.slice(1)).join('');
}

export class OpsStack extends Stack {
  readonly alerting: Alerting;
  readonly databases: DatabaseOps[] = [];
  readonly notifySlack?: PgopsFunction;
  readonly cluster: ecs.CfnCluster;

  constructor(scope: Construct, id: string, props: OpsStackProps) {
    super(scope, id, props);
    const { config } = props;
    const logRetention = config.logRetentionDays as logs.RetentionDays;

    this.alerting = new Alerting(this, 'Alerts', { environmentName: config.environment, emails: config.alertEmails });

    // Failed asynchronous invocations (after Lambda's retries) and schedules that could not be
    // delivered: kept 14 days for inspection, and an alarm as soon as one arrives.
    const failureQueue = this.deadLetterQueue('FailedInvocations', `pgops-${config.environment}-failed-invocations`,
      'A function failed even after its retries (an on-failure record is in the queue: its requestContext names the function and condition). The job\'s own alert usually says why; if not (timeout, out of memory, crash before the job started), read the function\'s logs at the time of the record, then purge the message.');
    const scheduleDlq = this.deadLetterQueue('ScheduleDeadLetters', `pgops-${config.environment}-schedule-dead-letters`,
      'EventBridge Scheduler could not start a job (the message attributes ERROR_CODE and ERROR_MESSAGE say why: a missing permission, a deleted function, throttling). That run did not happen: fix the cause and invoke the function or task by hand.');

    // The L2 Cluster would create a VPC; Fargate RunTask needs only the cluster.
    this.cluster = new ecs.CfnCluster(this, 'Cluster', {
      clusterSettings: [{ name: 'containerInsights', value: 'enabled' }],
    });
    this.alerting.alertOnFailedTasks(this.cluster.attrArn);

    // By name, from this stack's own account and region: no cross-stack reference for the bucket.
    const bucket = s3.Bucket.fromBucketName(this, 'BackupBucket', backupBucketName(config.environment));
    const image = new JobImage(this, 'JobImage', { repoRoot: props.repoRoot, pgMajor: config.pgMajor, architecture: config.architecture });
    const group = new scheduler.CfnScheduleGroup(this, 'ScheduleGroup', { name: `pgops-${config.environment}` });

    for (const database of config.databases) {
      const ops = this.databaseOps(group, {
        config, database, repoRoot: props.repoRoot, bucket, bucketKey: props.bucketKey, alerting: this.alerting, clusterArn: this.cluster.attrArn,
        clusterName: this.cluster.ref, image: image.asset, failureQueue, scheduleDeadLetterQueue: scheduleDlq, scheduleGroupName: group.name!, logRetention,
      });
      this.databases.push(ops);
    }

    if (config.slackWebhookSecretArn) {
      this.notifySlack = notifySlackFunction(this, {
        config, webhookSecretArn: config.slackWebhookSecretArn, repoRoot: props.repoRoot, alerting: this.alerting, failureQueue, logRetention,
      });
    }

    new CfnOutput(this, 'AlertTopicArn', { value: this.alerting.topic.topicArn, description: 'Subscribe more endpoints here' });
    new CfnOutput(this, 'ClusterArn', { value: this.cluster.attrArn, description: 'Where the long-job tasks run' });
  }

  /** One database's jobs, the output pipelines invoke, and the optional migrate-on-deploy trigger. */
  private databaseOps(group: scheduler.CfnScheduleGroup, props: DatabaseOpsProps): DatabaseOps {
    const db = props.database;
    const ops = new DatabaseOps(this, `Db-${db.id}`, props);
    ops.schedules.schedules.forEach((s) => s.addResourceDependency(group));

    new CfnOutput(this, `MigrateFunctionArn-${db.id}`, {
      key: `MigrateFunctionArn${pascal(db.id)}`,
      description: `Invoke from pipelines: aws lambda invoke --function-name <this> --payload '{"command":"up"}' (database ${db.id})`,
      value: ops.migrate.function.functionArn,
    });

    if (ops.pitr) this.pitrOutputs(db.id, ops);

    if (props.config.migrateOnDeploy) {
      // Re-runs whenever the migrate function changes, i.e. whenever migrations/ changes.
      const trigger = new triggers.Trigger(this, `MigrateOnDeploy-${db.id}`, {
        handler: ops.migrate.function,
        invocationType: triggers.InvocationType.REQUEST_RESPONSE,
        timeout: Duration.minutes(14),
        executeOnHandlerChange: true,
      });
      trigger.executeAfter(ops.migrate);
    }
    return ops;
  }

  /** Where an operator finds what PITR deployed: the task `pgops pitr` runs on, the receiver or the host's policy. */
  private pitrOutputs(id: string, ops: DatabaseOps): void {
    const pitr = ops.pitr!;
    new CfnOutput(this, `PitrTaskDefinitionArn-${id}`, {
      key: `PitrTaskDefinitionArn${pascal(id)}`,
      description: `pgops pitr of database ${id}: aws ecs run-task --task-definition <this> --overrides '{"containerOverrides":[{"name":"pgops","command":["pitr", ...]}]}'`,
      value: ops.task.taskDefinition.taskDefinitionArn,
    });
    if (pitr.receiver) {
      new CfnOutput(this, `WalReceiverService-${id}`, {
        key: `WalReceiverService${pascal(id)}`,
        description: `The WAL receiver of database ${id} (pg_receivewal through slot ${pitr.settings.slot ?? ''})`,
        value: pitr.receiver.service.attrName,
      });
    }
    if (pitr.hostPolicy) {
      new CfnOutput(this, `WalArchivePolicyArn-${id}`, {
        key: `WalArchivePolicyArn${pascal(id)}`,
        description: `Attach to the role of database ${id}'s host (instance profile): pgops wal push (archive_command) and wal fetch`,
        value: pitr.hostPolicy.managedPolicyArn,
      });
    }
  }

  private deadLetterQueue(id: string, alarmName: string, whatToDo: string): sqs.Queue {
    const queue = new sqs.Queue(this, id, {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(queue, NAG.queueIsDeadLetterQueue);
    topicAlarm(this, `${id}Alarm`, {
      alarmName,
      description: whatToDo,
      metric: queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: 'Maximum' }),
      threshold: 1,
      topic: this.alerting.topic,
    });
    return queue;
  }
}
