import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { deliverHealthAlerts, emptyAlertState, planHealthAlerts, readAlertState, type AlertState } from '../../../../../functions/core/health/alert-dedupe.ts';
import { MemoryAlerter, type Alert, type Alerter } from '../../../../../functions/core/alerts/alerter.ts';
import { worstStatus, type CheckResult, type CheckStatus, type HealthResult } from '../../../../../functions/core/health/index.ts';
import { addSizeSample, growthSince } from '../../../../../functions/core/health/state.ts';
import { createTextLogger, silentLogger } from '../../../../../functions/core/logger.ts';
import { FileStorage } from '../../../../../functions/core/storage/file.ts';

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function result(statuses: Partial<Record<string, CheckStatus>>): HealthResult {
  const checks = Object.entries({ connection: 'ok', 'backup-age': 'ok', bloat: 'ok', ...statuses }).map(([name, status]) => ({ name, status, summary: `${name} is ${status}` }) as CheckResult);
  return { status: worstStatus(checks.map((c) => c.status)), checks, database: 'app', environment: 'prod', checkedAt: '2026-11-22T00:00:00Z', durationMs: 1 };
}

const at = (h: number) => new Date(Date.UTC(2026, 10, 22) + h * 3_600_000);
const plan = (r: HealthResult, s: AlertState, h: number) => planHealthAlerts(r, s, { now: at(h), repeatHours: 24, runId: 'run-1' });

describe('alert dedupe', () => {
  it('a new failure sends one alert with every failing check, worst first', () => {
    const p = plan(result({ 'backup-age': 'critical', bloat: 'warning' }), emptyAlertState(), 0);
    expect(p.alerts).toHaveLength(1);
    const a = p.alerts[0]!;
    expect(a).toMatchObject({ severity: 'critical', job: 'health', database: 'app', environment: 'prod' });
    expect(a.summary).toBe('backup-age critical: backup-age is critical; bloat warning: bloat is warning');
    expect((a.details as { checks: Array<{ name: string; change: string }> }).checks.map((c) => [c.name, c.change])).toEqual([['backup-age', 'new'], ['bloat', 'new']]);
    expect(a.details).toMatchObject({ runId: 'run-1', overall: 'critical' });
    expect(Object.keys(p.state.checks).sort()).toEqual(['backup-age', 'bloat']);
  });

  it('the same failure is not re-sent within alertRepeatHours, and is after it', () => {
    const s1 = plan(result({ 'backup-age': 'critical' }), emptyAlertState(), 0).state;
    const p2 = plan(result({ 'backup-age': 'critical' }), s1, 1);
    expect(p2.alerts).toEqual([]);
    expect(p2.suppressed).toEqual(['backup-age']);
    const p3 = plan(result({ 'backup-age': 'critical' }), p2.state, 23.9);
    expect(p3.alerts).toEqual([]);
    const p4 = plan(result({ 'backup-age': 'critical' }), p3.state, 24);
    expect(p4.alerts).toHaveLength(1);
    expect(p4.notified).toEqual([{ name: 'backup-age', change: 'repeat' }]);
    expect(p4.state.checks['backup-age']!.since).toBe(at(0).toISOString());
  });

  it('a rise in severity is sent at once; a fall and a rise back within the window are not', () => {
    const s1 = plan(result({ bloat: 'warning' }), emptyAlertState(), 0).state;
    const p2 = plan(result({ bloat: 'critical' }), s1, 1);
    expect(p2.notified).toEqual([{ name: 'bloat', change: 'escalated' }]);
    expect(p2.alerts[0]!.severity).toBe('critical');
    const p3 = plan(result({ bloat: 'warning' }), p2.state, 2);
    expect(p3.alerts).toEqual([]);
    const p4 = plan(result({ bloat: 'critical' }), p3.state, 3);
    expect(p4.alerts).toEqual([]);
    // unknown ranks above warning: a check that stops running after a warning is news
    const p5 = plan(result({ connection: 'unknown' }), emptyAlertState(), 0);
    expect(p5.alerts[0]!.severity).toBe('warning');
  });

  it('a new failing check alerts alone, naming the ones already known', () => {
    const s1 = plan(result({ 'backup-age': 'critical' }), emptyAlertState(), 0).state;
    const p = plan(result({ 'backup-age': 'critical', bloat: 'warning' }), s1, 1);
    expect(p.alerts).toHaveLength(1);
    expect(p.alerts[0]!.severity).toBe('warning');
    expect(p.alerts[0]!.summary).toBe('bloat warning: bloat is warning');
    expect(p.alerts[0]!.details).toMatchObject({ alsoFailing: 'backup-age' });
  });

  it('a recovery sends resolved once and forgets the check', () => {
    const s1 = plan(result({ 'backup-age': 'critical', bloat: 'warning' }), emptyAlertState(), 0).state;
    const p = plan(result({ bloat: 'warning' }), s1, 2);
    expect(p.alerts).toHaveLength(1);
    expect(p.alerts[0]).toMatchObject({ severity: 'resolved', summary: 'recovered: backup-age; still failing: bloat' });
    expect((p.alerts[0]!.details as { checks: unknown[] }).checks).toEqual([{ name: 'backup-age', status: 'ok', summary: 'backup-age is ok', was: 'critical', failingSince: at(0).toISOString() }]);
    expect(Object.keys(p.state.checks)).toEqual(['bloat']);
    const p2 = plan(result({}), p.state, 3);
    expect(p2.alerts.map((a) => [a.severity, a.summary])).toEqual([['resolved', 'recovered: bloat; overall ok']]);
    expect(plan(result({}), p2.state, 4).alerts).toEqual([]);
  });

  it('info (unused indexes) never alerts', () => {
    expect(plan(result({ bloat: 'info' }), emptyAlertState(), 0).alerts).toEqual([]);
  });
});

