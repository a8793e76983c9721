// Lambda entry for the scheduled health check (EventBridge). A failing health result is not a
// function error: it alerts (deduplicated) and returns the result. Only a crash of the job throws.
// CloudWatch metrics (namespace pgops, dimension database) let an alarm notice a check that stopped running.
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import * as z from 'zod';
import { deliverHealthAlerts } from '../core/health/alert-dedupe.ts';
import { healthExitCode, runHealthDetailed, type HealthResult, type HealthRun } from '../core/health/index.ts';
import { SUCCESS_METRIC } from '../core/metrics.ts';
import { openStorage } from '../core/storage/index.ts';
import { defaultRdsClient } from '../core/aws/rds-client.ts';
import { parseEvent, runJob, type HandlerDeps } from '../shared/handler.ts';
import type { Storage } from '../core/storage/types.ts';

/** What the handler needs of Powertools Metrics (tests pass a recorder). */
export interface MetricsSink {
  addDimension(name: string, value: string): unknown;
  addMetric(name: string, unit: (typeof MetricUnit)[keyof typeof MetricUnit], value: number): unknown;
  publishStoredMetrics(): unknown;
}

export interface HealthHandlerDeps extends HandlerDeps {
  metrics?: () => MetricsSink;
  /** Overrides the configured storage (tests). */
  storage?: Storage;
  /** Overrides the configured replica storage (tests). */
  replicaStorage?: Storage;
  clock?: () => Date;
}

// A scheduled event carries nothing we need; an operator may invoke it with { "alert": false }.
export const healthEventSchema = z.looseObject({ alert: z.boolean().optional() });

function defaultMetrics(): MetricsSink {
  const m = new Metrics({ namespace: 'pgops', serviceName: 'pgops-health-check' });
  // Only `database` as dimension, so an alarm names it alone.
  m.clearDefaultDimensions();
  return m;
}

/** The restore-test check's last success (its details: checkedAt when the newest passed, lastSuccess when it failed). */
function lastRestoreTestSuccessAgeHours(check: HealthResult['checks'][number] | undefined, now: Date): number | undefined {
  const d = check?.details as { checkedAt?: unknown; lastSuccess?: unknown } | undefined;
  const at = check?.status === 'critical' ? d?.lastSuccess : d?.checkedAt;
  if (typeof at !== 'string') return undefined;
  const ms = now.getTime() - Date.parse(at);
  return Number.isFinite(ms) ? Number((Math.max(0, ms) / 3_600_000).toFixed(2)) : undefined;
}

/**
 * Metric names: HealthStatus and HealthStatus.<check> (0 ok, 1 warning, 2 critical, 3 unknown),
 * WalArchiveAgeMinutes, BackupAgeHours, BackupBytes, RestoreTestAgeHours, and HealthSucceeded (1 per run).
 */
export function emitHealthMetrics(sink: MetricsSink, run: HealthRun, now: Date = new Date()): void {
  const r: HealthResult = run.result;
  sink.addDimension('database', r.database);
  sink.addMetric('HealthStatus', MetricUnit.NoUnit, healthExitCode(r.status));
  for (const c of r.checks) {
    sink.addMetric(`HealthStatus.${c.name}`, MetricUnit.NoUnit, healthExitCode(c.status === 'info' ? 'ok' : c.status));
  }
  // The age of the newest archived WAL segment, when there is an archive: the CDK's WAL alarm reads it.
  const wal = r.checks.find((c) => c.name === 'wal-archiving');
  if (wal?.value !== undefined) sink.addMetric('WalArchiveAgeMinutes', MetricUnit.NoUnit, wal.value);
  // Hours since the last successful restore test: the silence alarm of a weekly restore test reads
  // it (a sum of RestoreTestSucceeded cannot span a week plus slack: CloudWatch's 7-day range).
  const restoreTestAge = lastRestoreTestSuccessAgeHours(r.checks.find((c) => c.name === 'restore-test'), now);
  if (restoreTestAge !== undefined) sink.addMetric('RestoreTestAgeHours', MetricUnit.NoUnit, restoreTestAge);
  sink.addMetric(SUCCESS_METRIC.health, MetricUnit.Count, 1);
  const newest = run.backup.newest;
  if (newest) {
    sink.addMetric('BackupAgeHours', MetricUnit.NoUnit, Number(newest.ageHours.toFixed(2)));
    sink.addMetric('BackupBytes', MetricUnit.Bytes, newest.bytes);
  }
  sink.publishStoredMetrics();
}

export function createHealthHandler(deps: HealthHandlerDeps = {}) {
  let metrics: MetricsSink | undefined;
  return async (event: unknown, context?: { awsRequestId?: string }): Promise<HealthResult> => runJob('health', { rds: defaultRdsClient, ...deps, openStorage }, async (rt) => {
    const e = parseEvent(healthEventSchema, event, 'health-check');
    const healthDeps = await rt.healthDeps({ ...(deps.storage ? { storage: deps.storage } : {}), ...(deps.replicaStorage ? { replicaStorage: deps.replicaStorage } : {}), clock: deps.clock });
    const run = await runHealthDetailed(healthDeps);
    try {
      emitHealthMetrics((metrics ??= (deps.metrics ?? defaultMetrics)()), run, deps.clock?.());
    } catch (err) {
      rt.logger.error('could not emit health metrics', { error: err instanceof Error ? err.message : String(err) });
    }
    if (e.alert !== false) {
      await deliverHealthAlerts({ result: run.result, alerter: rt.alerter, logger: rt.logger, repeatHours: healthDeps.config.health.alertRepeatHours, storage: healthDeps.storage, clock: deps.clock, runId: context?.awsRequestId });
    }
    return run.result;
  });
}

export const handler = createHealthHandler();
