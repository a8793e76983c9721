// Error classes for every job. Each carries an exit code (DESIGN.md: 1 the operation failed,
// 2 bad usage or configuration) and keeps the original error as `cause`.

/** Whom a failure pages: on-call (critical), the team (warning), or nobody (an answer to the operator). */
export type AlertLevel = 'critical' | 'warning' | null;

export class PgopsError extends Error {
  readonly exitCode: number = 1;
  /** The failure policy of this kind of error (run-job.ts): an incident pages, an answer does not. */
  readonly alert: AlertLevel = 'critical';
  /** Set once a job has reported this failure (alerted, or decided not to), so no outer layer pages again. */
  alertSent = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad configuration or usage: exit 2. `issues` names every bad field. */
export class ConfigError extends PgopsError {
  override readonly exitCode: number = 2;
  /** Bad usage or configuration pages nobody: whoever ran it sees exit 2 and the message. */
  override readonly alert: AlertLevel = null;
  readonly issues: string[];
  constructor(message: string, issues: string[] = [], options?: { cause?: unknown }) {
    super(issues.length > 0 ? `${message}:\n  - ${issues.join('\n  - ')}` : message, options);
    this.issues = issues;
  }
}

export class UsageError extends ConfigError {}

/** The database could not be reached or refused us. */
export class ConnectionError extends PgopsError {}

/** A migration file failed, or the history does not match the files. */
export class MigrationError extends PgopsError {}

/** An applied migration was edited or deleted. */
export class MigrationHistoryError extends MigrationError {
  readonly modified: string[];
  readonly missing: string[];
  constructor(modified: string[], missing: string[]) {
    const parts: string[] = [];
    if (modified.length > 0) parts.push(`applied migration${modified.length > 1 ? 's' : ''} changed since it ran: ${modified.join(', ')}`);
    if (missing.length > 0) parts.push(`applied migration${missing.length > 1 ? 's' : ''} no longer on disk: ${missing.join(', ')}`);
    super(`${parts.join('; ')} (restore the original file, or write a new migration instead of editing an applied one)`);
    this.modified = modified;
    this.missing = missing;
  }
}

/** Another runner held the lock longer than we were willing to wait. */
export class LockTimeoutError extends PgopsError {}

/** A job failed for a reason that is not one of ours (a driver or system error, kept as `cause`). */
export class JobError extends PgopsError {}

/** No alert destination accepted an alert. */
export class AlertError extends PgopsError {}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Any thrown value as a PgopsError: ours as they are, anything else wrapped with its message. */
export function asPgopsError(err: unknown, wrap: (message: string, cause: unknown) => PgopsError = (m, c) => new JobError(m, { cause: c })): PgopsError {
  return err instanceof PgopsError ? err : wrap(errorMessage(err), err);
}

export function exitCodeOf(err: unknown): number {
  return err instanceof PgopsError ? err.exitCode : 1;
}
