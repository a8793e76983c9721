// Errors of point-in-time recovery. Exit 1 unless a usage error; an operator's target that cannot
// be met (before the base backup, after the archive) is an answer, a broken archive or a recovery
// that failed is an incident.
import { PgopsError, type AlertLevel } from '../errors.ts';

/** Recovery failed (the scratch cluster was stopped and removed; nothing was created on the target). */
export class PitrError extends PgopsError {}

/** The archive cannot carry recovery to the target: a segment is missing or a history file absent. */
export class PitrArchiveError extends PitrError {
  /** Names of the missing WAL files, in order. */
  readonly missing: string[];
  constructor(message: string, missing: string[], options?: { cause?: unknown }) {
    super(message, options);
    this.missing = missing;
  }
}

/** The target cannot be met as asked (before the base backup's end, after the archive's end, no fitting base backup, a non-empty --data-dir): nothing was started. */
export class PitrRefusedError extends PitrError {
  override readonly alert: AlertLevel = null;
}

/** The scratch server reported a failure, exited, or did not finish in time; `logLines` are the server log lines that say why. */
export class RecoveryFailedError extends PitrError {
  readonly logLines: string[];
  constructor(message: string, logLines: string[], options?: { cause?: unknown }) {
    super(message, options);
    this.logLines = logLines;
  }
}
