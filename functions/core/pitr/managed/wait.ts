// Waiting for a restored copy to become available: one look every poll interval, progress on each
// look, bounded by a timeout on an injectable clock (tests never wait in real time); an abort
// (SIGTERM) ends the wait at once.
import { PitrError } from '../errors.ts';
import { throwIfInterrupted } from '../../run-job.ts';
import { advanceRestore, type RestoreStatus, type StepDeps } from './steps.ts';
import { describeCopy, type ManagedPitrState } from './state.ts';

/** The copy did not become available in time (it is deleted by the job, unless --keep). */
export class RestoreTimeoutError extends PitrError {}

export interface RestoreProgress extends RestoreStatus {
  elapsedMs: number;
}

export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/** setTimeout that an abort ends early (the caller checks the signal). */
export const realSleep: Sleep = (ms, signal) => new Promise((resolve) => {
  if (signal?.aborted) return resolve();
  const done = () => { clearTimeout(timer); signal?.removeEventListener('abort', done); resolve(); };
  const timer = setTimeout(done, ms);
  signal?.addEventListener('abort', done, { once: true });
});

export interface WaitDeps extends StepDeps {
  clock: () => Date;
  sleep: Sleep;
  signal?: AbortSignal;
  onProgress?: (p: RestoreProgress) => void;
}

export interface WaitOptions {
  timeoutMs: number;
  pollMs: number;
}

export async function waitForRestore(deps: WaitDeps, state: ManagedPitrState, options: WaitOptions): Promise<ManagedPitrState> {
  const started = deps.clock().getTime();
  let last = '';
  for (;;) {
    throwIfInterrupted('pitr', deps.signal);
    const step = await advanceRestore(deps, state);
    state = step.state;
    const elapsedMs = deps.clock().getTime() - started;
    const seen = `${step.status.resource}: ${step.status.status}`;
    if (seen !== last) deps.logger.info(`restore: ${seen}`, { elapsedSeconds: Math.round(elapsedMs / 1000) });
    last = seen;
    try { deps.onProgress?.({ ...step.status, elapsedMs }); } catch { /* a display problem never fails a job */ }
    if (step.status.ready) return state;
    if (elapsedMs >= options.timeoutMs) {
      throw new RestoreTimeoutError(`the restored ${describeCopy(state)} was not available after ${Math.round(elapsedMs / 60_000)} min (${seen}); managed.pitr.restoreTimeoutMinutes is ${Math.round(options.timeoutMs / 60_000)}`);
    }
    await deps.sleep(Math.min(options.pollMs, options.timeoutMs - elapsedMs), deps.signal);
  }
}
