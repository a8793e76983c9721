// Errors of the base backup job. Each exits 1 and keeps its cause; after any of them no manifest and
// no base object remain in storage.
import { PgopsError, type AlertLevel } from '../errors.ts';

/** The base backup did not complete: nothing of it was kept. */
export class BaseBackupError extends PgopsError {}

/** Another base backup of the same database holds the lock: worth a look, not a page at night. */
export class BaseBackupLockedError extends BaseBackupError {
  override readonly alert: AlertLevel = 'warning';
}

/** The WAL the base backup needs did not reach the archive in time: without it the backup restores nothing. */
export class BaseBackupWalError extends BaseBackupError {}

/** pg_basebackup's tar did not say where the backup starts and stops (not a complete PostgreSQL 13+ base backup). */
export class BaseTarError extends BaseBackupError {}
