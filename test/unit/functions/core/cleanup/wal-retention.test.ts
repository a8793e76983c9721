// Retention of base backups and WAL: examples on local storage, then a property over random
// archives (forked timelines, gaps, random base backups and keep rules) on an in-memory store.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Readable } from 'node:stream';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { physicalKeys, walChecksumKey, walFileKey } from '../../../../../functions/core/catalog/layout.ts';
import { planRetention, type RetentionPolicy } from '../../../../../functions/core/cleanup/retention.ts';
import { applyWalRetention, runWalRetention } from '../../../../../functions/core/cleanup/wal-retention.ts';
import { createTextLogger } from '../../../../../functions/core/logger.ts';
import { FileStorage } from '../../../../../functions/core/storage/file.ts';
import type { PutResult, Storage, StoredObject } from '../../../../../functions/core/storage/types.ts';
import { parseSegmentFileName, segmentFileName } from '../../../../../functions/core/wal/lsn.ts';
import { physicalManifest, putBaseBackup, putHistory, putSegments, putWal, seg } from '../../../../helpers/physical-manifests.ts';

const root = mkdtempSync(join(tmpdir(), 'pgops-walret-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshStorage = () => new FileStorage(pathToFileURL(mkdtempSync(join(root, `s${++n}-`))).href);
const NONE: RetentionPolicy = { keepLast: 0, keepDaily: 0, keepWeekly: 0, keepMonthly: 0 };
const NOW = new Date('2026-06-01T00:00:00Z');
const B1 = '20260101T020000Z-aaaa';
const B2 = '20260102T020000Z-bbbb';
const B3 = '20260103T020000Z-cccc';
const keysOf = async (s: Storage, prefix = 'db/') => (await s.list(prefix)).map((o) => o.key);
const walKey = (name: string) => walFileKey('db', name, name.endsWith('.history') ? 'none' : 'gz');

/** Objects in memory, deletions recorded in order: the property runs hundreds of archives. */
class MemoryStorage implements Storage {
  readonly url = 'memory://test';
  readonly objects = new Map<string, { data: Buffer; at: Date }>();
  readonly deletions: string[] = [];
  putStream(_key: string, _body: Readable): Promise<PutResult> { throw new Error('not used'); }
  putBytes(key: string, data: Buffer | string): Promise<PutResult> {
    const buf = Buffer.from(data);
    this.objects.set(key, { data: buf, at: new Date() });
    return Promise.resolve({ key, bytes: buf.length });
  }
  getStream(): Promise<Readable> { throw new Error('not used'); }
  getBytes(key: string): Promise<Buffer | undefined> { return Promise.resolve(this.objects.get(key)?.data); }
  list(prefix: string): Promise<StoredObject[]> {
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
    return Promise.resolve(keys.map((key) => ({ key, size: this.objects.get(key)!.data.length, lastModified: this.objects.get(key)!.at })));
  }
  delete(key: string): Promise<void> {
    this.deletions.push(key);
    this.objects.delete(key);
    return Promise.resolve();
  }
}

describe('base backup and WAL retention', () => {
  it('keeps the base backups the keep rules keep and deletes exactly the WAL before the oldest kept start', async () => {
    const s = freshStorage();
    await putSegments(s, 'db', 1, 1, 9);
    await putWal(s, 'db', `${seg(1, 2)}.00000028.backup`);
    await putWal(s, 'db', `${seg(1, 5)}.00000028.backup`);
    await putWal(s, 'db', `${seg(1, 3)}.partial`, { committed: false }); // a push that never completed
    await s.putBytes(`${walKey(seg(1, 0))}.sha256`, 'x'); // a checksum whose data is gone
    await s.putBytes('db/wal/00000001/README', 'not ours');
    await putBaseBackup(s, 'db', { id: B1, startSegno: 2 });
    await putBaseBackup(s, 'db', { id: B2, startSegno: 5, stopSegno: 6 });
    const r = await applyWalRetention(s, 'db', { ...NONE, keepLast: 1 }, { dryRun: false, now: NOW });
    expect(r.physical).toMatchObject({ kept: [B2], deleted: [B1], invalid: [], orphans: [] });
    expect(r.wal).toMatchObject({ deleted: 7, keptFrom: seg(1, 5), first: seg(1, 0), last: `${seg(1, 4)}` });
    expect(r.wal.bytes).toBeGreaterThan(0);
    const left = await keysOf(s);
    expect(left.filter((k) => k.includes('/physical/'))).toEqual([physicalKeys('db', B2, 'gzip').base, physicalKeys('db', B2, 'gzip').manifest]);
    const wal = left.filter((k) => k.includes('/wal/')).sort();
    expect(wal).toEqual([
      'db/wal/00000001/README',
      ...[5, 6, 7, 8, 9].flatMap((i) => [walKey(seg(1, i)), `${walKey(seg(1, i))}.sha256`]),
      walKey(`${seg(1, 5)}.00000028.backup`), `${walKey(`${seg(1, 5)}.00000028.backup`)}.sha256`,
    ].sort());
  });

  it('a dry run plans the same and deletes nothing', async () => {
    const s = freshStorage();
    await putSegments(s, 'db', 1, 1, 6);
    await putBaseBackup(s, 'db', { id: B1, startSegno: 2 });
    await putBaseBackup(s, 'db', { id: B2, startSegno: 4 });
    const before = await keysOf(s);
    const dry = await applyWalRetention(s, 'db', { ...NONE, keepLast: 1 }, { dryRun: true, now: NOW });
    expect(await keysOf(s)).toEqual(before);
    const real = await applyWalRetention(s, 'db', { ...NONE, keepLast: 1 }, { dryRun: false, now: NOW });
    expect(dry).toEqual(real);
    expect(real.wal).toMatchObject({ deleted: 3, keptFrom: seg(1, 4) });
  });

  it('without a valid base backup no WAL is deleted, and the result says so (an invalid manifest protects nothing and counts for nothing)', async () => {
    const s = freshStorage();
    await putSegments(s, 'db', 1, 1, 4);
    await s.putBytes(physicalKeys('db', B1, 'gzip').manifest, '{ not json');
    const r = await applyWalRetention(s, 'db', NONE, { dryRun: false, now: NOW });
    expect(r.wal).toEqual({ deleted: 0, bytes: 0, keptFrom: null, note: 'no valid base backup: no WAL deleted (every segment may still be needed)' });
    expect(r.physical.invalid).toEqual([{ id: B1, problem: expect.any(String) }]);
    expect((await keysOf(s, 'db/wal/')).length).toBe(8);
    expect(await s.getBytes(physicalKeys('db', B1, 'gzip').manifest)).toBeDefined();
  });

  it('deletes each WAL file\'s checksum object before its data, oldest file first; a base backup\'s manifest before its tar', async () => {
    const s = new MemoryStorage();
    await putSegments(s, 'db', 1, 1, 4);
    await putBaseBackup(s, 'db', { id: B1, startSegno: 1 });
    await putBaseBackup(s, 'db', { id: B2, startSegno: 3 });
    await applyWalRetention(s, 'db', { ...NONE, keepLast: 1 }, { dryRun: false, now: NOW });
    expect(s.deletions).toEqual([
      physicalKeys('db', B1, 'gzip').manifest, physicalKeys('db', B1, 'gzip').base,
      walChecksumKey(walKey(seg(1, 1))), walKey(seg(1, 1)), walChecksumKey(walKey(seg(1, 2))), walKey(seg(1, 2)),
    ]);
  });

  it('after a fork: a kept backup before the switch keeps both timelines from its start, and every history it needs', async () => {
    const s = freshStorage();
    await putSegments(s, 'db', 1, 1, 8);
    await putSegments(s, 'db', 2, 5, 9);
    await putHistory(s, 'db', 2, [{ parent: 1, switchSegno: 5 }]);
    await putBaseBackup(s, 'db', { id: B1, startSegno: 1 });
    await putBaseBackup(s, 'db', { id: B2, startSegno: 3 });
    await putBaseBackup(s, 'db', { id: B3, startSegno: 7, timeline: 2 });
    const r = await applyWalRetention(s, 'db', { ...NONE, keepLast: 2 }, { dryRun: false, now: NOW });
    expect(r.physical.kept).toEqual([B3, B2]);
    expect(r.wal).toMatchObject({ deleted: 2, keptFrom: seg(1, 3) });
    const wal = await keysOf(s, 'db/wal/');
    expect(wal).toContain(walKey('00000002.history'));
    for (const i of [3, 4, 5, 6, 7, 8]) expect(wal).toContain(walKey(seg(1, i)));
    for (const i of [5, 6, 7, 8, 9]) expect(wal).toContain(walKey(seg(2, i)));
  });

  it('a history file goes once nothing on or after its timeline is kept; a timeline with nothing but its history stays', async () => {
    const s = freshStorage();
    await putSegments(s, 'db', 1, 1, 9);
    await putSegments(s, 'db', 2, 2, 3); // a branch abandoned long ago
    await putHistory(s, 'db', 2, [{ parent: 1, switchSegno: 2 }]);
    await putHistory(s, 'db', 3, [{ parent: 1, switchSegno: 9 }]); // just promoted: no segment yet
    await putBaseBackup(s, 'db', { id: B1, startSegno: 6 });
    const r = await applyWalRetention(s, 'db', NONE, { dryRun: false, now: NOW });
    expect(r.wal).toMatchObject({ keptFrom: seg(1, 6) });
    const wal = await keysOf(s, 'db/wal/');
    expect(wal).not.toContain(walKey('00000002.history'));
    expect(wal).not.toContain(`${walKey('00000002.history')}.sha256`);
    expect(wal).toContain(walKey('00000003.history'));
  });

  it('a timeline that began after the oldest kept start keeps its history while only older files of it exist', async () => {
    const s = freshStorage();
    await putSegments(s, 'db', 1, 1, 9);
    await putSegments(s, 'db', 2, 3, 3); // older than the keep point: deleted
    await putHistory(s, 'db', 2, [{ parent: 1, switchSegno: 8 }]); // promoted at 8: its first segments are still to come
    await putSegments(s, 'db', 3, 9, 9); // and a newer timeline beside it
    await putHistory(s, 'db', 3, [{ parent: 1, switchSegno: 9 }]);
    await putBaseBackup(s, 'db', { id: B1, startSegno: 6 });
    const r = await applyWalRetention(s, 'db', NONE, { dryRun: false, now: NOW });
    expect(r.wal).toMatchObject({ keptFrom: seg(1, 6) });
    const wal = await keysOf(s, 'db/wal/');
    expect(wal).not.toContain(walKey(seg(2, 3)));
    expect(wal).toContain(walKey('00000002.history'));
  });

  it('the history of a kept base backup\'s timeline stays, even when none of that timeline\'s segments is kept', async () => {
    const s = freshStorage();
    await putSegments(s, 'db', 1, 1, 9);
    await putSegments(s, 'db', 2, 2, 3);
    await putHistory(s, 'db', 2, [{ parent: 1, switchSegno: 2 }]);
    await putBaseBackup(s, 'db', { id: B1, startSegno: 6 });
    await putBaseBackup(s, 'db', { id: B2, startSegno: 8, timeline: 2 }); // its WAL never reached the archive
    const r = await applyWalRetention(s, 'db', { ...NONE, keepLast: 2 }, { dryRun: false, now: NOW });
    expect(r.physical.kept).toEqual([B2, B1]);
    const wal = await keysOf(s, 'db/wal/');
    expect(wal).not.toContain(walKey(seg(2, 3)));
    expect(wal).toContain(walKey('00000002.history'));
  });

  it('base backup folders without a manifest are removed once a day old, left alone before', async () => {
    const s = new MemoryStorage();
    await putBaseBackup(s, 'db', { id: B2, startSegno: 3 });
    await s.putBytes(physicalKeys('db', B1, 'gzip').base, 'partial');
    const young = await applyWalRetention(s, 'db', NONE, { dryRun: false, now: new Date() });
    expect(young.physical.pending?.map((o) => o.id)).toEqual([B1]);
    const old = await applyWalRetention(s, 'db', NONE, { dryRun: false, now: new Date(Date.now() + 2 * 86_400_000) });
    expect(old.physical.orphans?.map((o) => o.id)).toEqual([B1]);
    expect(await s.getBytes(physicalKeys('db', B1, 'gzip').base)).toBeUndefined();
  });

  it('the cleanup part: skipped without storage or past the deadline; a storage failure is named, never thrown', async () => {
    const { logger } = { logger: createTextLogger({ level: 'error', write: () => {} }) };
    const base = { databaseId: 'db', retention: NONE, logger, now: NOW };
    const failures: string[] = [];
    expect(await runWalRetention(base, false, failures)).toEqual({ physical: { kept: [], deleted: [], skipped: 'no storage configured' }, wal: { deleted: 0, bytes: 0, keptFrom: null, skipped: 'no storage configured' } });
    expect((await runWalRetention({ ...base, storage: new MemoryStorage(), deadline: Date.now() - 1 }, false, failures)).wal.skipped).toBe('deadline');
    const broken = new MemoryStorage();
    broken.list = () => Promise.reject(new Error('bucket unreachable'));
    const r = await runWalRetention({ ...base, storage: broken }, false, failures);
    expect(r.wal.skipped).toBe('failed: bucket unreachable');
    expect(failures).toEqual(['base backup and WAL retention: bucket unreachable']);
  });
});

// --- The property ---

interface Timeline { tl: number; begin: number; last: number; history: Array<{ parent: number; switchSegno: number }> }

const arbArchive = fc.record({
  forks: fc.array(fc.record({ parent: fc.nat(), at: fc.nat({ max: 12 }), length: fc.nat({ max: 10 }) }), { maxLength: 3 }),
  firstLength: fc.nat({ max: 14 }),
  missing: fc.array(fc.record({ tl: fc.nat(), segno: fc.nat({ max: 30 }) }), { maxLength: 6 }),
  extras: fc.array(fc.record({ tl: fc.nat(), segno: fc.nat({ max: 30 }), kind: fc.constantFrom('partial', 'uncommitted', 'orphan-checksum') }), { maxLength: 4 }),
  backups: fc.array(fc.record({ tl: fc.nat(), offset: fc.nat({ max: 14 }), length: fc.nat({ max: 2 }), day: fc.nat({ max: 500 }), hour: fc.nat({ max: 23 }) }), { maxLength: 6 }),
  policy: fc.record({ keepLast: fc.nat({ max: 3 }), keepDaily: fc.nat({ max: 3 }), keepWeekly: fc.nat({ max: 2 }), keepMonthly: fc.nat({ max: 3 }) }),
});

type Archive = typeof arbArchive extends fc.Arbitrary<infer T> ? T : never;

function timelinesOf(a: Archive): Timeline[] {
  const tls: Timeline[] = [{ tl: 1, begin: 1, last: 1 + a.firstLength, history: [] }];
  for (const f of a.forks) {
    const parent = tls[f.parent % tls.length]!;
    const switchSegno = parent.begin + (f.at % (parent.last - parent.begin + 1));
    tls.push({ tl: tls.length + 1, begin: switchSegno, last: switchSegno + f.length, history: [...parent.history, { parent: parent.tl, switchSegno }] });
  }
  return tls;
}

async function buildArchive(s: MemoryStorage, a: Archive, tls: Timeline[]): Promise<Array<{ id: string; tl: number; start: number; stop: number }>> {
  for (const t of tls) {
    const missing = a.missing.filter((m) => tls[m.tl % tls.length] === t).map((m) => m.segno);
    await putSegments(s, 'db', t.tl, t.begin, t.last, missing);
    if (t.history.length > 0) await putHistory(s, 'db', t.tl, t.history);
  }
  for (const e of a.extras) {
    const name = segmentFileName(tls[e.tl % tls.length]!.tl, BigInt(e.segno));
    if (e.kind === 'partial') await putWal(s, 'db', `${name}.partial`);
    else if (e.kind === 'uncommitted') await putWal(s, 'db', name, { committed: false });
    else await s.putBytes(walChecksumKey(walKey(`${name}.partial`)), 'x');
  }
  const backups: Array<{ id: string; tl: number; start: number; stop: number }> = [];
  for (const [i, b] of a.backups.entries()) {
    const t = tls[b.tl % tls.length]!;
    const start = t.begin + (b.offset % (t.last - t.begin + 1));
    const completedAt = new Date(Date.UTC(2025, 0, 1) + b.day * 86_400_000 + b.hour * 3_600_000 + i);
    const id = `${completedAt.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '')}-${i.toString(16).padStart(4, '0')}`;
    await putBaseBackup(s, 'db', { id, completedAt, timeline: t.tl, startSegno: start, stopSegno: start + b.length });
    backups.push({ id, tl: t.tl, start, stop: start + b.length });
  }
  return backups;
}

/** (timeline, segno) of a WAL key, or the timeline of a history file. */
function fileOf(key: string): { tl: number; segno?: number; history: boolean } {
  const name = key.slice('db/wal/'.length).replace(/\.sha256$/, '').replace(/\.gz$/, '').replace(/^[0-9A-F]{8}\//, '');
  if (name.endsWith('.history')) return { tl: Number.parseInt(name.slice(0, 8), 16), history: true };
  const p = parseSegmentFileName(name.slice(0, 24))!;
  return { tl: p.timeline, segno: Number(p.segno), history: false };
}

/** Timelines whose path (per their history) includes `tl`: every timeline recovery from a backup on `tl` may follow. */
const reachableFrom = (tls: Timeline[], tl: number): Timeline[] => tls.filter((t) => t.tl === tl || t.history.some((h) => h.parent === tl));

const SEG = 16 * 1024 * 1024;
/** The backup truly lies on timeline `t`'s path: its start and stop (as the fixture writes them) inside its timeline's span there. */
function onPathOf(t: Timeline, b: { tl: number; start: number; stop: number }): boolean {
  const switchLsn = (i: number) => t.history[i]!.switchSegno * SEG + 0x100;
  const i = t.history.findIndex((h) => h.parent === b.tl);
  const span = b.tl === t.tl ? { begin: t.history.length > 0 ? switchLsn(t.history.length - 1) : 0, end: Infinity }
    : i >= 0 ? { begin: i === 0 ? 0 : switchLsn(i - 1), end: switchLsn(i) } : undefined;
  return span !== undefined && b.start * SEG + 0x28 >= span.begin && b.stop * SEG + 0x100 <= span.end;
}

/** The timeline recovery reads segment `segno` from on timeline `t`'s path: the newest begun by then. */
function readFrom(t: Timeline, segno: number): number {
  const spans = [...t.history.map((h, i) => ({ tl: h.parent, begin: i === 0 ? 0 : t.history[i - 1]!.switchSegno })), { tl: t.tl, begin: t.history.at(-1)?.switchSegno ?? 0 }];
  return [...spans].reverse().find((sp) => sp.begin <= segno)!.tl;
}

describe('WAL retention, property', () => {
  it('never deletes a segment a kept base backup needs, and deletes nothing at or after the oldest kept start', async () => {
    await fc.assert(fc.asyncProperty(arbArchive, async (a) => {
      const s = new MemoryStorage();
      const tls = timelinesOf(a);
      const backups = await buildArchive(s, a, tls);
      const before = new Set(await keysOf(s, 'db/wal/'));
      const plan = planRetention(backups.map((b) => ({ id: b.id, completedAt: new Date(physicalManifest('db', { id: b.id, startSegno: b.start }).completedAt as string) })), a.policy);
      const r = await applyWalRetention(s, 'db', a.policy, { dryRun: false, now: NOW });
      const after = new Set(await keysOf(s, 'db/wal/'));
      const deleted = [...before].filter((k) => !after.has(k));
      expect(r.physical.kept).toEqual(plan.keep);
      expect((await keysOf(s, 'db/physical/')).filter((k) => k.endsWith('manifest.json')).length).toBe(plan.keep.length);
      const kept = backups.filter((b) => plan.keep.includes(b.id));
      if (kept.length === 0) {
        expect(deleted).toEqual([]);
        return;
      }
      const oldestStart = Math.min(...kept.map((b) => b.start));
      expect(r.wal.keptFrom?.slice(8)).toBe(seg(1, oldestStart).slice(8));
      // Nothing a kept backup needs: from its start through the newest segment of every timeline path from it.
      for (const b of kept) {
        for (const t of reachableFrom(tls, b.tl)) {
          for (let segno = b.start; segno <= Math.max(...tls.map((x) => x.last)); segno++) {
            const key = walKey(seg(readFrom(t, segno), segno));
            for (const k of [key, walChecksumKey(key)]) if (before.has(k)) expect(after.has(k)).toBe(true);
          }
          if (t.tl > 1 && onPathOf(t, b)) expect(after.has(walKey(`${t.tl.toString(16).toUpperCase().padStart(8, '0')}.history`))).toBe(true);
        }
      }
      // Every deleted object is older than the oldest kept backup's start (history files: of a timeline with nothing kept).
      for (const k of deleted) {
        const f = fileOf(k);
        if (!f.history) expect(f.segno!).toBeLessThan(oldestStart);
        else expect([...after].some((x) => !fileOf(x).history && reachableFrom(tls, f.tl).some((t) => t.tl === fileOf(x).tl))).toBe(false);
      }
      // ... and every WAL file older than it is gone, with its checksum (no checksum is left without its data).
      for (const k of after) {
        const f = fileOf(k);
        if (!f.history) expect(f.segno!).toBeGreaterThanOrEqual(oldestStart);
      }
    }), { numRuns: 150 });
  }, 120_000);
});
