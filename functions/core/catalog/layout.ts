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

// --- Physical base backups (pgops basebackup) ---

export type PhysicalCompression = 'gzip' | 'zstd' | 'lz4' | 'none';

const PHYSICAL_SUFFIX: Record<PhysicalCompression, string> = { gzip: '.gz', zstd: '.zst', lz4: '.lz4', none: '' };

export function physicalPrefix(databaseId: string): string {
  return `${databasePrefix(databaseId)}physical/`;
}

/** `<db>/physical/<backupId>/base.tar[.gz|.zst|.lz4]` and its manifest, written last. */
export function physicalKeys(databaseId: string, id: string, compression: PhysicalCompression): { dir: string; base: string; manifest: string } {
  const dir = `${physicalPrefix(databaseId)}${id}/`;
  return { dir, base: `${dir}base.tar${PHYSICAL_SUFFIX[compression]}`, manifest: `${dir}manifest.json` };
}

/** `<database>/physical/<backupId>/<file>`: the backup id and the file, or undefined for anything else. */
export function parsePhysicalKey(databaseId: string, key: string): { id: string; file: string } | undefined {
  const prefix = physicalPrefix(databaseId);
  if (!key.startsWith(prefix)) return undefined;
  const [id = '', ...rest] = key.slice(prefix.length).split('/');
  const file = rest.join('/');
  if (!isBackupId(id) || file === '') return undefined;
  return { id, file };
}

/** The health job's state and the alert dedupe state, beside the backups. */
export function stateKeys(databaseId: string): { health: string; alerts: string } {
  const dir = `${checkDatabaseId(databaseId)}/state/`;
  return { health: `${dir}health.json`, alerts: `${dir}alerts.json` };
}

// --- The WAL archive (DESIGN.md "Physical backups, WAL archive and point-in-time recovery") ---
//
// Names PostgreSQL archives, all uppercase hex as PostgreSQL writes them (anything else is refused:
// the name becomes a key, and a file PostgreSQL never wrote must not land in the archive):
//   segment  000000010000000000000002                  24 hex: timeline, log, segment
//   partial  000000010000000000000002.partial          the last, incomplete segment of a timeline
//                                                      (archived at promotion, or by pg_receivewal)
//   backup   000000010000000000000002.00000028.backup  a base backup's label (start offset, 8 hex)
//   history  00000002.history                          a timeline's history (timeline 1 has none)
// Segments, partial and backup files live under `<db>/wal/<timeline>/`, compressed; history files
// are tiny and stay uncompressed at `<db>/wal/<timeline>.history`. Timeline 00000000 does not exist.
//
// The SHA-256 of the ORIGINAL (uncompressed) file is a separate object `<key>.sha256`, not object
// metadata: the Storage interface (and FileStorage) has no metadata, and a sidecar written after
// the data is the push's commit point (a data object without one was never acknowledged to
// PostgreSQL, so a retry may replace it). `.sha256` can never be a WAL name, so the two never clash.

export type WalCompression = 'gz' | 'none';
export type WalFileKind = 'segment' | 'partial' | 'backup' | 'history';

const WAL_NAMES: Array<[WalFileKind, RegExp]> = [
  ['segment', /^([0-9A-F]{8})[0-9A-F]{16}$/],
  ['partial', /^([0-9A-F]{8})[0-9A-F]{16}\.partial$/],
  ['backup', /^([0-9A-F]{8})[0-9A-F]{16}\.[0-9A-F]{8}\.backup$/],
  ['history', /^([0-9A-F]{8})\.history$/],
];

export interface WalName {
  name: string;
  kind: WalFileKind;
  /** 8 hex digits, as in the name. */
  timeline: string;
}

/** A WAL file's name parsed, or undefined when it is not one PostgreSQL archives. */
export function parseWalName(name: string): WalName | undefined {
  for (const [kind, pattern] of WAL_NAMES) {
    const m = pattern.exec(name);
    if (m && m[1] !== '00000000') return { name, kind, timeline: m[1]! };
  }
  return undefined;
}

/** The parsed name, or a ConfigError (bad usage: exit 2) saying what a WAL file name looks like. */
export function checkWalName(name: string): WalName {
  const parsed = parseWalName(name);
  if (!parsed) {
    throw new ConfigError('invalid WAL file name', [
      `${quoteSafely(name)} is not a WAL file name: expected 24 uppercase hex digits (a segment), optionally followed by .partial, `
      + 'or <segment>.<8 hex>.backup, or <8 hex>.history, with a timeline other than 00000000',
    ]);
  }
  return parsed;
}

function compressionSuffix(compression: WalCompression): string {
  return compression === 'gz' ? '.gz' : '';
}

export function walPrefix(databaseId: string): string {
  return `${databasePrefix(databaseId)}wal/`;
}

/** `<db>/wal/<timeline>/<segment>[.gz]`, for a segment, `.partial` or `.backup` file of that timeline. */
export function walSegmentKey(databaseId: string, timeline: string, segment: string, compression: WalCompression): string {
  const parsed = checkWalName(segment);
  if (parsed.kind === 'history') throw new ConfigError(`${segment} is a history file, not a segment (walHistoryKey)`);
  if (parsed.timeline !== timeline) throw new ConfigError(`segment ${segment} is on timeline ${parsed.timeline}, not ${timeline}`);
  return `${walPrefix(databaseId)}${timeline}/${segment}${compressionSuffix(compression)}`;
}

/** `<db>/wal/<timeline>.history`, for `0000000N.history`. */
export function walHistoryKey(databaseId: string, name: string): string {
  const parsed = checkWalName(name);
  if (parsed.kind !== 'history') throw new ConfigError(`${name} is not a timeline history file (XXXXXXXX.history)`);
  return `${walPrefix(databaseId)}${name}`;
}

/** Where any archivable file goes: history files uncompressed, everything else with `compression`. */
export function walFileKey(databaseId: string, name: string, compression: WalCompression): string {
  const parsed = checkWalName(name);
  return parsed.kind === 'history' ? walHistoryKey(databaseId, name) : walSegmentKey(databaseId, parsed.timeline, name, compression);
}

/** The compressions a file of this kind may be stored with, the one pushed today first. */
export function walCompressions(name: string): WalCompression[] {
  return checkWalName(name).kind === 'history' ? ['none'] : ['gz', 'none'];
}

/** The checksum object of a WAL object: the SHA-256 of the original file, in `sha256sum` format. */
export function walChecksumKey(objectKey: string): string {
  return `${objectKey}.sha256`;
}
