// Backup, list and verify against a real PostgreSQL and local storage.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { backupLockKey, runBackup } from '../../../../../functions/core/backup/backup.ts';
import { listBackups, resolveBackup } from '../../../../../functions/core/catalog/catalog.ts';
import { BackupLockedError, BackupNotFoundError, VerifyError } from '../../../../../functions/core/backup/errors.ts';
import { backupKeys } from '../../../../../functions/core/catalog/layout.ts';
import { verifyBackup } from '../../../../../functions/core/backup/verify.ts';
import { exitCodeOf } from '../../../../../functions/core/errors.ts';
import { useTestCluster } from '../../../../helpers/postgres.ts';
import { allFiles, freshStorage, harness, seed, sha256File } from '../../../../helpers/backup-fixtures.ts';

const cluster = useTestCluster();
const { storage, dir } = freshStorage();
let db = '';

beforeAll(async () => {
  db = await cluster.createDatabase('shop');
  await seed(cluster, db);
});

describe('backup', () => {
  it('streams a custom-format dump whose manifest matches the stored object', async () => {
    const progress: number[] = [];
    const h = harness(cluster, storage, db, { onProgress: (p) => progress.push(p.bytes), clock: () => new Date('2026-11-22T02:00:00.123Z') });
    const m = await runBackup(h.deps);

    expect(m.id).toMatch(/^20261122T020000Z-[0-9a-f]{4}$/);
    expect(m).toMatchObject({ database: 'shop', kind: 'full', format: 'custom', key: `shop/logical/${m.id}/dump`, migration: '002_orders', startedAt: '2026-11-22T02:00:00.123Z' });
    expect(m.serverVersion).toMatch(/^15\./);
    expect(m.pgDumpVersion).toMatch(/pg_dump \(PostgreSQL\) 15/);
    expect(m.options).toEqual({ schemaOnly: false, dataOnly: false, tables: [], excludeTables: [], jobs: 1, compression: 'gzip:1', rowCounts: 'exact' });
    expect(m.tables).toEqual([
      { schema: 'audit', name: 'events', rows: 500 },
      { schema: 'public', name: 'orders', rows: 3000 },
      { schema: 'public', name: 'pgmigrations', rows: 2 },
      { schema: 'public', name: 'users', rows: 2000 },
    ]);

    const dumpPath = join(dir, m.key);
    expect(sha256File(dumpPath)).toEqual({ sha256: m.sha256, bytes: m.bytes });
    expect(progress.at(-1)).toBe(m.bytes);
    const stored = JSON.parse(readFileSync(join(dir, backupKeys('shop', m.id).manifest), 'utf8'));
    expect(stored).toEqual(m);
    // pg_restore reads it (and the whole archive, not only its table of contents).
    const list = execFileSync(cluster.pg.bin('pg_restore'), ['--list', dumpPath], { encoding: 'utf8' });
    expect(list).toMatch(/TABLE DATA public users/);
    expect(spawnSync(cluster.pg.bin('pg_restore'), ['--file=/dev/null', dumpPath]).status).toBe(0);

    // Nothing in logs or alerts gives the password away.
    const password = cluster.pg.password;
    expect(h.logs.join('')).not.toContain(password);
    expect(JSON.stringify(h.alerter.sent)).not.toContain(password);
    expect(h.alerter.sent).toEqual([]);
  });

  it('lists backups from manifests only, newest first, and resolves latest', async () => {
    const h = harness(cluster, storage, db, { clock: () => new Date('2026-11-23T02:00:00Z') });
    const newer = await runBackup(h.deps, { schemaOnly: true });
    expect(newer.tables.every((t) => t.rows === null)).toBe(true);
    // A dump without a manifest (a crashed run) is not a backup.
    await storage.putBytes('shop/logical/20261124T020000Z-dead/dump', 'partial');

    const list = await listBackups(storage, 'shop');
    expect(list.map((b) => b.id)[0]).toBe(newer.id);
    expect(list).toHaveLength(2);
    expect(list.map((b) => b.id)).not.toContain('20261124T020000Z-dead');
    // latest is the newest full backup: the newer schema-only one is restored only when named.
    expect((await resolveBackup(storage, 'shop', 'latest')).id).toBe(list[1]!.id);
    expect((await resolveBackup(storage, 'shop', newer.id)).id).toBe(newer.id);
    expect((await resolveBackup(storage, 'shop', list[1]!.id)).id).toBe(list[1]!.id);
    await expect(resolveBackup(storage, 'shop', '20200101T000000Z-abcd')).rejects.toThrow(BackupNotFoundError);
    await expect(resolveBackup(storage, 'nothing-here', 'latest')).rejects.toThrow(/no backup of database "nothing-here"/);
    expect(exitCodeOf(await resolveBackup(storage, 'nothing-here', 'latest').catch((e) => e))).toBe(1);
    await storage.delete('shop/logical/20261124T020000Z-dead/dump');
  });

  it('verifies a backup, and a restore test records restore-test.json', async () => {
    const h = harness(cluster, storage, db);
    const m = await runBackup(h.deps, { excludeTables: ['audit.*'] });
    expect(m.tables.map((t) => `${t.schema}.${t.name}`)).toEqual(['public.orders', 'public.pgmigrations', 'public.users']);

    const plain = await verifyBackup(h.deps, m.id);
    expect(plain).toMatchObject({ backupId: m.id, ok: true, sha256Ok: true, archiveReadable: true, bytes: m.bytes });
    expect(plain.restoreTest).toBeUndefined();

    const tested = await verifyBackup(h.deps, m.id, { restoreTest: true });
    expect(tested.restoreTest).toMatchObject({ ok: true, backupId: m.id, compared: 3, tables: [] });
    const recorded = JSON.parse(readFileSync(join(dir, backupKeys('shop', m.id).restoreTest), 'utf8'));
    expect(recorded).toMatchObject({ ok: true, tables: [] });
    expect(typeof recorded.checkedAt).toBe('string');
    expect(typeof recorded.durationMs).toBe('number');
    // The scratch database is gone.
    const left = await cluster.query(`SELECT datname FROM pg_database WHERE datname LIKE 'pgops_verify_%'`);
    expect(left.rowCount).toBe(0);
    expect(h.alerter.sent).toEqual([]);

    // A restore whose counts differ from the manifest fails and is recorded as failed.
    const manifestPath = join(dir, backupKeys('shop', m.id).manifest);
    const edited = { ...m, tables: m.tables.map((t) => (t.name === 'users' ? { ...t, rows: 1999 } : t)) };
    writeFileSync(manifestPath, JSON.stringify(edited));
    const err = await verifyBackup(h.deps, m.id, { restoreTest: true }).catch((e: unknown) => e) as VerifyError;
    expect(err).toBeInstanceOf(VerifyError);
    expect(err.problems).toEqual(['restore test: public.users has 2000 rows, the manifest says 1999']);
    const failed = JSON.parse(readFileSync(join(dir, backupKeys('shop', m.id).restoreTest), 'utf8'));
    expect(failed).toMatchObject({ ok: false, tables: [{ schema: 'public', name: 'users', expected: 1999, actual: 2000 }], error: '1 table(s) differ: public.users has 2000 rows, the manifest says 1999' });
    expect(h.alerter.sent[0]).toMatchObject({ severity: 'critical', job: 'verify' });
    writeFileSync(manifestPath, JSON.stringify(m));
  });

  it('compresses as told: none stores the COPY text as is, gzip:9 is smaller, and the manifest says which', async () => {
    const h = harness(cluster, storage, db);
    const plain = await runBackup(h.deps, { compression: 'none' });
    const tight = await runBackup(h.deps, { compression: 'gzip:9' });
    expect(plain.options.compression).toBe('none');
    expect(tight.options.compression).toBe('gzip:9');
    expect(tight.bytes).toBeLessThan(plain.bytes / 2);
    // Uncompressed: the seeded rows are readable in the stored bytes; both restore-read to the end.
    expect(readFileSync(join(dir, plain.key)).includes('user1999@example.com')).toBe(true);
    for (const m of [plain, tight]) expect(spawnSync(cluster.pg.bin('pg_restore'), ['--file=/dev/null', join(dir, m.key)]).status).toBe(0);
    expect((await verifyBackup(h.deps, plain.id, { restoreTest: true })).restoreTest).toMatchObject({ ok: true, compared: 4 });
  });

  it('refuses zstd with this pg_dump 15 before dumping, naming the version, and stores nothing', async () => {
    const h = harness(cluster, storage, db);
    const before = allFiles(dir).length;
    const err = await runBackup(h.deps, { compression: 'zstd:3' }).catch((e: unknown) => e) as Error;
    expect(err.message).toMatch(/backup\.compression "zstd:3" needs pg_dump 16 or newer, and this one is 15/);
    expect(exitCodeOf(err)).toBe(2);
    expect(allFiles(dir).length).toBe(before);
    await expect(runBackup(h.deps, { compression: 'gzip:12' })).rejects.toThrow(/--compression "gzip:12": gzip levels run from 0 to 9/);
  });

  it('takes row counts from the statistics with rowCounts estimate; the restore test then checks presence only', async () => {
    await cluster.query('ANALYZE', [], db);
    const h = harness(cluster, storage, db);
    const m = await runBackup(h.deps, { rowCounts: 'estimate' });
    expect(m.options.rowCounts).toBe('estimate');
    // ANALYZE of tables this small reads them whole: the estimates are the counts.
    expect(m.tables).toEqual([
      { schema: 'audit', name: 'events', rows: 500 },
      { schema: 'public', name: 'orders', rows: 3000 },
      { schema: 'public', name: 'pgmigrations', rows: 2 },
      { schema: 'public', name: 'users', rows: 2000 },
    ]);
    // An estimate that is off is not a failed restore test; a missing table still is.
    const manifestPath = join(dir, backupKeys('shop', m.id).manifest);
    writeFileSync(manifestPath, JSON.stringify({ ...m, tables: [...m.tables.map((t) => ({ ...t, rows: 7 })), { schema: 'public', name: 'gone', rows: 1 }] }));
    const err = await verifyBackup(h.deps, m.id, { restoreTest: true }).catch((e: unknown) => e) as VerifyError;
    expect(err.problems).toEqual(['restore test: public.gone is missing, the manifest says 1']);
    writeFileSync(manifestPath, JSON.stringify(m));
    expect((await verifyBackup(h.deps, m.id, { restoreTest: true })).restoreTest).toMatchObject({ ok: true, compared: 4 });
  });

  it('counts rows in the dump\'s own snapshot while writes go on: the restore test then matches', async () => {
    const h = harness(cluster, storage, db);
    const writer = new pg.Client({ connectionString: cluster.pg.url(db) });
    await writer.connect();
    let writing = true;
    let inserted = 0;
    const writes = (async () => {
      while (writing) {
        await writer.query("INSERT INTO orders (user_id, total) SELECT 1, 1 FROM generate_series(1, 50)");
        inserted += 50;
      }
    })();
    try {
      const m = await runBackup(h.deps);
      const tested = await verifyBackup(h.deps, m.id, { restoreTest: true });
      expect(tested.restoreTest).toMatchObject({ ok: true, compared: 4, tables: [] });
    } finally {
      writing = false;
      await writes;
      await writer.end();
    }
    expect(inserted).toBeGreaterThan(0);
    await cluster.query('DELETE FROM orders WHERE id > 3000', [], db);
  });

  it('reports a backup whose dump is gone', async () => {
    const h = harness(cluster, storage, db);
    const m = await runBackup(h.deps);
    await storage.delete(m.key);
    const err = await verifyBackup(h.deps, m.id).catch((e: unknown) => e) as VerifyError;
    expect(err).toBeInstanceOf(VerifyError);
    expect(err.message).toMatch(/its dump shop\/logical\/.*\/dump is missing/);
    await storage.delete(backupKeys('shop', m.id).manifest);
  });

  it('detects a flipped byte (exit 1, alert) and a truncated dump', async () => {
    const h = harness(cluster, storage, db);
    const m = await runBackup(h.deps);
    const path = join(dir, m.key);
    const original = readFileSync(path);
    const flipped = Buffer.from(original);
    flipped[Math.floor(flipped.length / 2)]! ^= 0x01;
    writeFileSync(path, flipped);
    try {
      const err = await verifyBackup(h.deps, m.id).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(VerifyError);
      expect(exitCodeOf(err)).toBe(1);
      expect((err as VerifyError).message).toMatch(/sha256: the stored object hashes to [0-9a-f]{64}, the manifest says/);
      expect(h.alerter.sent).toHaveLength(1);
      expect(h.alerter.sent[0]).toMatchObject({ severity: 'critical', job: 'verify', database: 'shop' });

      // Truncated: the table of contents still lists, but the archive is not readable to its end.
      writeFileSync(path, original.subarray(0, Math.floor(original.length * 0.7)));
      const trunc = await verifyBackup(h.deps, m.id).catch((e: unknown) => e) as VerifyError;
      expect(trunc).toBeInstanceOf(VerifyError);
      expect(trunc.problems.join('\n')).toMatch(/size: the stored object has \d+ bytes/);
      expect(trunc.problems.join('\n')).toMatch(/archive: pg_restore could not read it to its end/);
    } finally {
      writeFileSync(path, original);
    }
    expect((await verifyBackup(h.deps, m.id)).ok).toBe(true);
  });

  it('allows one backup at a time per database', async () => {
    const holder = new pg.Client({ connectionString: cluster.url(db) });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1::bigint)', [backupLockKey('shop').toString()]);
      const before = allFiles(dir);
      const h = harness(cluster, storage, db);
      const started = Date.now();
      const err = await runBackup(h.deps).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BackupLockedError);
      expect((err as Error).message).toMatch(/another backup of database "shop" is already running \(held by backend \d+/);
      expect(Date.now() - started).toBeLessThan(5000);
      expect(allFiles(dir)).toEqual(before);
      expect(h.alerter.sent[0]).toMatchObject({ severity: 'warning', job: 'backup' });
    } finally {
      await holder.end();
    }
  });

  it('round-trips a parallel (--jobs 2) backup as a tar of the directory format', async () => {
    const h = harness(cluster, storage, db);
    const m = await runBackup(h.deps, { jobs: 2 });
    expect(m.format).toBe('directory-tar');
    expect(sha256File(join(dir, m.key))).toEqual({ sha256: m.sha256, bytes: m.bytes });
    const listing = execFileSync('tar', ['-tf', join(dir, m.key)], { encoding: 'utf8' });
    expect(listing).toMatch(/^toc\.dat$/m);
    const v = await verifyBackup(h.deps, m.id, { restoreTest: true });
    expect(v).toMatchObject({ ok: true, sha256Ok: true, archiveReadable: true, restoreTest: { ok: true, compared: 4 } });
    expect(h.alerter.sent).toEqual([]);
    expect(allFiles(dir).filter((f) => f.includes('pgops-tmp'))).toEqual([]);
  });
});
