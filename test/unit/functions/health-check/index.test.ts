import { Metrics } from '@aws-lambda-powertools/metrics';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { CheckResult, HealthRun } from '../../../../functions/core/health/index.ts';
import { emitHealthMetrics } from '../../../../functions/health-check/index.ts';

afterEach(() => { vi.restoreAllMocks(); });

const run = (backup: HealthRun['backup']): HealthRun => ({
  result: {
    status: 'critical',
    checks: [
      { name: 'connection', status: 'ok', summary: '' },
      { name: 'backup-age', status: 'critical', summary: '' },
      { name: 'unused-indexes', status: 'info', summary: '' },
      { name: 'bloat', status: 'unknown', summary: '' },
    ] as CheckResult[],
    database: 'app', environment: 'prod', checkedAt: '2026-11-22T00:00:00Z', durationMs: 5,
  },
  backup,
});

describe('health metrics', () => {
  it('emits one EMF document: namespace pgops, dimension database only, status 0/1/2/3 per check, backup age and bytes', () => {
    const out: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: string | Uint8Array) => { out.push(String(chunk)); return true; }));
    const m = new Metrics({ namespace: 'pgops', serviceName: 'pgops-health-check' });
    m.clearDefaultDimensions();
    emitHealthMetrics(m, run({ newest: { id: '20261122T020000Z-3fa2', ageHours: 3.14159, bytes: 123456 } }));
    const emf = out.map((l) => JSON.parse(l) as Record<string, unknown> & { _aws: { CloudWatchMetrics: Array<{ Namespace: string; Dimensions: string[][]; Metrics: Array<{ Name: string; Unit: string }> }> } });
    expect(emf).toHaveLength(1);
    const doc = emf[0]!;
    const cw = doc._aws.CloudWatchMetrics[0]!;
    expect(cw.Namespace).toBe('pgops');
    expect(cw.Dimensions).toEqual([['database']]);
    expect(doc).toMatchObject({
      database: 'app',
      HealthStatus: 2,
      'HealthStatus.connection': 0,
      'HealthStatus.backup-age': 2,
      'HealthStatus.unused-indexes': 0,
      'HealthStatus.bloat': 3,
      BackupAgeHours: 3.14,
      BackupBytes: 123456,
    });
    expect(cw.Metrics.find((x) => x.Name === 'BackupBytes')!.Unit).toBe('Bytes');
  });

  it('without a backup there is no age or size metric (the status metric says critical)', () => {
    const names: string[] = [];
    emitHealthMetrics({ addDimension() {}, addMetric(n) { names.push(n); }, publishStoredMetrics() {} }, run({}));
    expect(names).toEqual(['HealthStatus', 'HealthStatus.connection', 'HealthStatus.backup-age', 'HealthStatus.unused-indexes', 'HealthStatus.bloat', 'HealthSucceeded']);
  });

  it('counts every completed run (HealthSucceeded 1, whatever the status) and reports the age of the last successful restore test', () => {
    const got: Array<[string, number]> = [];
    const sink = { addDimension() {}, addMetric(n: string, _u: unknown, v: number) { got.push([n, v]); }, publishStoredMetrics() {} };
    const withRestoreTest = (check: CheckResult): HealthRun => {
      const r = run({});
      return { ...r, result: { ...r.result, checks: [...r.result.checks, check] } };
    };
    const now = new Date('2026-11-22T12:00:00Z');
    emitHealthMetrics(sink, withRestoreTest({ name: 'restore-test', status: 'ok', summary: '', details: { checkedAt: '2026-11-20T12:00:00.000Z' } }), now);
    expect(got.filter(([n]) => n === 'RestoreTestAgeHours' || n === 'HealthSucceeded')).toEqual([['RestoreTestAgeHours', 48], ['HealthSucceeded', 1]]);
    // The newest restore test failed: the age is that of the last success before it.
    got.length = 0;
    emitHealthMetrics(sink, withRestoreTest({ name: 'restore-test', status: 'critical', summary: '', details: { checkedAt: '2026-11-22T06:00:00.000Z', lastSuccess: '2026-11-14T12:00:00.000Z' } }), now);
    expect(got.find(([n]) => n === 'RestoreTestAgeHours')).toEqual(['RestoreTestAgeHours', 192]);
    // No success ever: no datapoint (the silence alarm counts missing data as breaching).
    got.length = 0;
    emitHealthMetrics(sink, withRestoreTest({ name: 'restore-test', status: 'critical', summary: '', details: { checkedAt: '2026-11-22T06:00:00.000Z', lastSuccess: null } }), now);
    expect(got.map(([n]) => n)).not.toContain('RestoreTestAgeHours');
  });
});
