// Errors of the backup, verify and restore jobs. All exit 1 (the operation failed) unless they
// extend ConfigError/UsageError; each keeps its original error as `cause`.
import { PgopsError, type AlertLevel } from '../errors.ts';

/** The backup did not complete: no manifest was written and the partial dump was removed. */
export class BackupError extends PgopsError {}

/** Another backup of the same database holds the lock: worth a look, not a page at night. */
export class BackupLockedError extends BackupError {
  override readonly alert: AlertLevel = 'warning';
}

// Raised by the catalog and the tool runner, which the jobs use; named here too for the jobs' callers.
export { BackupNotFoundError } from '../catalog/errors.ts';
export { PgDumpVersionError } from '../pgtools/errors.ts';

/** The stored backup does not match its manifest, cannot be read to its end, or failed its restore test. */
export class VerifyError extends PgopsError {
  /** What differs, one short sentence each. */
  readonly problems: string[];
  /** The verification result, when verification got far enough to produce one. */
  readonly result?: unknown;
  constructor(message: string, problems: string[], options?: { cause?: unknown; result?: unknown }) {
    super(message, options);
    this.problems = problems;
    this.result = options?.result;
  }
}

/** The restore failed (the target was left as before, or a database we created was dropped again). */
export class RestoreError extends PgopsError {}

/** pg_restore gave up waiting for a lock (lock_timeout) an application holds; `holders` names those sessions. */
export class RestoreBlockedError extends RestoreError {
  readonly holders: unknown[];
  constructor(message: string, holders: unknown[], options?: { cause?: unknown }) {
    super(message, options);
    this.holders = holders;
  }
}

/** The restore was refused before touching anything (target exists, is not empty, ...): an answer, not an incident. */
export class RestoreRefusedError extends RestoreError {
  override readonly alert: AlertLevel = null;
}
