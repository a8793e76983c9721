// Fargate task failures as a metric and an alarm. The failed-task rule (alerting.ts) also sends
// each stopped task's event to a log group, where a metric filter counts them: pgops/TaskFailures,
// dimension `cluster` (the environment's cluster ARN, so two environments in one account stay
// apart). One alarm per environment fires on the first failure and clears when none follow.
// L1-level wiring on purpose: the events-targets CloudWatchLogGroup target adds a custom resource
// (a Lambda function) only to write the log group's resource policy, which LogGroup does itself.
import { ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { METRIC_NAMESPACE } from '../../functions/core/config.ts';
import { topicAlarm } from './alarm.ts';
import type { Alerting } from './alerting.ts';

export const TASK_FAILURES_METRIC = 'TaskFailures';

export interface TaskFailuresProps {
  environmentName: string;
  /** The failed-task rule (Alerting.alertOnFailedTasks). */
  rule: events.Rule;
  clusterArn: string;
  alerting: Alerting;
  logRetention: logs.RetentionDays;
}

export class TaskFailures extends Construct {
  readonly logGroup: logs.LogGroup;
  readonly metric: cloudwatch.Metric;
  readonly alarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: TaskFailuresProps) {
    super(scope, id);
    // EventBridge writes only to log groups named /aws/events/...; the events stay as evidence.
    const logGroupName = `/aws/events/pgops-${props.environmentName}-task-failures`;
    this.logGroup = new logs.LogGroup(this, 'Events', {
      logGroupName,
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.logGroup.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'EventBridgeWritesFailedTasks',
      principals: [new iam.ServicePrincipal('events.amazonaws.com'), new iam.ServicePrincipal('delivery.logs.amazonaws.com')],
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      resources: [this.logGroup.logGroupArn],
    }));
    const logGroupArn = Stack.of(this).formatArn({ service: 'logs', resource: 'log-group', resourceName: logGroupName, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    // Referenced by name in the target: the rule waits for the group and its policy.
    props.rule.node.addDependency(this.logGroup);
    props.rule.addTarget({ bind: () => ({ arn: logGroupArn, retryPolicy: { maximumRetryAttempts: 8, maximumEventAgeInSeconds: 6 * 3600 } }) });

    new logs.MetricFilter(this, 'Count', {
      logGroup: this.logGroup,
      filterPattern: logs.FilterPattern.stringValue('$.detail.lastStatus', '=', 'STOPPED'),
      metricNamespace: METRIC_NAMESPACE,
      metricName: TASK_FAILURES_METRIC,
      metricValue: '1',
      dimensions: { cluster: '$.detail.clusterArn' },
      unit: cloudwatch.Unit.COUNT,
    });
    this.metric = new cloudwatch.Metric({
      namespace: METRIC_NAMESPACE,
      metricName: TASK_FAILURES_METRIC,
      dimensionsMap: { cluster: props.clusterArn },
      statistic: 'Sum',
      period: Duration.minutes(5),
    });
    this.alarm = topicAlarm(this, 'Alarm', {
      alarmName: `pgops-${props.environmentName}-task-failures`,
      description: `A pgops Fargate task of ${props.environmentName} (large backup, restore test, base backup, restore, pitr, WAL receiver) stopped with a non-zero exit code or never started. `
        + 'The task-stopped alert on this topic names the task, its database (group) and exit code; the job\'s own alert names the cause, and 124 means it hit its deadline (tasks.deadlineMinutes). '
        + `Its log is in the task's log group (stream prefix job); the events are kept in ${logGroupName}. TaskFailedToStart is usually the network (no route to ECR) or capacity. Fix, then run the job again.`,
      metric: this.metric,
      threshold: 1,
      missingDataBreaches: false,
      topic: props.alerting.topic,
    });
  }
}
