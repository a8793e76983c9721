// Every pgops alarm: a CloudWatch alarm that notifies the alert topic when it fires and when it
// recovers, with a description that tells on-call what to do.
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';

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

export function topicAlarm(scope: Construct, id: string, props: TopicAlarmProps): cloudwatch.Alarm {
  const alarm = new cloudwatch.Alarm(scope, id, {
    alarmName: props.alarmName,
    alarmDescription: props.description,
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
