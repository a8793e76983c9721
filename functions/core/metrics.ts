// What each scheduled job reports to CloudWatch once it is done (namespace pgops, dimension
// `database` only, so an alarm or a dashboard names the database alone): a success count that the
// silence alarms sum, and a few figures for the dashboard. Where they go is the edge's choice (a
// sink): Powertools EMF in a function, PutMetricData in the Fargate task, nowhere on a laptop.
import { METRIC_NAMESPACE, SUCCESS_METRIC, type ScheduledJob } from './config.ts';
import type { Logger } from './logger.ts';
import { redactString } from './redact.ts';

export { METRIC_NAMESPACE, SUCCESS_METRIC, type ScheduledJob };

export type MetricUnitName = 'Count' | 'Seconds' | 'Bytes' | 'None';

export interface MetricDatum {
  name: string;
  unit: MetricUnitName;
  value: number;
}

/** Where a job's metrics go. */
export interface MetricSink {
  publish(databaseId: string, data: MetricDatum[]): Promise<void>;
}

const seconds = (ms: number) => Number((ms / 1000).toFixed(3));

/** A logical backup that completed (its manifest is written). */
export function backupMetrics(m: { durationMs: number; bytes: number }): MetricDatum[] {
  return [
    { name: SUCCESS_METRIC.backup, unit: 'Count', value: 1 },
    { name: 'BackupDurationSeconds', unit: 'Seconds', value: seconds(m.durationMs) },
    { name: 'BackupBytes', unit: 'Bytes', value: m.bytes },
  ];
}

/** A completed health run, whatever its status: the check itself ran. */
export function healthMetrics(): MetricDatum[] {
  return [{ name: SUCCESS_METRIC.health, unit: 'Count', value: 1 }];
}

/** A cleanup run that returned: the rows it deleted, over every rule. A dry run reports nothing. */
export function cleanupMetrics(r: { dryRun: boolean; rows: Array<{ deleted: number }> }): MetricDatum[] {
  if (r.dryRun) return [];
  return [
    { name: SUCCESS_METRIC.cleanup, unit: 'Count', value: 1 },
    { name: 'CleanupRowsDeleted', unit: 'Count', value: r.rows.reduce((n, rule) => n + rule.deleted, 0) },
  ];
}

/** A restore test's outcome: success with its duration (the RTO), or a failure. */
export function restoreTestMetrics(r: { ok: boolean; durationMs: number } | undefined): MetricDatum[] {
  if (!r?.ok) return restoreTestFailedMetrics();
  return [
    { name: SUCCESS_METRIC.restoreTest, unit: 'Count', value: 1 },
    { name: 'RestoreTestDurationSeconds', unit: 'Seconds', value: seconds(r.durationMs) },
  ];
}

export function restoreTestFailedMetrics(): MetricDatum[] {
  return [{ name: 'RestoreTestFailed', unit: 'Count', value: 1 }];
}

/** A base backup whose manifest is written (its WAL reached the archive). */
export function baseBackupMetrics(): MetricDatum[] {
  return [{ name: SUCCESS_METRIC.baseBackup, unit: 'Count', value: 1 }];
}

/**
 * Publish through `sink` without ever failing the job: the job's work is done, a metric that could
 * not be sent is logged (and its silence alarm will say so if it keeps happening).
 */
export async function publishMetrics(sink: MetricSink | undefined, databaseId: string, data: MetricDatum[], logger: Logger): Promise<void> {
  if (!sink || data.length === 0) return;
  try {
    await sink.publish(databaseId, data);
  } catch (err) {
    logger.error('could not publish the job\'s metrics', { metrics: data.map((d) => d.name), error: redactString(err instanceof Error ? err.message : String(err)) });
  }
}
