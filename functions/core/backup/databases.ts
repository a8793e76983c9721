// Creating, inspecting and dropping the databases a restore or restore test writes into.
import type pg from 'pg';
import { identifier } from '../config.ts';
import { quoteIdent, withClient, withDatabase, type DbSessionOptions, type DbTarget } from '../db.ts';
import { UsageError } from '../errors.ts';
import { countUserObjects } from './tables.ts';

/** A database name given by a user: a plain identifier, or refused (it is then quoted anyway). */
export function checkDatabaseName(name: string, what = '--target-db'): string {
  if (!identifier.safeParse(name).success) {
    throw new UsageError(`${what} "${name}" must be a plain identifier (letters, digits, underscore; at most 63 characters)`);
  }
  return name;
}

/** Where to run CREATE/DROP DATABASE: never the database being created or dropped. */
export function maintenanceTarget(target: DbTarget, subject: string): DbTarget {
  return target.database === subject ? withDatabase(target, target.database === 'postgres' ? 'template1' : 'postgres') : target;
}

/** The sessions of the restore (and restore-test) job name themselves in pg_stat_activity. */
export const RESTORE_CLIENT = { applicationName: 'pgops-restore' } as const;

export async function databaseExists(client: pg.Client, name: string): Promise<boolean> {
  const r = await client.query('SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1', [name]);
  return (r.rowCount ?? 0) > 0;
}

/** The user objects of database `name` by kind (tables.ts); empty: nothing a restore could collide with. */
export async function userObjectsIn(target: DbTarget, session: DbSessionOptions, name: string): Promise<Record<string, number>> {
  return withClient(withDatabase(target, name), session, (c) => countUserObjects(c), RESTORE_CLIENT);
}

export async function isDatabaseEmpty(target: DbTarget, session: DbSessionOptions, name: string): Promise<boolean> {
  return Object.keys(await userObjectsIn(target, session, name)).length === 0;
}

// A database `restore --create` made carries this comment until the restore has finished: one a
// killed restore left behind (kill -9 runs no clean-up) is recognisable, and reclaimed when empty.
const IN_PROGRESS = 'pgops: restore in progress';

export async function markRestoreInProgress(client: pg.Client, name: string, backupId: string, at: Date): Promise<void> {
  await client.query(`COMMENT ON DATABASE ${quoteIdent(name)} IS ${client.escapeLiteral(`${IN_PROGRESS} (backup ${backupId}, started ${at.toISOString()})`)}`);
}

export async function clearRestoreMark(client: pg.Client, name: string): Promise<void> {
  await client.query(`COMMENT ON DATABASE ${quoteIdent(name)} IS NULL`);
}

/** The in-progress mark of database `name` ("pgops: restore in progress (backup ..., started ...)"), if it has one. */
export async function restoreMarkOf(client: pg.Client, name: string): Promise<string | undefined> {
  const r = await client.query<{ d: string | null }>("SELECT shobj_description(oid, 'pg_database') AS d FROM pg_catalog.pg_database WHERE datname = $1", [name]);
  const d = r.rows[0]?.d;
  return d?.startsWith(IN_PROGRESS) ? d : undefined;
}

/** From template0, so nothing added to template1 collides with the dump's objects. */
export async function createDatabase(client: pg.Client, name: string): Promise<void> {
  await client.query(`CREATE DATABASE ${quoteIdent(name)} TEMPLATE template0`);
}

export async function dropDatabase(client: pg.Client, name: string): Promise<void> {
  const v = await client.query<{ n: string }>("SELECT current_setting('server_version_num') AS n");
  // WITH (FORCE) (PostgreSQL 13+) ends sessions a killed pg_restore may have left behind.
  const force = Number(v.rows[0]?.n ?? 0) >= 130000 ? ' WITH (FORCE)' : '';
  await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)}${force}`);
}
