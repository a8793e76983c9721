// The job metrics (namespace pgops, dimension database): what each job reports, publishing that
// never fails a job, and the two sinks: Powertools EMF in the functions, PutMetricData in the task.
import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { metricSinkFor } from '../../../../bin/metrics.ts';
import { loadSettings } from '../../../../functions/core/config.ts';
import { ConfigError } from '../../../../functions/core/errors.ts';
import { createTextLogger } from '../../../../functions/core/logger.ts';
import {
  backupMetrics, baseBackupMetrics, cleanupMetrics, healthMetrics, publishMetrics, restoreTestFailedMetrics, restoreTestMetrics, SUCCESS_METRIC,
  type MetricDatum, type MetricSink,
} from '../../../../functions/core/metrics.ts';
import { emfSink, type EmfMetrics } from '../../../../functions/shared/metrics.ts';

const names = (d: MetricDatum[]) => d.map((x) => x.name);

describe('what each job reports', () => {
  it('a backup: one success, its duration in seconds and its size', () => {
    expect(backupMetrics({ durationMs: 12_345, bytes: 4096 })).toEqual([
      { name: 'BackupSucceeded', unit: 'Count', value: 1 },
      { name: 'BackupDurationSeconds', unit: 'Seconds', value: 12.345 },
      { name: 'BackupBytes', unit: 'Bytes', value: 4096 },
    ]);
  });

  it('a cleanup: one success and the rows deleted over every rule; a dry run nothing', () => {
    expect(cleanupMetrics({ dryRun: false, rows: [{ deleted: 10 }, { deleted: 0 }, { deleted: 5 }] })).toEqual([
      { name: 'CleanupSucceeded', unit: 'Count', value: 1 },
      { name: 'CleanupRowsDeleted', unit: 'Count', value: 15 },
    ]);
    expect(cleanupMetrics({ dryRun: false, rows: [] })[1]!.value).toBe(0);
    expect(cleanupMetrics({ dryRun: true, rows: [{ deleted: 10 }] })).toEqual([]);
  });

  it('a restore test: success with its duration (the RTO), or RestoreTestFailed', () => {
    expect(restoreTestMetrics({ ok: true, durationMs: 90_000 })).toEqual([
      { name: 'RestoreTestSucceeded', unit: 'Count', value: 1 },
      { name: 'RestoreTestDurationSeconds', unit: 'Seconds', value: 90 },
    ]);
    expect(restoreTestMetrics({ ok: false, durationMs: 5 })).toEqual([{ name: 'RestoreTestFailed', unit: 'Count', value: 1 }]);
    expect(restoreTestMetrics(undefined)).toEqual(restoreTestFailedMetrics());
  });

  it('health and base backup: one success each; every success metric is the one its silence alarm sums', () => {
    expect(names(healthMetrics())).toEqual([SUCCESS_METRIC.health]);
    expect(names(baseBackupMetrics())).toEqual([SUCCESS_METRIC.baseBackup]);
    expect(SUCCESS_METRIC).toEqual({ backup: 'BackupSucceeded', health: 'HealthSucceeded', cleanup: 'CleanupSucceeded', restoreTest: 'RestoreTestSucceeded', baseBackup: 'BaseBackupSucceeded' });
  });
});

