// Errors of the PostgreSQL tools: the wrong version for the server.
import { PgopsError } from '../errors.ts';

/** The pg_dump binary is older than the server (its dumps could be incomplete), or its version cannot be read. */
export class PgDumpVersionError extends PgopsError {}
