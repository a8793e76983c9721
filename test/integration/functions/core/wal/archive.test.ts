// The WAL archive on both backends: round trip, idempotent push, refused overwrite, not found,
// and a corrupted object that must fail the fetch with a status that aborts recovery.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { Alert } from '../../../../../functions/core/alerts/alerter.ts';
import { createTextLogger } from '../../../../../functions/core/logger.ts';
import { FileStorage, openStorage, type Storage } from '../../../../../functions/core/storage/index.ts';
import { fetchWal, pushWal, type WalDeps } from '../../../../../functions/core/wal/archive.ts';
import { WalConflictError, WalFetchError } from '../../../../../functions/core/wal/errors.ts';
import { useS3rver } from '../../../../helpers/s3rver.ts';

const SEGMENT = '000000010000000000000003';
const work = mkdtempSync(join(tmpdir(), 'pgops-wal-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const s3 = useS3rver();

function setup(storage: Storage): { deps: WalDeps; alerts: Alert[]; dir: string } {
  const alerts: Alert[] = [];
  const dir = mkdtempSync(join(work, 'case-'));
  const reporting = { alerter: { send: async (a: Alert) => { alerts.push(a); } }, logger: createTextLogger({ level: 'silent' }), databaseId: 'orders', environment: 'test' };
  return { deps: { storage, databaseId: 'orders', reporting, sleep: async () => {} }, alerts, dir };
}

function segmentFile(dir: string, name = SEGMENT, content: Buffer = Buffer.concat([randomBytes(4096), Buffer.alloc(1 << 20)])): { path: string; content: Buffer } {
  const path = join(dir, name);
  writeFileSync(path, content);
  return { path, content };
}

const backends: Array<[string, () => Storage]> = [
  ['FileStorage', () => new FileStorage(pathToFileURL(mkdtempSync(join(work, 'store-'))).href)],
  ['S3 (s3rver)', () => openStorage(`s3://${s3.bucket}/wal-${randomBytes(4).toString('hex')}`, { s3Client: s3.client() })],
];

describe.each(backends)('WAL archive on %s', (_name, makeStorage) => {
  it('round-trips a segment byte for byte, and pushing it again succeeds without alerting', async () => {
    const { deps, alerts, dir } = setup(makeStorage());
    const { path, content } = segmentFile(dir);
    const pushed = await pushWal(deps, path);
    expect(pushed).toMatchObject({ name: SEGMENT, key: `orders/wal/00000001/${SEGMENT}.gz`, alreadyArchived: false });
    expect(await pushWal(deps, path)).toMatchObject({ alreadyArchived: true, sha256: pushed.sha256 });
    const dest = join(dir, 'RECOVERYXLOG');
    expect(await fetchWal(deps, SEGMENT, dest)).toMatchObject({ status: 'restored', sha256: pushed.sha256 });
    expect(readFileSync(dest).equals(content)).toBe(true);
    expect(readdirSync(dir).sort()).toEqual([SEGMENT, 'RECOVERYXLOG']);
    expect(alerts).toEqual([]);
  });

  it('refuses a different file under an archived name, alerts once, and keeps the stored one', async () => {
    const { deps, alerts, dir } = setup(makeStorage());
    const first = segmentFile(dir);
    await pushWal(deps, first.path);
    const other = segmentFile(mkdtempSync(join(dir, 'other-')));
    await expect(pushWal(deps, other.path)).rejects.toBeInstanceOf(WalConflictError);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ severity: 'critical', job: 'wal push', database: 'orders' });
    const dest = join(dir, 'restored');
    await fetchWal(deps, SEGMENT, dest);
    expect(readFileSync(dest).equals(first.content)).toBe(true);
  });

  it('answers not-found for a missing segment, writes nothing and does not alert', async () => {
    const { deps, alerts, dir } = setup(makeStorage());
    const dest = join(dir, 'RECOVERYXLOG');
    expect(await fetchWal(deps, '000000010000000000000009', dest)).toEqual({ status: 'not-found', name: '000000010000000000000009' });
    expect(await fetchWal(deps, '00000002.history', dest)).toMatchObject({ status: 'not-found' });
    expect(readdirSync(dir)).toEqual([]);
    expect(alerts).toEqual([]);
  });

  it('archives a history file uncompressed beside the timelines', async () => {
    const { deps, dir } = setup(makeStorage());
    const { path, content } = segmentFile(dir, '00000002.history', Buffer.from('1\t0/3000000\tno recovery target specified\n'));
    expect(await pushWal(deps, path)).toMatchObject({ key: 'orders/wal/00000002.history' });
    expect((await deps.storage.getBytes('orders/wal/00000002.history'))?.equals(content)).toBe(true);
    await fetchWal(deps, '00000002.history', join(dir, 'h'));
    expect(readFileSync(join(dir, 'h')).equals(content)).toBe(true);
  });

  it('fails a push of a file that is not a WAL file name with a usage error', async () => {
    const { deps, dir } = setup(makeStorage());
    await expect(pushWal(deps, segmentFile(dir, 'not-a-segment').path)).rejects.toMatchObject({ exitCode: 2 });
  });
});

describe('a corrupted archive', () => {
  it('fails the fetch with a status of 126 or more after retries, alerts, and writes nothing at dest', async () => {
    const root = mkdtempSync(join(work, 'store-'));
    const { deps, alerts, dir } = setup(new FileStorage(pathToFileURL(root).href));
    const attempts: number[] = [];
    deps.sleep = async (ms) => { attempts.push(ms); };
    await pushWal(deps, segmentFile(dir).path);
    const stored = join(root, 'orders', 'wal', '00000001', `${SEGMENT}.gz`);
    const bytes = readFileSync(stored);
    bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
    writeFileSync(stored, bytes);
    const dest = join(dir, 'RECOVERYXLOG');
    const err = await fetchWal(deps, SEGMENT, dest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WalFetchError);
    expect((err as WalFetchError).exitCode).toBeGreaterThanOrEqual(126);
    expect((err as WalFetchError).cause).toBeDefined();
    expect(attempts).toEqual([200, 400]);
    expect(existsSync(dest)).toBe(false);
    expect(readdirSync(dir)).toEqual([SEGMENT]);
    expect(alerts).toHaveLength(1);
  });

  it('a push of the identical file rewrites a stored object that no longer matches its checksum', async () => {
    const root = mkdtempSync(join(work, 'store-'));
    const { deps, alerts, dir } = setup(new FileStorage(pathToFileURL(root).href));
    const { path, content } = segmentFile(dir);
    await pushWal(deps, path);
    writeFileSync(join(root, 'orders', 'wal', '00000001', `${SEGMENT}.gz`), 'garbage');
    expect(await pushWal(deps, path)).toMatchObject({ alreadyArchived: false });
    const dest = join(dir, 'RECOVERYXLOG');
    await fetchWal(deps, SEGMENT, dest);
    expect(readFileSync(dest).equals(content)).toBe(true);
    expect(alerts).toEqual([]);
  });
});
