// "<job> has not succeeded within its schedule plus slack": one alarm per scheduled job of a
// database, on the job's success metric (functions/core/metrics.ts) summed over a window derived
// from the schedule (schedule-window.ts), silence (no data) breaching. A weekly restore test does
// not fit CloudWatch's 7-day range with slack: its alarm reads the age of the last successful
// restore test, which the health check reports every run (silence of the health check breaches too).
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type { Construct } from 'constructs';
import { METRIC_NAMESPACE, SUCCESS_METRIC, type ScheduledJob } from '../../../functions/core/config.ts';
import { healthAlarmWindow, silenceWindow } from '../../schedule-window.ts';
import { topicAlarm } from '../alarm.ts';
import type { JobContext } from './context.ts';

/** The job's name in the alarm's name: pgops-<env>-<db>-<name>-silent. */
export const SILENT_ALARM_JOB: Record<ScheduledJob, string> = {
  backup: 'backup',
  health: 'health',
  cleanup: 'cleanup',
  restoreTest: 'restore-test',
  baseBackup: 'basebackup',
};

export interface SilenceAlarmProps {
  job: ScheduledJob;
  /** The job's schedule expression. */
  expression: string;
  /** What on-call should check and do, after "<job> of <db> has not succeeded for N h". */
  whatToDo: string;
}

export function silentAlarmName(ctx: JobContext, job: ScheduledJob): string {
  return `pgops-${ctx.config.environment}-${ctx.database.id}-${SILENT_ALARM_JOB[job]}-silent`;
}

/** The alarm, or undefined for an at() schedule (it runs once: nothing to wait for after). */
export function silenceAlarm(scope: Construct, ctx: JobContext, props: SilenceAlarmProps): cloudwatch.Alarm | undefined {
  const { database: db } = ctx;
  const window = silenceWindow(props.expression);
  const id = `${SILENT_ALARM_JOB[props.job].split('-').map((p) => p.charAt(0).toUpperCase() + p.slice(1)).join('')}SilentAlarm`;
  if (window.kind === 'once') return undefined;
  if (window.kind === 'too-long') {
    if (props.job !== 'restoreTest') throw new Error(`the ${props.job} schedule ${props.expression} runs less often than a silence alarm can watch (${window.gapHours} h between runs; CloudWatch evaluates at most 7 days)`);
    return restoreTestAgeAlarm(scope, ctx, id, props, window.gapHours);
  }
  return topicAlarm(scope, id, {
    alarmName: silentAlarmName(ctx, props.job),
    description: `${SILENT_ALARM_JOB[props.job]} of ${db.id} has not succeeded for ${window.windowHours} h (schedule ${props.expression} plus slack), or its metric did not arrive. ${props.whatToDo}`,
    metric: new cloudwatch.Metric({
      namespace: METRIC_NAMESPACE,
      metricName: SUCCESS_METRIC[props.job],
      dimensionsMap: { database: db.id },
      statistic: 'Sum',
      period: window.period,
    }),
    threshold: 1,
    comparison: 'below',
    evaluationPeriods: window.evaluationPeriods,
    datapointsToAlarm: window.evaluationPeriods,
    missingDataBreaches: true,
    topic: ctx.alerting.topic,
  });
}

/** Slack of an age-based silence alarm: a quarter of the gap, at most a day. */
function ageSlackHours(gapHours: number): number {
  return Math.min(24, Math.ceil(gapHours / 4));
}

function restoreTestAgeAlarm(scope: Construct, ctx: JobContext, id: string, props: SilenceAlarmProps, gapHours: number): cloudwatch.Alarm {
  const { config, database: db } = ctx;
  const health = healthAlarmWindow(config.schedules.health);
  const maxHours = gapHours + ageSlackHours(gapHours);
  return topicAlarm(scope, id, {
    alarmName: silentAlarmName(ctx, props.job),
    description: `No successful restore test of ${db.id} for ${maxHours} h (schedule ${props.expression} plus slack), or the health check that measures it stopped reporting. ${props.whatToDo}`,
    metric: new cloudwatch.Metric({
      namespace: METRIC_NAMESPACE,
      metricName: 'RestoreTestAgeHours',
      dimensionsMap: { database: db.id },
      statistic: 'Maximum',
      period: health.period,
    }),
    threshold: maxHours,
    comparison: 'above',
    evaluationPeriods: health.evaluationPeriods,
    datapointsToAlarm: health.evaluationPeriods,
    missingDataBreaches: true,
    topic: ctx.alerting.topic,
  });
}

/** What on-call does for each job's silence (after "<job> of <db> has not succeeded for N h"). */
function whatToDo(ctx: JobContext, job: ScheduledJob): string {
  const db = ctx.database.id;
  const prefix = `pgops-${ctx.config.environment}-${db}`;
  switch (job) {
    case 'backup': return `Look for the backup's own alert (function error or task failure: pgops-${ctx.config.environment}-task-failures) and the schedule dead-letter queue. Invoke the backup function with {"database": "${db}"} once fixed; backup-age tells how old the newest backup is.`;
    case 'health': return `Nothing watches ${db} while it is silent: read the health function's logs (${prefix}-health-errors, throttles, the schedule dead-letter queue), then invoke it by hand.`;
    case 'cleanup': return 'Expired rows and backups past retention accumulate: read the cleanup function\'s logs and its errors alarm; the next run continues where the last one stopped.';
    case 'restoreTest': return `Backups are not being proven restorable: look for the restore test's alert and task failure (its log group, stream prefix job), then run the task with "backups verify latest --restore-test".`;
    case 'baseBackup': return `Point-in-time recovery relies on an ever older base backup (longer replay, and retention keeps WAL for it): look for the base backup's alert and task failure, fix (REPLICATION role, WAL archive), then run the base-backup task (${prefix}-basebackup).`;
  }
}

/** The silence alarms of a database's scheduled jobs: backup, health, cleanup, the restore test (when scheduled), the base backup (pitr). */
export function jobSilenceAlarms(scope: Construct, ctx: JobContext, pitr?: { settings: { baseBackupSchedule: string } }): cloudwatch.Alarm[] {
  const s = ctx.config.schedules;
  const jobs: Array<[ScheduledJob, string | null]> = [
    ['backup', s.backup],
    ['health', s.health],
    ['cleanup', s.cleanup],
    ['restoreTest', s.restoreTest],
    ['baseBackup', pitr ? pitr.settings.baseBackupSchedule : null],
  ];
  return jobs.flatMap(([job, expression]) => {
    if (expression === null) return [];
    const alarm = silenceAlarm(scope, ctx, { job, expression, whatToDo: whatToDo(ctx, job) });
    return alarm ? [alarm] : [];
  });
}
