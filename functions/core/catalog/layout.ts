// Where everything lives in storage (DESIGN.md "Backups and storage layout"): backup ids, the
// database's folder, and the key of every object pgops writes. Nobody else spells a key.
import { randomBytes } from 'node:crypto';
import { ENV } from '../config.ts';
import { ConfigError } from '../errors.ts';

const BACKUP_ID = /^\d{8}T\d{6}Z-[0-9a-f]{4}$/;
const DATABASE_ID = /^[A-Za-z0-9_.-]{1,128}$/;

/** `20261122T020000Z-3fa2`: UTC to the second, then 4 random hex digits; sorts by time. */
export function newBackupId(at: Date, random: () => string = () => randomBytes(2).toString('hex')): string {
  const stamp = at.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
  return `${stamp}-${random()}`;
}

export function isBackupId(id: string): boolean {
  return BACKUP_ID.test(id);
}

/** A rejected value, quoted and shortened, with control and invisible characters escaped (terminal-safe). */
function quoteSafely(value: string): string {
  const short = value.length > 64 ? `${value.slice(0, 64)}…` : value;
  return `"${short.replace(/[\p{C}"\\]/gu, (ch) => (ch === '"' || ch === '\\' ? `\\${ch}` : `\\u{${ch.codePointAt(0)!.toString(16)}}`))}"`;
}

/** The database id becomes a key segment: refuse anything that could escape it, and say how to choose one. */
export function checkDatabaseId(databaseId: string): string {
  if (!DATABASE_ID.test(databaseId) || databaseId === '.' || databaseId === '..') {
    const suggestion = databaseId.normalize('NFKD').replace(/\p{M}/gu, '').replace(/[^A-Za-z0-9_.-]+/g, '_').replace(/^[._]+|_+$/g, '').slice(0, 128);
    const example = suggestion === '' ? 'auth' : suggestion;
    throw new ConfigError('invalid configuration', [
      `database id ${quoteSafely(databaseId)} cannot name a storage folder (letters, digits, dot, dash and underscore only, 1 to 128): `
      + `the database id defaults to the database's name; set ${ENV.databaseId} (or --database-id) to a storage id, e.g. ${ENV.databaseId}=${example}`,
    ]);
  }
  return databaseId;
}

/** Everything of one database: logical and physical backups, WAL, state. */
export function databasePrefix(databaseId: string): string {
  return `${checkDatabaseId(databaseId)}/`;
}

export function logicalPrefix(databaseId: string): string {
  return `${databasePrefix(databaseId)}logical/`;
}

export function backupKeys(databaseId: string, id: string): { dir: string; dump: string; manifest: string; restoreTest: string } {
  const dir = `${logicalPrefix(databaseId)}${id}/`;
  return { dir, dump: `${dir}dump`, manifest: `${dir}manifest.json`, restoreTest: `${dir}restore-test.json` };
}

/**
 * `<database>/logical/<backupId>/<file>`: the backup id and the path below its folder (`dump`,
 * `manifest.json`, or deeper), or undefined for anything that is not inside a backup's folder.
 */
export function parseLogicalKey(databaseId: string, key: string): { id: string; file: string } | undefined {
  const prefix = logicalPrefix(databaseId);
  if (!key.startsWith(prefix)) return undefined;
  const [id = '', ...rest] = key.slice(prefix.length).split('/');
  const file = rest.join('/');
  if (!isBackupId(id) || file === '') return undefined;
  return { id, file };
}

/** 20261122T020000Z-3fa2 -> 2026-11-22T02:00:00Z. */
export function backupIdTime(id: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z/.exec(id);
  if (!m) return undefined;
  const d = new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** The health job's state and the alert dedupe state, beside the backups. */
export function stateKeys(databaseId: string): { health: string; alerts: string } {
  const dir = `${checkDatabaseId(databaseId)}/state/`;
  return { health: `${dir}health.json`, alerts: `${dir}alerts.json` };
}