describe('deliverHealthAlerts', () => {
  function storage(): FileStorage {
    const d = mkdtempSync(join(tmpdir(), 'pgops-alerts-'));
    dirs.push(d);
    return new FileStorage(pathToFileURL(d).href);
  }

  it('keeps the state in <database>/state/alerts.json and dedupes across runs', async () => {
    const st = storage();
    const alerter = new MemoryAlerter();
    const run = (r: HealthResult, h: number) => deliverHealthAlerts({ result: r, alerter, logger: silentLogger, repeatHours: 24, storage: st, clock: () => at(h) });
    expect((await run(result({ 'backup-age': 'critical' }), 0)).sent).toHaveLength(1);
    expect((await run(result({ 'backup-age': 'critical' }), 1)).sent).toHaveLength(0);
    expect((await st.list('app/state/')).map((o) => o.key)).toEqual(['app/state/alerts.json']);
    expect((await readAlertState(st, 'app')).checks['backup-age']).toMatchObject({ status: 'critical', lastSentStatus: 'critical' });
    expect((await run(result({}), 2)).sent.map((a) => a.severity)).toEqual(['resolved']);
    expect(alerter.sent.map((a) => a.severity)).toEqual(['critical', 'resolved']);
  });

  it('a failed send is logged, not thrown, and retried on the next run', async () => {
    const st = storage();
    const lines: string[] = [];
    let fail = true;
    const sent: Alert[] = [];
    const flaky: Alerter = { async send(a) { if (fail) throw new Error('Slack answered 500'); sent.push(a); } };
    const run = (h: number) => deliverHealthAlerts({ result: result({ 'backup-age': 'critical' }), alerter: flaky, logger: createTextLogger({ write: (l) => lines.push(l) }), repeatHours: 24, storage: st, clock: () => at(h) });
    await expect(run(0)).resolves.toEqual({ sent: [], suppressed: [] });
    expect(lines.join('')).toContain('could not send the health alert error="Slack answered 500"');
    fail = false;
    expect((await run(1)).sent).toHaveLength(1);
    expect((await run(2)).sent).toHaveLength(0);
    expect(sent).toHaveLength(1);
  });

  it('without storage every failing run alerts', async () => {
    const alerter = new MemoryAlerter();
    await deliverHealthAlerts({ result: result({ bloat: 'warning' }), alerter, logger: silentLogger, repeatHours: 24 });
    await deliverHealthAlerts({ result: result({ bloat: 'warning' }), alerter, logger: silentLogger, repeatHours: 24 });
    expect(alerter.sent).toHaveLength(2);
  });
});

describe('database growth', () => {
  const mb = 1024 * 1024;
  it('compares with a sample about a day old, spreading longer windows per day', () => {
    let samples = addSizeSample([], 100 * mb, at(0));
    expect(growthSince([], 100 * mb, at(0))).toBeUndefined();
    for (let h = 0.25; h <= 30; h += 0.25) samples = addSizeSample(samples, 100 * mb, at(h));
    expect(samples.length).toBeLessThanOrEqual(31); // about an hour apart
    expect(growthSince(samples, 115 * mb, at(30))!.dailyRatio).toBeCloseTo(0.15);
    expect(growthSince([{ at: at(0).toISOString(), bytes: 100 * mb }], 120 * mb, at(48))!.dailyRatio).toBeCloseTo(0.1);
    expect(growthSince([{ at: at(0).toISOString(), bytes: 100 * mb }], 105 * mb, at(1))!.dailyRatio).toBeCloseTo(0.05);
  });
});
