// The one failure policy: one alert per failure at the level its error class names, none for
// usage/configuration errors or answers, an alert failure never masks the job's error.
import { describe, expect, it } from 'vitest';
import { MemoryAlerter, type Alert, type Alerter } from '../../../../functions/core/alerts/alerter.ts';
import { BackupLockedError, BackupNotFoundError, RestoreRefusedError } from '../../../../functions/core/backup/errors.ts';
import { ConfigError, exitCodeOf, JobError, MigrationError, PgopsError, UsageError } from '../../../../functions/core/errors.ts';
import { createTextLogger } from '../../../../functions/core/logger.ts';
import { InterruptedError, interruptionOr, runJob, throwIfInterrupted, type JobReporting } from '../../../../functions/core/run-job.ts';

function reporting(alerter: Alerter = new MemoryAlerter()) {
  const lines: string[] = [];
  const r: JobReporting = { alerter, logger: createTextLogger({ level: 'debug', write: (l) => lines.push(l) }), databaseId: 'shop', environment: 'test' };
  return { r, lines };
}

const fail = (err: Error) => () => Promise.reject(err);

describe('runJob', () => {
  it('returns the result and sends nothing when the job succeeds', async () => {
    const alerter = new MemoryAlerter();
    await expect(runJob(reporting(alerter).r, { job: 'backup' }, () => Promise.resolve(42))).resolves.toBe(42);
    expect(alerter.sent).toEqual([]);
  });

  it('sends exactly one critical alert on failure, logs it, marks the error and rethrows it', async () => {
    const alerter = new MemoryAlerter();
    const { r, lines } = reporting(alerter);
    const err = new MigrationError('migration 002_bad.sql failed (up)');
    const thrown = await runJob(r, { job: 'migrate', details: () => ({ command: 'up' }) }, fail(err)).catch((e: unknown) => e);
    expect(thrown).toBe(err);
    expect(err.alertSent).toBe(true);
    expect(alerter.sent).toHaveLength(1);
    expect(alerter.sent[0]).toMatchObject({ severity: 'critical', job: 'migrate', database: 'shop', environment: 'test', summary: 'migration 002_bad.sql failed (up)', details: { command: 'up' } });
    expect(lines.join('')).toMatch(/error: migrate failed: migration 002_bad\.sql failed/);
  });

  it('never alerts for usage or configuration errors, nor for answers to the operator', async () => {
    for (const err of [new ConfigError('invalid configuration', ['no storage']), new UsageError('no migration matches "999"'), new BackupNotFoundError('no backup'), new RestoreRefusedError('not empty')]) {
      const alerter = new MemoryAlerter();
      await expect(runJob(reporting(alerter).r, { job: 'restore' }, fail(err))).rejects.toBe(err);
      expect(alerter.sent).toEqual([]);
      expect(err.alertSent).toBe(true);
    }
  });

  it('alerts at warning for another backup holding the lock', async () => {
    const alerter = new MemoryAlerter();
    await expect(runJob(reporting(alerter).r, { job: 'backup' }, fail(new BackupLockedError('another backup is running')))).rejects.toThrow(BackupLockedError);
    expect(alerter.sent.map((a) => a.severity)).toEqual(['warning']);
  });

  it('a dry run (silent) never alerts', async () => {
    const alerter = new MemoryAlerter();
    await expect(runJob(reporting(alerter).r, { job: 'cleanup', silent: true }, fail(new PgopsError('boom')))).rejects.toThrow('boom');
    expect(alerter.sent).toEqual([]);
  });

  it('wraps a foreign error in a PgopsError with its cause and a redacted message', async () => {
    const alerter = new MemoryAlerter();
    const cause = new Error('connect to postgres://app:hunter2@db:5432/app failed');
    const thrown = await runJob(reporting(alerter).r, { job: 'cleanup' }, fail(cause)).catch((e: unknown) => e) as JobError;
    expect(thrown).toBeInstanceOf(JobError);
    expect(thrown.cause).toBe(cause);
    expect(thrown.message).toMatch(/^cleanup failed: /);
    expect(thrown.message).not.toContain('hunter2');
    expect(JSON.stringify(alerter.sent)).not.toContain('hunter2');
  });

  it('an alert failure does not mask the job error; it is logged', async () => {
    const broken: Alerter = { send: (_a: Alert) => Promise.reject(new Error('SNS is down')) };
    const { r, lines } = reporting(broken);
    const err = new PgopsError('pg_dump exited with code 1');
    await expect(runJob(r, { job: 'backup' }, fail(err))).rejects.toBe(err);
    expect(lines.join('')).toMatch(/could not send the alert.*SNS is down/);
  });

  it('nested layers alert once: the inner job reports, the outer passes it through', async () => {
    const alerter = new MemoryAlerter();
    const { r } = reporting(alerter);
    const inner = () => runJob(r, { job: 'backup' }, fail(new PgopsError('disk full')));
    await expect(runJob(r, { job: 'backup' }, () => runJob(r, { job: 'backup' }, inner))).rejects.toThrow('disk full');
    expect(alerter.sent).toHaveLength(1);
  });

  it('names the database known only once the job has connected', async () => {
    const alerter = new MemoryAlerter();
    let db = 'unknown';
    const r: JobReporting = { ...reporting(alerter).r, databaseId: () => db };
    await expect(runJob(r, { job: 'health' }, () => { db = 'orders'; return Promise.reject(new PgopsError('crash')); })).rejects.toThrow('crash');
    expect(alerter.sent[0]).toMatchObject({ database: 'orders' });
  });
});

describe('interruption', () => {
  it('an interrupted job pages once, names the signal and exits 128 + its number', async () => {
    const alerter = new MemoryAlerter();
    const stop = new AbortController();
    stop.abort('SIGTERM');
    const err = await runJob(reporting(alerter).r, { job: 'backup' }, () => Promise.reject(interruptionOr('backup', stop.signal, new Error('pg_dump was killed by SIGTERM')) as Error)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InterruptedError);
    expect((err as Error).message).toBe('backup interrupted by SIGTERM');
    expect((err as Error).cause).toEqual(new Error('pg_dump was killed by SIGTERM'));
    expect(exitCodeOf(err)).toBe(143);
    expect(exitCodeOf(new InterruptedError('restore', 'SIGINT'))).toBe(130);
    expect(alerter.sent).toHaveLength(1);
    expect(alerter.sent[0]).toMatchObject({ severity: 'critical', job: 'backup', summary: 'backup interrupted by SIGTERM' });
  });

  it('without an abort, errors pass through and nothing throws', () => {
    const err = new Error('x');
    expect(interruptionOr('backup', new AbortController().signal, err)).toBe(err);
    expect(interruptionOr('backup', undefined, err)).toBe(err);
    expect(() => throwIfInterrupted('backup', undefined)).not.toThrow();
    const stop = new AbortController();
    stop.abort();
    expect(() => throwIfInterrupted('verify', stop.signal)).toThrow('verify interrupted by an abort');
  });
});
