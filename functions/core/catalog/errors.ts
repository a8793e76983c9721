// Errors of the catalog: asked for a backup that is not there.
import { PgopsError, type AlertLevel } from '../errors.ts';

/** No such backup (or no backup at all) in the storage: an answer to the operator, not an incident. */
export class BackupNotFoundError extends PgopsError {
  override readonly alert: AlertLevel = null;
}
