// The stateless stack: functions, the Fargate task, schedules, alerting. It can be destroyed and
// redeployed at will; the backups live in the storage stack.
import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as triggers from 'aws-cdk-lib/triggers';
import type { Construct } from 'constructs';
import type { PgopsConfig } from './config.ts';
import { Alerting } from './constructs/alerting.ts';
import { DatabaseOps } from './constructs/database-ops.ts';
import { JobImage } from './constructs/job-image.ts';
import { PgopsFunction } from './constructs/pgops-function.ts';
import { acknowledge, NAG } from './nag.ts';
import { backupBucketName, secretReadStatements } from './permissions.ts';

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

    for (const db of config.databases) {
      const ops = new DatabaseOps(this, `Db-${db.id}`, {
        config,
        database: db,
        repoRoot: props.repoRoot,
        bucket,
        bucketKey: props.bucketKey,
        alerting: this.alerting,
        clusterArn: this.cluster.attrArn,
        image: image.asset,
        failureQueue,
        scheduleDeadLetterQueue: scheduleDlq,
        scheduleGroupName: group.name!,
        logRetention,
      });
      ops.schedules.schedules.forEach((s) => s.addResourceDependency(group));
      this.databases.push(ops);

      new CfnOutput(this, `MigrateFunctionArn-${db.id}`, {
        key: `MigrateFunctionArn${pascal(db.id)}`,
        description: `Invoke from pipelines: aws lambda invoke --function-name <this> --payload '{"command":"up"}' (database ${db.id})`,
        value: ops.migrate.function.functionArn,
      });

      if (config.migrateOnDeploy) {
        // Re-runs whenever the migrate function changes, i.e. whenever migrations/ changes.
        const trigger = new triggers.Trigger(this, `MigrateOnDeploy-${db.id}`, {
          handler: ops.migrate.function,
          invocationType: triggers.InvocationType.REQUEST_RESPONSE,
          timeout: Duration.minutes(14),
          executeOnHandlerChange: true,
        });
        trigger.executeAfter(ops.migrate);
      }
    }

    if (config.slackWebhookSecretArn) {
      this.notifySlack = new PgopsFunction(this, 'NotifySlack', {
        job: 'notify-slack',
        environmentName: config.environment,
        description: 'pgops notify-slack: renders alerts from the topic to Slack',
        code: { node: { entry: `${props.repoRoot}/functions/notify-slack/index.ts` }, repoRoot: props.repoRoot },
        timeout: Duration.seconds(30),
        memorySize: 256,
        // Slack answers again soon after a blip; each message is posted at most three times.
        retryAttempts: 2,
        architecture: config.architecture === 'arm64' ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64,
        logRetention,
        onFailure: failureQueue,
        alarmTopic: this.alerting.topic,
        environment: {
          PGOPS_SLACK_WEBHOOK_SECRET_ID: config.slackWebhookSecretArn,
          PGOPS_ENVIRONMENT: config.environment,
          PGOPS_LOG_LEVEL: config.logLevel,
        },
        onError: 'Alerts are not reaching Slack (the webhook was revoked, the secret changed, or Slack is down); e-mail subscribers still get them. Check the function logs and the webhook secret.',
      });
      secretReadStatements(config.slackWebhookSecretArn, config.slackWebhookSecretKmsKeyArn, 'ReadSlackWebhookSecret').forEach((s) => this.notifySlack!.allow(s));
      this.alerting.subscribeFunction(this.notifySlack.function);
    }

    new CfnOutput(this, 'AlertTopicArn', { value: this.alerting.topic.topicArn, description: 'Subscribe more endpoints here' });
    new CfnOutput(this, 'ClusterArn', { value: this.cluster.attrArn, description: 'Where the long-job tasks run' });
  }

  private deadLetterQueue(id: string, alarmName: string, whatToDo: string): sqs.Queue {
    const queue = new sqs.Queue(this, id, {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(queue, NAG.queueIsDeadLetterQueue);
    const alarm = new cloudwatch.Alarm(this, `${id}Alarm`, {
      alarmName,
      alarmDescription: whatToDo,
      metric: queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: 'Maximum' }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const action = new cwActions.SnsAction(this.alerting.topic);
    alarm.addAlarmAction(action);
    alarm.addOkAction(action);
    return queue;
  }
}
