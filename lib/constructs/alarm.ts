// Every pgops alarm: a CloudWatch alarm that notifies the alert topic when it fires and when it
// recovers, with a description that tells on-call what to do and links the environment's dashboard.
import { Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { Alerting } from './alerting.ts';
import { dashboardConsoleUrl, dashboardName } from './dashboard.ts';

export interface TopicAlarmProps {
  alarmName: string;
  /** What happened and what to do about it. */
  description: string;
  metric: cloudwatch.IMetric;
  threshold: number;
  /** `atLeast` (the default): metric >= threshold; `above`: metric > threshold; `below`: metric < threshold. */
  comparison?: 'atLeast' | 'above' | 'below';
  /** Consecutive periods that must breach (default 1). */
  evaluationPeriods?: number;
  /** Breaching datapoints among them, when not all of them. */
  datapointsToAlarm?: number;
  /** Whether silence (no datapoint) counts as a breach: yes for "it should have reported". */
  missingDataBreaches?: boolean;
  topic: sns.ITopic;
}

const COMPARISONS = {
  atLeast: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
  above: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
  below: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
} as const;

/** CloudWatch's limit on an alarm description, in characters. */
export const ALARM_DESCRIPTION_MAX = 1024;
// Room for the region in the link (a token until deployment): the longest region code is 14 characters.
const REGION_ROOM = 20;

/**
 * The description, then "Dashboard: <console link>" on its own line when the topic is an
 * environment's alert topic (notify-slack shows that line as a link); the description is cut so
 * the whole fits CloudWatch's limit whatever the region.
 */
export function describeWithDashboard(scope: Construct, description: string, topic: sns.ITopic): string {
  const alerting = topic.node.scope;
  if (!(alerting instanceof Alerting)) return description.length <= ALARM_DESCRIPTION_MAX ? description : `${description.slice(0, ALARM_DESCRIPTION_MAX - 1)}…`;
  const name = dashboardName(alerting.environmentName);
  const line = (region: string) => `\n\nDashboard: ${dashboardConsoleUrl(region, name)}`;
  const room = ALARM_DESCRIPTION_MAX - line('x'.repeat(REGION_ROOM)).length;
  const text = description.length <= room ? description : `${description.slice(0, room - 1)}…`;
  return `${text}${line(Stack.of(scope).region)}`;
}

export function topicAlarm(scope: Construct, id: string, props: TopicAlarmProps): cloudwatch.Alarm {
  const alarm = new cloudwatch.Alarm(scope, id, {
    alarmName: props.alarmName,
    alarmDescription: describeWithDashboard(scope, props.description, props.topic),
    metric: props.metric,
    threshold: props.threshold,
    evaluationPeriods: props.evaluationPeriods ?? 1,
    datapointsToAlarm: props.datapointsToAlarm,
    comparisonOperator: COMPARISONS[props.comparison ?? 'atLeast'],
    treatMissingData: props.missingDataBreaches ? cloudwatch.TreatMissingData.BREACHING : cloudwatch.TreatMissingData.NOT_BREACHING,
  });
  const action = new cwActions.SnsAction(props.topic);
  alarm.addAlarmAction(action);
  alarm.addOkAction(action);
  return alarm;
}
