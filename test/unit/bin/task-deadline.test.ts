// The task deadline's plumbing: which job has which deadline (PGOPS_TASK_DEADLINES), and what
// happens when it is reached: an interruptible job is aborted through its signal with the deadline
// as reason (InterruptedError, exit 124, an alert naming it); any other is reported and ended.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { armDeadline, describeDeadline, taskDeadlineSeconds } from '../../../bin/task-deadline.ts';
import { MemoryAlerter } from '../../../functions/core/alerts/alerter.ts';
import { loadSettings } from '../../../functions/core/config.ts';
import { ConfigError } from '../../../functions/core/errors.ts';
import { createTextLogger } from '../../../functions/core/logger.ts';
import { DeadlineReason, InterruptedError, interruptionOr, runJob, throwIfInterrupted } from '../../../functions/core/run-job.ts';
import type { Runtime } from '../../../functions/core/runtime.ts';

afterEach(() => { vi.useRealTimers(); });

describe('taskDeadlineSeconds', () => {
  const settings = (env: Record<string, string>) => loadSettings({}, { ...env, PGOPS_STORAGE: 'file:///tmp/x' }, '/tmp');
  const env = { PGOPS_TASK_DEADLINES: '{"backup":21600,"verify":14400}' };
  it('reads the job\'s deadline; none for another job, outside the task, or without a job', () => {
    expect(taskDeadlineSeconds('backup', settings(env))).toBe(21600);
    expect(taskDeadlineSeconds('verify', settings(env))).toBe(14400);
    expect(taskDeadlineSeconds('migrate', settings(env))).toBeUndefined();
    expect(taskDeadlineSeconds('backup', settings({}))).toBeUndefined();
    expect(taskDeadlineSeconds(undefined, settings(env))).toBeUndefined();
  });

  it('refuses what is not a map of positive seconds (exit 2, no page), naming the variable', () => {
    for (const bad of ['nope', '[1]', '{"backup":0}', '{"backup":"1h"}']) {
      let err: unknown;
      try { settings({ PGOPS_TASK_DEADLINES: bad }); } catch (e) { err = e; }
      expect(err, bad).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).message, bad).toContain('PGOPS_TASK_DEADLINES');
    }
  });

  it('names the deadline in words an operator reads', () => {
    expect(describeDeadline(21600)).toBe('the task deadline (6 h)');
    expect(describeDeadline(5400)).toBe('the task deadline (90 min)');
    expect(describeDeadline(1)).toBe('the task deadline (1 s)');
  });
});

describe('a job aborted at its deadline', () => {
  it('fails as an interruption that names the deadline and exits 124', () => {
    const c = new AbortController();
    c.abort(new DeadlineReason('the task deadline (1 s)'));
    const thrown = (() => { try { throwIfInterrupted('backup', c.signal); } catch (e) { return e; } })() as InterruptedError;
    expect(thrown).toBeInstanceOf(InterruptedError);
    expect(thrown.message).toBe('backup interrupted by the task deadline (1 s)');
    expect(thrown.exitCode).toBe(124);
    const wrapped = interruptionOr('verify', c.signal, new Error('pg_restore killed')) as InterruptedError;
    expect([wrapped.message, wrapped.exitCode]).toEqual(['verify interrupted by the task deadline (1 s)', 124]);
  });

  it('a signal keeps its own exit code', () => {
    const c = new AbortController();
    c.abort('SIGTERM');
    expect((interruptionOr('backup', c.signal, new Error('x')) as InterruptedError).exitCode).toBe(143);
  });
});

describe('armDeadline', () => {
  function fakeRuntime(interruptible: boolean) {
    const alerter = new MemoryAlerter();
    const logger = createTextLogger({ level: 'silent' });
    const rt = { interruptible: () => interruptible, reporting: () => ({ alerter, logger, databaseId: 'auth', environment: 'test' }) } as unknown as Runtime;
    return { rt, alerter };
  }

  it('aborts an interruptible job with the deadline as reason; its failure alerts naming it', async () => {
    vi.useFakeTimers();
    const { rt, alerter } = fakeRuntime(true);
    const interrupt = new AbortController();
    const err: string[] = [];
    const exits: number[] = [];
    const disarm = armDeadline({ job: 'backup', seconds: 1, interrupt, runtime: () => rt, err: (s) => err.push(s), exit: (c) => exits.push(c), graceMs: 60_000 });
    const job = runJob(rt.reporting(), { job: 'backup' }, () => new Promise((_, reject) => {
      interrupt.signal.addEventListener('abort', () => {
        const e = interruptionOr('backup', interrupt.signal, new Error('pg_dump killed'));
        reject(e instanceof Error ? e : new Error(String(e)));
      });
    }));
    const outcome = job.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(999);
    expect(interrupt.signal.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(interrupt.signal.aborted).toBe(true);
    expect((await outcome as InterruptedError).exitCode).toBe(124);
    expect(alerter.sent).toHaveLength(1);
    expect(alerter.sent[0]!.summary).toBe('backup interrupted by the task deadline (1 s)');
    expect(err.join('')).toContain('backup reached the task deadline (1 s): stopping the job and cleaning up');
    disarm();
    await vi.advanceTimersByTimeAsync(120_000);
    expect(exits, 'disarmed once the command ended: no forced exit').toEqual([]);
  });

  it('ends a job that cannot be interrupted: one alert naming the deadline, exit 124', async () => {
    vi.useFakeTimers();
    const { rt, alerter } = fakeRuntime(false);
    const exits: number[] = [];
    const err: string[] = [];
    armDeadline({ job: 'pitr', seconds: 60, interrupt: new AbortController(), runtime: () => rt, err: (s) => err.push(s), exit: (c) => exits.push(c) });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(exits).toEqual([124]);
    expect(alerter.sent.map((a) => [a.severity, a.job, a.summary])).toEqual([['critical', 'pitr', 'pitr could not be stopped cleanly and was ended at the task deadline (1 min)']]);
    expect(err.join('')).toContain('pgops: error: pitr could not be stopped cleanly');
  });

  it('ends an aborted job that does not stop within the cleanup grace', async () => {
    vi.useFakeTimers();
    const { rt, alerter } = fakeRuntime(true);
    const exits: number[] = [];
    armDeadline({ job: 'verify', seconds: 1, interrupt: new AbortController(), runtime: () => rt, err: () => undefined, exit: (c) => exits.push(c), graceMs: 5000 });
    await vi.advanceTimersByTimeAsync(1000);
    expect(exits).toEqual([]);
    await vi.advanceTimersByTimeAsync(5000);
    expect(exits).toEqual([124]);
    expect(alerter.sent[0]!.summary).toMatch(/verify did not stop within its cleanup grace after the task deadline \(1 s\)/);
  });
});
