// The one failure policy of every job, CLI command and handler: a failure is logged, pages at the
// level its error class names (none for usage, configuration or an answer to the operator; none in
// a dry run), exactly once however many layers it crosses, and is rethrown; a broken alert
// destination never replaces the job's own error.
import type { Alerter } from './alerts/alerter.ts';
import { asPgopsError, JobError, PgopsError } from './errors.ts';
import type { Logger } from './logger.ts';
import { redactString } from './redact.ts';

/** Where a job reports its failure. */
export interface JobReporting {
  alerter: Alerter;
  logger: Logger;
  /** The id named in alerts; a function when it is known only once the job has connected. */
  databaseId: string | (() => string);
  environment: string;
}

export interface JobSpec {
  /** The job's name in logs and alerts: backup, verify, restore, cleanup, migrate, health. */
  job: string;
  /** Send no alert (a dry run changes nothing; `health --no-alert`): a failure is an answer. */
  silent?: boolean;
  /** This job's error for a foreign failure (default: JobError "<job> failed: <message>"). */
  wrap?: (message: string, cause: unknown) => PgopsError;
  /** The alert's summary (default: the error's message), cut to 300 characters. */
  summary?: (error: PgopsError) => string;
  /** The alert's details. */
  details?: (error: PgopsError) => Record<string, unknown>;
}

const MAX_SUMMARY = 300;

/** Run `body` under the failure policy; its result, or its error (a PgopsError) after reporting. */
export async function runJob<T>(reporting: JobReporting, spec: JobSpec, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    throw await reportFailure(reporting, spec, err);
  }
}

/** Report a failure once (log, at most one alert), mark it reported, and return it to be thrown. */
export async function reportFailure(reporting: JobReporting, spec: JobSpec, err: unknown): Promise<PgopsError> {
  const error = asPgopsError(err, spec.wrap ?? ((m, cause) => new JobError(`${spec.job} failed: ${redactString(m)}`, { cause })));
  if (error.alertSent) return error;
  // Marked before sending: an alert that fails is not retried by an outer layer either.
  error.alertSent = true;
  const severity = spec.silent ? null : error.alert;
  if (severity === null) {
    // An answer (refused, not found, bad usage): the caller prints it; nobody is paged.
    reporting.logger.debug(`${spec.job}: ${redactString(error.message)}`, { type: error.name });
    return error;
  }
  reporting.logger.error(`${spec.job} failed: ${redactString(error.message)}`);
  await sendJobAlert(reporting, spec, error, severity);
  return error;
}

async function sendJobAlert(reporting: JobReporting, spec: JobSpec, error: PgopsError, severity: 'critical' | 'warning'): Promise<void> {
  const database = typeof reporting.databaseId === 'function' ? reporting.databaseId() : reporting.databaseId;
  try {
    await reporting.alerter.send({
      severity,
      job: spec.job,
      database,
      environment: reporting.environment,
      summary: redactString((spec.summary ?? ((e) => e.message))(error)).slice(0, MAX_SUMMARY),
      details: spec.details?.(error) ?? { error: redactString(error.message) },
    });
  } catch (alertError) {
    reporting.logger.error('could not send the alert; the job\'s own error stands', { job: spec.job, error: redactString(alertError instanceof Error ? alertError.message : String(alertError)) });
  }
}

const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

/**
 * The job was stopped by a signal (SIGTERM, SIGINT) and cleaned up after itself. It pages like a
 * failure (a backup did not happen) and exits with the shell's convention, 128 + the signal's number.
 */
export class InterruptedError extends PgopsError {
  override readonly exitCode: number;
  readonly signalName: string;
  constructor(job: string, signalName: string, options?: { cause?: unknown; exitCode?: number }) {
    super(`${job} interrupted by ${signalName}`, options);
    this.signalName = signalName;
    this.exitCode = options?.exitCode ?? 128 + (SIGNAL_NUMBERS[signalName] ?? 15);
  }
}

/** Exit code of a job stopped at its deadline (timeout(1)'s convention). */
export const DEADLINE_EXIT_CODE = 124;

/**
 * The abort reason of a job stopped at its own deadline (the CLI's task deadline): the job stops
 * and cleans up as on SIGTERM, its alert names the deadline, and it exits 124.
 */
export class DeadlineReason {
  constructor(readonly description: string) {}
  toString(): string {
    return this.description;
  }
}

/** A job that could not be stopped cleanly at its deadline (it does not honour the abort signal, or did not stop in time). */
export class DeadlineExceededError extends PgopsError {
  override readonly exitCode: number = DEADLINE_EXIT_CODE;
}

/** Why an AbortSignal was aborted: the signal name (the CLI aborts with "SIGTERM" or "SIGINT") or the deadline. */
function abortReason(signal: AbortSignal): { name: string; exitCode?: number } {
  const r: unknown = signal.reason;
  if (r instanceof DeadlineReason) return { name: r.description, exitCode: DEADLINE_EXIT_CODE };
  return { name: typeof r === 'string' ? r : 'an abort' };
}

/** Throw InterruptedError if the job's signal has been aborted: a check between a job's steps. */
export function throwIfInterrupted(job: string, signal: AbortSignal | undefined): void {
  if (!signal?.aborted) return;
  const why = abortReason(signal);
  throw new InterruptedError(job, why.name, { exitCode: why.exitCode });
}

/** `err`, or the interruption that caused it (a tool killed because the job was interrupted). */
export function interruptionOr(job: string, signal: AbortSignal | undefined, err: unknown): unknown {
  if (!signal?.aborted || err instanceof InterruptedError) return err;
  const why = abortReason(signal);
  return new InterruptedError(job, why.name, { cause: err, exitCode: why.exitCode });
}
