// The wal-archiving check's decisions: the archive (age, gaps since the oldest kept base backup),
// the replication slots, and how the archive and the server's side make one result and one metric.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultFileConfig } from '../../../../../functions/core/config.ts';
import type { CheckResult, HealthRun } from '../../../../../functions/core/health/index.ts';
import { readWalArchive, slotFindings, walArchivingResult, type SlotFacts, type WalArchiveFacts } from '../../../../../functions/core/health/wal-archiving.ts';
import { FileStorage } from '../../../../../functions/core/storage/file.ts';
import type { Storage } from '../../../../../functions/core/storage/types.ts';
import { emitHealthMetrics } from '../../../../../functions/health-check/index.ts';
import { putBaseBackup, putSegments, seg } from '../../../../helpers/physical-manifests.ts';

const root = mkdtempSync(join(tmpdir(), 'pgops-walhealth-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshStorage = () => new FileStorage(pathToFileURL(mkdtempSync(join(root, `s${++n}-`))).href);
const GiB = 1024 ** 3;
const config = defaultFileConfig({ retention: { keepLast: 1, keepDaily: 0, keepWeekly: 0, keepMonthly: 0 } });
const MAX = { maxWalArchiveAgeMinutes: 15 };
const serverOk: CheckResult = { name: 'wal-archiving', status: 'ok', summary: 'last segment 000000010000000000000009 archived 30 s ago; no failures since the last run', value: 30, threshold: 3600, details: { archiveMode: 'on' } };
const B1 = '20260101T020000Z-aaaa';
const B2 = '20260102T020000Z-bbbb';

/** The archive read `minutesLater` after its newest segment was stored. */
async function facts(s: Storage, minutesLater = 1): Promise<WalArchiveFacts> {
  const newest = Math.max(0, ...(await s.list('db/wal/')).map((o) => o.lastModified.getTime()));
  return readWalArchive(s, 'db', config, new Date(newest + minutesLater * 60_000));
}

describe('the archive side', () => {
  it('no WAL and no base backup (or no storage): absent, and the server side stands alone without a value', async () => {
    const absent = await facts(freshStorage());
    expect(absent).toEqual({ state: 'absent', why: expect.stringContaining('no WAL archive and no base backup') });
    expect(await readWalArchive(undefined, 'db', config, new Date())).toEqual({ state: 'absent', why: 'no storage configured' });
    const notConfigured: CheckResult = { name: 'wal-archiving', status: 'ok', summary: 'not configured (archive_mode = off)', details: { archiveMode: 'off' } };
    expect(walArchivingResult(absent, notConfigured, MAX)).toEqual(notConfigured);
    expect(walArchivingResult(absent, serverOk, MAX)).toEqual({ name: 'wal-archiving', status: 'ok', summary: serverOk.summary, details: { archiveMode: 'on' } });
  });

  it('a fresh, whole archive: ok, value = the newest segment\'s age in minutes, threshold from the config', async () => {
    const s = freshStorage();
    await putSegments(s, 'db', 1, 1, 6);
    await putBaseBackup(s, 'db', { id: B1, startSegno: 2 });
    const r = walArchivingResult(await facts(s, 2), serverOk, MAX);
    expect(r).toMatchObject({ status: 'ok', value: 2, threshold: 15 });
    expect(r.summary).toMatch(new RegExp(`^newest archived WAL ${seg(1, 6)} is 2 min old; restore window from .* \\(base backup ${B1}\\); last segment`));
    expect(r.details).toMatchObject({ archiveMode: 'on', archive: { newest: seg(1, 6), ageMinutes: 2, gaps: [], problems: [], keptBaseBackups: 1 } });
  });

  it('a newest segment older than health.maxWalArchiveAgeMinutes is critical, and says what it costs', async () => {
    const s = freshStorage();
    await putSegments(s, 'db', 1, 1, 3);
    await putBaseBackup(s, 'db', { id: B1, startSegno: 1 });
    const r = walArchivingResult(await facts(s, 40), serverOk, MAX);
    expect(r).toMatchObject({ status: 'critical', value: 40, threshold: 15 });
    expect(r.summary).toMatch(/^newest archived WAL 000000010000000000000003 is 40 min old \(max 15 min\): archiving has stopped or fallen behind, recovery cannot reach the last 40 min/);
  });

  it('an idle server: a newest segment of hours ago is not a lag when the server still writes in the segment after it', async () => {
    const s = freshStorage();
    await putSegments(s, 'db', 1, 1, 3);
    await putBaseBackup(s, 'db', { id: B1, startSegno: 1 });
    const SEG = 16 * 1024 * 1024;
    const at = (segno: number, offset: number) => ({ ...serverOk, details: { archiveMode: 'on', serverWal: { lsn: `0/${(segno * SEG + offset).toString(16).toUpperCase()}`, segmentSize: SEG } } });
    // The server writes in segment 4, 512 bytes in: segment 3 archived is all there is to archive.
    const idle = walArchivingResult(await facts(s, 300), at(4, 512), MAX);
    expect(idle).toMatchObject({ status: 'ok', value: 0 });
    expect(idle.summary).toMatch(/^the archive is caught up with the server: newest archived WAL 000000010000000000000003, the server writes at 0\/4000200; 512 B written since, archived when the segment switches/);
    // Two segments further on, the same archive is 300 minutes behind.
    const behind = walArchivingResult(await facts(s, 300), at(6, 0), MAX);
    expect(behind).toMatchObject({ status: 'critical', value: 300 });
    expect(behind.summary).toMatch(/^newest archived WAL 000000010000000000000003 is 300 min old \(max 15 min\)/);
  });

  it('a gap after the oldest kept base backup is critical and named; one before it (WAL only a deleted backup needed) is not', async () => {
    const s = freshStorage();
    await putSegments(s, 'db', 1, 1, 9, [3]);
    await putBaseBackup(s, 'db', { id: B1, startSegno: 1 });
    await putBaseBackup(s, 'db', { id: B2, startSegno: 5 });
    // keepLast 1: B1 is not kept, so the gap at 3 harms nothing that stays
    expect(walArchivingResult(await facts(s), serverOk, MAX).status).toBe('ok');
    const keepBoth = await readWalArchive(s, 'db', defaultFileConfig({ retention: { keepLast: 2 } }), new Date());
    const r = walArchivingResult(keepBoth, serverOk, MAX);
    expect(r.status).toBe('critical');
    expect(r.summary).toContain(`gap: ${seg(1, 3)} is missing; recovery from backup ${B1} can reach 0/3000000`);
  });

  it('base backups without any archived WAL: critical, nothing can be recovered', async () => {
    const s = freshStorage();
    await putBaseBackup(s, 'db', { id: B1, startSegno: 1 });
    const r = walArchivingResult(await readWalArchive(s, 'db', config, new Date()), serverOk, MAX);
    expect(r.status).toBe('critical');
    expect(r.value).toBeUndefined();
    expect(r.summary).toMatch(/^base backups exist but no WAL segment is archived/);
  });

  it('an unreadable archive is unknown; an unreachable server leaves the archive\'s age in place', async () => {
    const broken: Storage = Object.assign(freshStorage(), { list: () => Promise.reject(new Error('AccessDenied: s3:ListBucket')) });
    const unreadable = await readWalArchive(broken, 'db', config, new Date());
    expect(unreadable).toEqual({ state: 'unreadable', error: 'AccessDenied: s3:ListBucket' });
    expect(walArchivingResult(unreadable, serverOk, MAX)).toMatchObject({ status: 'unknown', summary: expect.stringMatching(/^could not read the WAL archive: AccessDenied/) });
    const s = freshStorage();
    await putSegments(s, 'db', 1, 1, 3);
    await putBaseBackup(s, 'db', { id: B1, startSegno: 1 });
    const unreachable: CheckResult = { name: 'wal-archiving', status: 'unknown', summary: 'not checked: the database is unreachable' };
    const r = walArchivingResult(await facts(s, 3), unreachable, MAX);
    expect(r).toMatchObject({ status: 'unknown', value: 3 });
    expect(r.summary).toMatch(/; not checked: the database is unreachable$/);
  });

  it('the server side\'s own status counts: a failing archiver makes the check critical even with a fresh archive', async () => {
    const s = freshStorage();
    await putSegments(s, 'db', 1, 1, 3);
    await putBaseBackup(s, 'db', { id: B1, startSegno: 1 });
    const failing: CheckResult = { name: 'wal-archiving', status: 'critical', summary: 'archiving is failing: WAL 000000010000000000000004 failed at ...', value: 3, threshold: 0 };
    const r = walArchivingResult(await facts(s), failing, MAX);
    expect(r).toMatchObject({ status: 'critical', value: 1, threshold: 15 });
    expect(r.summary).toContain('archiving is failing');
  });
});

describe('replication slots', () => {
  const slot = (over: Partial<SlotFacts>): SlotFacts => ({ name: 'pgops_orders', type: 'physical', active: true, walStatus: 'reserved', retainedBytes: 1024, ...over });

  it('an active slot holding little is fine', () => {
    expect(slotFindings([slot({})], GiB)).toEqual([]);
  });

  it('a lost slot is critical and says the way back', () => {
    expect(slotFindings([slot({ walStatus: 'lost', active: false, retainedBytes: null })], GiB)).toEqual([
      { status: 'critical', line: 'replication slot pgops_orders has lost WAL it needed (wal_status lost): its consumer cannot continue without a gap; drop and recreate the slot, then take a new base backup' },
    ]);
  });

  it('too much retained WAL or a slot past max_slot_wal_keep_size: warnings', () => {
    expect(slotFindings([slot({ retainedBytes: 2 * GiB })], GiB)).toEqual([{ status: 'warning', line: expect.stringMatching(/^replication slot pgops_orders holds back 2\.0 GiB of WAL \(max 1\.0 GiB\)/) }]);
    expect(slotFindings([slot({ walStatus: 'unreserved', retainedBytes: 5 * GiB })], GiB).map((f) => f.status)).toEqual(['warning']);
  });

  it('an inactive slot holding little is fine: wal receive holds its slot without streaming through it', () => {
    expect(slotFindings([slot({ active: false })], GiB)).toEqual([]);
    expect(slotFindings([slot({ active: false, retainedBytes: 2 * GiB })], GiB).map((f) => f.status)).toEqual(['warning']);
  });
});

describe('the WalArchiveAgeMinutes metric', () => {
  const run = (check: CheckResult): HealthRun => ({
    result: { status: 'ok', checks: [check], database: 'orders', environment: 'prod', checkedAt: '2026-11-22T00:00:00Z', durationMs: 5 },
    backup: {},
  });
  const emitted = (check: CheckResult) => {
    const metrics: Array<[string, number]> = [];
    emitHealthMetrics({ addDimension() {}, addMetric(name, _unit, value) { metrics.push([name, value]); }, publishStoredMetrics() {} }, run(check));
    return metrics;
  };

  it('is emitted with the check\'s value when there is an archive, and not at all without one', () => {
    expect(emitted({ name: 'wal-archiving', status: 'ok', summary: '', value: 2.5, threshold: 15 })).toContainEqual(['WalArchiveAgeMinutes', 2.5]);
    expect(emitted({ name: 'wal-archiving', status: 'ok', summary: 'not configured (archive_mode = off)' }).map(([name]) => name)).not.toContain('WalArchiveAgeMinutes');
  });
});
