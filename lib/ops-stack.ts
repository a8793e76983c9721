// The environment's shared, stateless stack: the alert topic (and notify-slack), the ECS cluster, the
// dead-letter queues and their alarms, the schedule group, the dashboard. Each database's jobs live in its own stack
// (database-stack.ts), which reads these; nothing here grows with the number of databases. It can be
// destroyed and redeployed at will; the backups live in the storage stack.
import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import type { PgopsConfig } from './config.ts';
import { topicAlarm } from './constructs/alarm.ts';
import { Alerting } from './constructs/alerting.ts';
import { PgopsDashboard } from './constructs/dashboard.ts';
import { notifySlackFunction } from './constructs/jobs/notify-slack.ts';
import { TaskFailures } from './constructs/task-failures.ts';
import type { PgopsFunction } from './constructs/pgops-function.ts';
import { acknowledge, NAG } from './nag.ts';

export interface OpsStackProps extends StackProps {
  config: PgopsConfig;
  /** The repository root: the notify-slack entry. */
  repoRoot: string;
}

/** What every database stack uses from the ops stack. */
export interface SharedOps {
  alerting: Alerting;
  clusterArn: string;
  /** The cluster's name: the ClusterName dimension of its AWS/ECS metrics. */
  clusterName: string;
  failureQueue: sqs.IQueue;
  scheduleDeadLetterQueue: sqs.IQueue;
  /** Found by name (`pgops-<env>`): the database stacks depend on this stack, which creates it. */
  scheduleGroupName: string;
}

export class OpsStack extends Stack {
  readonly alerting: Alerting;
  readonly notifySlack?: PgopsFunction;
  readonly cluster: ecs.CfnCluster;
  readonly shared: SharedOps;
  /** Failed Fargate tasks: the TaskFailures metric and the pgops-<env>-task-failures alarm. */
  readonly taskFailures: TaskFailures;
  readonly dashboard: PgopsDashboard;

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
    const failedTaskRule = this.alerting.alertOnFailedTasks(this.cluster.attrArn);
    this.taskFailures = new TaskFailures(this, 'TaskFailures', {
      environmentName: config.environment, rule: failedTaskRule, clusterArn: this.cluster.attrArn, alerting: this.alerting, logRetention,
    });

    const group = new scheduler.CfnScheduleGroup(this, 'ScheduleGroup', { name: `pgops-${config.environment}` });
    this.shared = {
      alerting: this.alerting, clusterArn: this.cluster.attrArn, clusterName: this.cluster.ref,
      failureQueue, scheduleDeadLetterQueue: scheduleDlq, scheduleGroupName: group.name!,
    };

    if (config.slackWebhookSecretArn) {
      this.notifySlack = notifySlackFunction(this, {
        config, webhookSecretArn: config.slackWebhookSecretArn, repoRoot: props.repoRoot, alerting: this.alerting, failureQueue, logRetention,
      });
    }

    // Metrics found by name and dimension: one resource for the environment, not one per database.
    this.dashboard = new PgopsDashboard(this, 'Dashboard', {
      environment: config.environment,
      databases: config.databases.map((db) => ({
        id: db.id,
        ...(db.pitr ? { maxWalArchiveAgeMinutes: db.pitr.maxWalArchiveAgeMinutes ?? config.health.maxWalArchiveAgeMinutes } : {}),
      })),
      maxBackupAgeHours: config.health.maxBackupAgeHours,
    });

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
