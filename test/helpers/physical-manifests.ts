// Base backups and archived WAL written straight into storage, the way `pgops basebackup` and
// `wal push` leave them (a base tar, then its manifest last; a WAL object, then its checksum
// object), without a server: for tests of wal status, the wal-archiving check and WAL retention.
import { backupIdTime, newBackupId, physicalKeys, walChecksumKey, walFileKey } from '../../functions/core/catalog/layout.ts';
import type { Storage } from '../../functions/core/storage/types.ts';
import { DEFAULT_WAL_SEGMENT_SIZE, formatLsn, segmentFileName, segmentStartLsn } from '../../functions/core/wal/lsn.ts';
import { waitFor } from './cli.ts';
import type { TestCluster } from './postgres.ts';

export interface FakeBaseBackup {
  id?: string;
  /** Default: the time in the id, or now. */
  completedAt?: Date;
  timeline?: number;
  /** The segment numbers holding its start and stop LSN (stop defaults to start). */
  startSegno: number | bigint;
  stopSegno?: number | bigint;
  walSegmentSize?: number;
}

/** The size of the fake base tar (the catalog checks the stored object against the manifest). */
const BASE_BYTES = 16;

/** The manifest `pgops basebackup` writes (the physical catalog's shape), for segments start..stop. */
export function physicalManifest(database: string, b: FakeBaseBackup & { id: string }): Record<string, unknown> {
  const size = b.walSegmentSize ?? DEFAULT_WAL_SEGMENT_SIZE;
  const timeline = b.timeline ?? 1;
  const start = BigInt(b.startSegno);
  const stop = BigInt(b.stopSegno ?? b.startSegno);
  const completedAt = b.completedAt ?? backupIdTime(b.id) ?? new Date();
  return {
    id: b.id, database, kind: 'physical', formatVersion: 1, format: 'tar', compression: 'gzip', walMethod: 'none',
    startedAt: new Date(completedAt.getTime() - 60_000).toISOString(), completedAt: completedAt.toISOString(), durationMs: 60_000,
    bytes: BASE_BYTES, sha256: 'b'.repeat(64), key: physicalKeys(database, b.id, 'gzip').base,
    serverVersion: '15.10', serverVersionNum: 150010, pgBasebackupVersion: '15.10', systemIdentifier: '7300000000000000001',
    timeline, startLsn: formatLsn(segmentStartLsn(start, size) + 0x28n), stopLsn: formatLsn(segmentStartLsn(stop, size) + 0x100n),
    startSegment: segmentFileName(timeline, start, size), stopSegment: segmentFileName(timeline, stop, size),
    walSegmentSize: size, stoppedAt: new Date(completedAt.getTime() - 1_000).toISOString(), sourceHost: 'postgres://pgops:***@127.0.0.1:5432/postgres',
  };
}

/** Write a base backup (tar, then manifest last); returns its id. */
export async function putBaseBackup(storage: Storage, database: string, b: FakeBaseBackup): Promise<string> {
  const id = b.id ?? newBackupId(b.completedAt ?? new Date());
  const keys = physicalKeys(database, id, 'gzip');
  await storage.putBytes(keys.base, Buffer.alloc(BASE_BYTES));
  await storage.putBytes(keys.manifest, `${JSON.stringify(physicalManifest(database, { ...b, id }), null, 2)}\n`);
  return id;
}

/** Archive a WAL file as wal push leaves it: data, then its checksum object (the commit point). */
export async function putWal(storage: Storage, database: string, name: string, opts: { committed?: boolean; content?: string } = {}): Promise<string> {
  const key = walFileKey(database, name, name.endsWith('.history') ? 'none' : 'gz');
  await storage.putBytes(key, opts.content ?? 'x');
  if (opts.committed !== false) await storage.putBytes(walChecksumKey(key), `${'0'.repeat(64)}  ${name}\n`);
  return key;
}

/** Archive segments `from..to` (inclusive) of `timeline`, skipping `missing`. */
export async function putSegments(storage: Storage, database: string, timeline: number, from: number, to: number, missing: number[] = []): Promise<void> {
  for (let s = from; s <= to; s++) if (!missing.includes(s)) await putWal(storage, database, segmentFileName(timeline, BigInt(s)));
}

/** `00000002.history` saying timeline `parent` ended at segment `switchSegno` (+0x100). */
export async function putHistory(storage: Storage, database: string, timeline: number, lines: Array<{ parent: number; switchSegno: number }>): Promise<void> {
  const text = lines.map((l) => `${l.parent}\t${formatLsn(segmentStartLsn(BigInt(l.switchSegno)) + 0x100n)}\tno recovery target specified\n`).join('');
  await putWal(storage, database, `${timeline.toString(16).toUpperCase().padStart(8, '0')}.history`, { content: text });
}

export const seg = (timeline: number, segno: number | bigint): string => segmentFileName(timeline, BigInt(segno));

/** A real cluster's next segment: write a row, switch WAL, and wait until archive_command has stored the finished segment. */
export async function switchAndArchive(cluster: TestCluster, storage: Storage, database: string): Promise<string> {
  await cluster.query('CREATE TABLE IF NOT EXISTS pgops_wal_ticks (at timestamptz DEFAULT now()); INSERT INTO pgops_wal_ticks DEFAULT VALUES');
  const r = await cluster.query<{ name: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS name');
  const name = r.rows[0]!.name;
  await waitFor(`${name} to be archived`, async () => (await storage.getBytes(walChecksumKey(walFileKey(database, name, 'gz')))) !== undefined, 120_000);
  return name;
}

/** Copy every object of `database` to another store (times become now): a scratch archive to damage. */
export async function copyDatabase(from: Storage, to: Storage, database: string): Promise<void> {
  for (const o of await from.list(`${database}/`)) await to.putBytes(o.key, (await from.getBytes(o.key))!);
}

/** Remove a WAL file as if it had never been archived (checksum first, then data). */
export async function removeWal(storage: Storage, database: string, name: string): Promise<void> {
  const key = walFileKey(database, name, name.endsWith('.history') ? 'none' : 'gz');
  await storage.delete(walChecksumKey(key));
  await storage.delete(key);
}
