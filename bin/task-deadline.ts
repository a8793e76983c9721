// Every Fargate task enforces its own deadline: the task definition carries PGOPS_TASK_DEADLINES,
// JSON { "<job>": seconds } (config tasks.deadlineMinutes); the CLI stops that job when its time is
// up, through the same abort path as SIGTERM (the job stops its tools and cleans up), alerts naming
// the deadline, and exits 124. A job that cannot be stopped cleanly is reported and exits at once.
import type { Settings } from '../functions/core/config.ts';
import { DEADLINE_EXIT_CODE, DeadlineExceededError, DeadlineReason, reportFailure } from '../functions/core/run-job.ts';
import type { Runtime } from '../functions/core/runtime.ts';

/** How long an aborted job may take to clean up before the CLI exits anyway. */
export const CLEANUP_GRACE_MS = 120_000;

/** The deadline of `job` in seconds (PGOPS_TASK_DEADLINES, validated by loadSettings), or undefined: outside the task, or a job without one. */
export function taskDeadlineSeconds(job: string | undefined, settings: Pick<Settings, 'taskDeadlines'>): number | undefined {
  return job === undefined ? undefined : settings.taskDeadlines?.[job];
}

export function describeDeadline(seconds: number): string {
  const text = seconds % 3600 === 0 ? `${seconds / 3600} h` : seconds % 60 === 0 ? `${seconds / 60} min` : `${seconds} s`;
  return `the task deadline (${text})`;
}

export interface DeadlineHooks {
  job: string;
  seconds: number;
  interrupt: AbortController;
  runtime: () => Runtime | undefined;
  err: (s: string) => void;
  /** process.exit, replaced in tests. */
  exit?: (code: number) => void;
  graceMs?: number;
}

/** Arm the deadline; returns the function that disarms it once the command is done. */
export function armDeadline(h: DeadlineHooks): () => void {
  const described = describeDeadline(h.seconds);
  const exit = h.exit ?? ((code: number) => process.exit(code));
  let grace: NodeJS.Timeout | undefined;
  const exitNow = async (why: string) => {
    const error = new DeadlineExceededError(`${h.job} ${why} ${described}`);
    const rt = h.runtime();
    if (rt) await reportFailure(rt.reporting(), { job: h.job }, error);
    h.err(`pgops: error: ${error.message}\n`);
    exit(DEADLINE_EXIT_CODE);
  };
  const onDeadline = () => {
    if (h.runtime()?.interruptible() && !h.interrupt.signal.aborted) {
      h.err(`pgops: ${h.job} reached ${described}: stopping the job and cleaning up\n`);
      h.interrupt.abort(new DeadlineReason(described));
      grace = setTimeout(() => void exitNow('did not stop within its cleanup grace after'), h.graceMs ?? CLEANUP_GRACE_MS);
      grace.unref();
      return;
    }
    void exitNow('could not be stopped cleanly and was ended at');
  };
  const timer = setTimeout(onDeadline, h.seconds * 1000);
  timer.unref();
  return () => {
    clearTimeout(timer);
    if (grace) clearTimeout(grace);
  };
}