describe('publishMetrics', () => {
  const logger = () => {
    const lines: string[] = [];
    return { lines, logger: createTextLogger({ level: 'debug', write: (l) => lines.push(l) }) };
  };

  it('hands the data and the database to the sink', async () => {
    const got: Array<[string, MetricDatum[]]> = [];
    const sink: MetricSink = { publish: (db, data) => { got.push([db, data]); return Promise.resolve(); } };
    await publishMetrics(sink, 'auth', healthMetrics(), logger().logger);
    expect(got).toEqual([['auth', healthMetrics()]]);
  });

  it('never fails the job: a sink error is logged (redacted) and swallowed', async () => {
    const { lines, logger: l } = logger();
    const sink: MetricSink = { publish: () => Promise.reject(new Error('throttled: postgres://app:hunter2@db/auth')) };
    await expect(publishMetrics(sink, 'auth', healthMetrics(), l)).resolves.toBeUndefined();
    expect(lines.join('')).toMatch(/could not publish the job's metrics/);
    expect(lines.join('')).toContain('HealthSucceeded');
    expect(lines.join('')).not.toContain('hunter2');
  });

  it('does nothing without a sink or without data', async () => {
    let calls = 0;
    const sink: MetricSink = { publish: () => { calls++; return Promise.resolve(); } };
    await publishMetrics(undefined, 'auth', healthMetrics(), logger().logger);
    await publishMetrics(sink, 'auth', [], logger().logger);
    expect(calls).toBe(0);
  });
});

describe('the functions\' sink: Powertools EMF', () => {
  it('names only the database as dimension, adds each metric with its unit, and flushes once per publish', async () => {
    const calls: unknown[][] = [];
    const recorder: EmfMetrics = {
      addDimension: (...a) => calls.push(['dimension', ...a]),
      addMetric: (...a) => calls.push(['metric', ...a]),
      publishStoredMetrics: () => calls.push(['flush']),
    };
    let created = 0;
    const sink = emfSink(() => { created++; return recorder; });
    await sink.publish('auth', backupMetrics({ durationMs: 2000, bytes: 10 }));
    await sink.publish('auth', healthMetrics());
    expect(created).toBe(1);
    expect(calls).toEqual([
      ['dimension', 'database', 'auth'], ['metric', 'BackupSucceeded', 'Count', 1], ['metric', 'BackupDurationSeconds', 'Seconds', 2], ['metric', 'BackupBytes', 'Bytes', 10], ['flush'],
      ['dimension', 'database', 'auth'], ['metric', 'HealthSucceeded', 'Count', 1], ['flush'],
    ]);
  });
});

describe('the task\'s sink: PutMetricData (PGOPS_METRICS=cloudwatch)', () => {
  const settings = (env: Record<string, string>) => loadSettings({}, { ...env, PGOPS_STORAGE: 'file:///tmp/x' }, '/tmp');
  it('is off unless the environment asks for it, and refuses an unknown value', () => {
    expect(metricSinkFor(settings({}))).toBeUndefined();
    expect(metricSinkFor(settings({ PGOPS_METRICS: 'off' }))).toBeUndefined();
    expect(metricSinkFor(settings({ PGOPS_METRICS: 'cloudwatch' }))).toBeDefined();
    expect(() => settings({ PGOPS_METRICS: 'emf' })).toThrow(ConfigError);
  });

  it('puts every datum in namespace pgops with the database dimension, in one call', async () => {
    const cw = mockClient(CloudWatchClient);
    cw.on(PutMetricDataCommand).resolves({});
    const sink = metricSinkFor({ metrics: 'cloudwatch' }, () => Promise.resolve(new CloudWatchClient({ region: 'eu-west-1' })))!;
    await sink.publish('billing', restoreTestMetrics({ ok: true, durationMs: 1500 }));
    const sent = cw.commandCalls(PutMetricDataCommand).map((c) => c.args[0].input);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.Namespace).toBe('pgops');
    expect(sent[0]!.MetricData!.map((d) => [d.MetricName, d.Unit, d.Value, d.Dimensions])).toEqual([
      ['RestoreTestSucceeded', 'Count', 1, [{ Name: 'database', Value: 'billing' }]],
      ['RestoreTestDurationSeconds', 'Seconds', 1.5, [{ Name: 'database', Value: 'billing' }]],
    ]);
    cw.restore();
  });

  it('lets a failed call reach publishMetrics, which logs it', async () => {
    const cw = mockClient(CloudWatchClient);
    cw.on(PutMetricDataCommand).rejects(new Error('AccessDenied: not authorized to perform cloudwatch:PutMetricData'));
    const sink = metricSinkFor({ metrics: 'cloudwatch' }, () => Promise.resolve(new CloudWatchClient({ region: 'eu-west-1' })))!;
    await expect(sink.publish('billing', baseBackupMetrics())).rejects.toThrow(/AccessDenied/);
    cw.restore();
  });
});
