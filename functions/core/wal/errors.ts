// Errors of the WAL archive. A fetch failure other than "not in the archive" must make PostgreSQL
// abort recovery: restore_command statuses above 125 do, any lower one reads as "no such file" and
// ends recovery early (silently losing every later transaction). Hence WalFetchError's exit code.
import { ConfigError, PgopsError, type AlertLevel } from '../errors.ts';

/** The exit status of a failed `wal fetch`: above 125, so PostgreSQL aborts recovery. */
export const WAL_FETCH_ABORT_EXIT = 126;

/** `wal push` could not store or verify a file: PostgreSQL keeps it and retries (exit 1). */
export class WalPushError extends PgopsError {}

/** A different file is already archived under that name: never overwritten (exit 1, pages). */
export class WalConflictError extends PgopsError {
  readonly key: string;
  constructor(name: string, key: string, stored: string, pushed: string) {
    super(`a different ${name} is already archived at ${key} (stored SHA-256 ${stored}, this file's ${pushed}): `
      + 'not overwritten; two clusters may be archiving to the same database id');
    this.key = key;
  }
}

/** A stored WAL object does not match its checksum, or has a checksum without data. */
export class WalCorruptError extends PgopsError {}

/** `wal fetch` failed after its retries, for any reason but "not in the archive": recovery must abort. */
export class WalFetchError extends PgopsError {
  override readonly exitCode: number = WAL_FETCH_ABORT_EXIT;
}

/** `wal receive` stopped streaming or archiving: pg_receivewal died, an upload kept failing (exit 1, pages). */
export class WalReceiveError extends PgopsError {}

/**
 * The replication slot `wal receive` needs is missing or unusable. Exit 2 like any configuration
 * error, but it pages: the receiver is a service nobody watches, and without the slot WAL is lost.
 */
export class WalSlotError extends ConfigError {
  override readonly alert: AlertLevel = 'critical';
}
