// Restore against a real PostgreSQL: the target's state checked, the dump streamed into pg_restore
// with its checksum gating the commit (or fetched and checked first for --table/--jobs).
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../../../../functions/core/backup/backup.ts';
import { RestoreError, RestoreRefusedError, VerifyError } from '../../../../../functions/core/backup/errors.ts';
import type { BackupManifest } from '../../../../../functions/core/catalog/manifest.ts';
import { runRestore } from '../../../../../functions/core/backup/restore.ts';
import { exitCodeOf, UsageError } from '../../../../../functions/core/errors.ts';
import { useTestCluster } from '../../../../helpers/postgres.ts';
import { databaseExists, freshStorage, harness, rowCounts, seed } from '../../../../helpers/backup-fixtures.ts';

const cluster = useTestCluster();
const { storage, dir } = freshStorage();
const staging = mkdtempSync(join(tmpdir(), 'pgops-restore-staging-'));
afterAll(() => rmSync(staging, { recursive: true, force: true }));
let source: Record<string, number> = {};
let backup: BackupManifest;

const h = () => harness(cluster, storage, 'shop', { tmpDir: staging });

beforeAll(async () => {
  await cluster.createDatabase('shop');
  await seed(cluster, 'shop');
  source = await rowCounts(cluster, 'shop');
  backup = await runBackup(h().deps);
});

describe('restore', () => {
  it('restores latest into a new database with --create: row counts equal the source', async () => {
    const x = h();
    const r = await runRestore(x.deps, 'latest', { targetDb: 'shop_copy', create: true });
    expect(r).toMatchObject({ backupId: backup.id, targetDb: 'shop_copy', tables: 4, dryRun: false, created: true });
    expect(r.durationMs).toBeGreaterThan(0);
    expect(await rowCounts(cluster, 'shop_copy')).toEqual(source);
    expect(readdirSync(staging)).toEqual([]);
    expect(x.alerter.sent).toEqual([]);
    expect(x.logs.join('')).not.toContain(cluster.pg.password);
  });

  it('refuses a non-empty target without --clean, and replaces its contents with --clean', async () => {
    await cluster.createDatabase('shop_busy');
    await cluster.query('CREATE TABLE keep_me (id int); INSERT INTO keep_me VALUES (1)', [], 'shop_busy');
    const x = h();
    const err = await runRestore(x.deps, backup.id, { targetDb: 'shop_busy' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RestoreRefusedError);
    expect(exitCodeOf(err)).toBe(1);
    expect((err as Error).message).toMatch(/database "shop_busy" is not empty: add --clean/);
    expect(await rowCounts(cluster, 'shop_busy')).toEqual({ 'public.keep_me': 1 });
    expect(x.alerter.sent).toEqual([]);

    await cluster.query('DROP TABLE keep_me', [], 'shop_busy');
    await runRestore(x.deps, backup.id, { targetDb: 'shop_busy' });
    await cluster.query('DELETE FROM orders WHERE id > 10', [], 'shop_busy');
    const again = await runRestore(x.deps, backup.id, { targetDb: 'shop_busy', clean: true });
    expect(again.tables).toBe(4);
    expect(await rowCounts(cluster, 'shop_busy')).toEqual(source);
  });

  it('refuses --create for an existing database and a missing database without --create', async () => {
    await expect(runRestore(h().deps, 'latest', { targetDb: 'shop', create: true })).rejects.toThrow(/database "shop" already exists/);
    await expect(runRestore(h().deps, 'latest', { targetDb: 'nowhere' })).rejects.toThrow(/database "nowhere" does not exist: add --create/);
    const bad = await runRestore(h().deps, 'latest', { targetDb: 'x"; DROP DATABASE shop; --', create: true }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(UsageError);
    expect(exitCodeOf(bad)).toBe(2);
  });

  it('a database a killed --create restore left (its in-progress mark, still empty) is reclaimed; one with objects is refused', async () => {
    // What `kill -9` mid-restore leaves: the created database, empty (one transaction), still marked.
    const mark = "pgops: restore in progress (backup 20261122T020000Z-3fa2, started 2026-11-22T02:00:00.000Z)";
    await cluster.createDatabase('shop_killed');
    await cluster.query(`COMMENT ON DATABASE shop_killed IS '${mark}'`);
    const x = h();
    const dry = await runRestore(x.deps, backup.id, { targetDb: 'shop_killed', create: true, dryRun: true });
    expect(dry.dryRun).toBe(true);
    expect(await databaseExists(cluster, 'shop_killed')).toBe(true);
    const r = await runRestore(x.deps, backup.id, { targetDb: 'shop_killed', create: true });
    expect(r).toMatchObject({ created: true, tables: 4 });
    expect(await rowCounts(cluster, 'shop_killed')).toEqual(source);
    expect(x.logs.join('')).toMatch(/dropped database shop_killed, left empty by an interrupted restore/);
    // A finished restore leaves no mark: the next --create is refused as for any existing database.
    const comment = await cluster.query<{ d: string | null }>("SELECT shobj_description(oid, 'pg_database') AS d FROM pg_database WHERE datname = 'shop_killed'");
    expect(comment.rows[0]?.d).toBeNull();
    await expect(runRestore(x.deps, backup.id, { targetDb: 'shop_killed', create: true })).rejects.toThrow(/database "shop_killed" already exists/);

    await cluster.createDatabase('shop_killed_full');
    await cluster.query(`COMMENT ON DATABASE shop_killed_full IS '${mark}'`);
    await cluster.query('CREATE TABLE half (id int)', [], 'shop_killed_full');
    const err = await runRestore(x.deps, backup.id, { targetDb: 'shop_killed_full', create: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RestoreRefusedError);
    expect((err as Error).message).toMatch(/was left by an interrupted restore \(pgops: restore in progress .*\) and holds 1 relations: drop it, or restore into it with --clean/);
    expect(await rowCounts(cluster, 'shop_killed_full')).toEqual({ 'public.half': 0 });
    expect(x.alerter.sent).toEqual([]);
  });

  it('dry-run checks the backup and shows the plan, touching nothing', async () => {
    const r = await runRestore(h().deps, 'latest', { targetDb: 'shop_dry', create: true, dryRun: true });
    expect(r).toMatchObject({ dryRun: true, created: false, tables: 4, targetDb: 'shop_dry' });
    expect(r.plan?.entries['TABLE DATA']).toBe(4);
    expect(r.plan?.tables).toEqual(['audit.events', 'public.orders', 'public.pgmigrations', 'public.users']);
    expect(r.plan?.steps.join('\n')).toMatch(/create database shop_dry/);
    expect(await databaseExists(cluster, 'shop_dry')).toBe(false);
  });

  it('restores only the given tables, in parallel with --jobs', async () => {
    const r = await runRestore(h().deps, backup.id, { targetDb: 'shop_users', create: true, tables: ['users'], jobs: 2 });
    expect(r.tables).toBe(1);
    expect(await rowCounts(cluster, 'shop_users')).toEqual({ 'public.users': 2000 });
  });

  it('restores a parallel (directory-tar) backup with --jobs 2', async () => {
    const m = await runBackup(h().deps, { jobs: 2 });
    expect(m.format).toBe('directory-tar');
    await runRestore(h().deps, m.id, { targetDb: 'shop_par', create: true, jobs: 2 });
    expect(await rowCounts(cluster, 'shop_par')).toEqual(source);
    expect(readdirSync(staging)).toEqual([]);
  });

  it('never commits a corrupted dump that pg_restore itself accepts: the held-back tail is not given', async () => {
    // Uncompressed, so one changed letter in a row is still a valid archive: only the hash can tell.
    const plain = await runBackup(h().deps, { compression: 'none' });
    const path = join(dir, plain.key);
    const original = readFileSync(path);
    const at = original.indexOf('user1234@example.com');
    expect(at).toBeGreaterThan(0);
    const edited = Buffer.from(original);
    edited[at + 4] = '9'.charCodeAt(0);
    writeFileSync(path, edited);
    await cluster.createDatabase('shop_guarded');
    // The object's end arrives late: without the held-back tail, pg_restore would commit meanwhile.
    const lateEnd = Object.create(storage) as typeof storage;
    lateEnd.getStream = async (key) => (await storage.getStream(key)).pipe(new Transform({
      transform: (chunk: Buffer, _enc, cb) => cb(null, chunk),
      flush: (cb) => { setTimeout(cb, 3000); },
    }));
    const x = harness(cluster, lateEnd, 'shop', { tmpDir: staging });
    try {
      const err = await runRestore(x.deps, plain.id, { targetDb: 'shop_guarded' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(VerifyError);
      expect((err as Error).message).toMatch(/^refusing to restore backup .*: it does not match its manifest \(sha256: .*\): pg_restore was stopped before the end of the archive, nothing was committed$/);
    } finally {
      writeFileSync(path, original);
    }
    // The existing, empty target is still empty: the transaction was rolled back.
    expect(await rowCounts(cluster, 'shop_guarded')).toEqual({});
    expect(x.alerter.sent).toHaveLength(1);
    // The same dump, intact, restores.
    await runRestore(h().deps, plain.id, { targetDb: 'shop_guarded' });
    expect(await rowCounts(cluster, 'shop_guarded')).toEqual(source);
  });

  it('refuses a truncated dump with nothing committed, and names a missing one', async () => {
    const path = join(dir, backup.key);
    const original = readFileSync(path);
    writeFileSync(path, original.subarray(0, original.length - 10));
    try {
      const err = await runRestore(h().deps, backup.id, { targetDb: 'shop_short', create: true }).catch((e: unknown) => e);
      expect((err as Error).message).toMatch(/it does not match its manifest \(size: the stored object has \d+ bytes, the manifest says \d+; sha256: /);
      rmSync(path);
      const gone = await runRestore(h().deps, backup.id, { targetDb: 'shop_short', create: true }).catch((e: unknown) => e);
      expect(gone).toBeInstanceOf(RestoreError);
      expect((gone as Error).message).toMatch(/could not fetch backup .* \(its dump .*dump is missing\)/);
    } finally {
      writeFileSync(path, original);
    }
    expect(await databaseExists(cluster, 'shop_short')).toBe(false);
  });

  it('refuses a corrupted backup and leaves no target behind', async () => {
    const path = join(dir, backup.key);
    const original = readFileSync(path);
    const flipped = Buffer.from(original);
    flipped[100]! ^= 0xff;
    writeFileSync(path, flipped);
    const x = h();
    try {
      const err = await runRestore(x.deps, backup.id, { targetDb: 'shop_corrupt', create: true }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(VerifyError);
      expect(exitCodeOf(err)).toBe(1);
      expect((err as Error).message).toMatch(/^refusing to restore backup .*: it does not match its manifest \(sha256: /);
    } finally {
      writeFileSync(path, original);
    }
    expect(await databaseExists(cluster, 'shop_corrupt')).toBe(false);
    expect(readdirSync(staging)).toEqual([]);
    expect(x.alerter.sent).toHaveLength(1);
    expect(x.alerter.sent[0]).toMatchObject({ severity: 'critical', job: 'restore' });
  });

  it('drops a database it created when pg_restore fails', async () => {
    // A table owned by a role that no longer exists when restoring: ALTER ... OWNER TO fails.
    await cluster.createDatabase('owned');
    await cluster.query(`CREATE ROLE gone_owner; CREATE TABLE t (id int); ALTER TABLE t OWNER TO gone_owner; INSERT INTO t VALUES (1)`, [], 'owned');
    const x = harness(cluster, storage, 'owned', { tmpDir: staging });
    const m = await runBackup(x.deps);
    await cluster.query('REASSIGN OWNED BY gone_owner TO postgres; DROP OWNED BY gone_owner', [], 'owned');
    await cluster.query('DROP ROLE gone_owner');

    const err = await runRestore(x.deps, m.id, { targetDb: 'owned_copy', create: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RestoreError);
    expect((err as Error).message).toMatch(/pg_restore exited with code 1: .*role "gone_owner" does not exist/);
    expect(await databaseExists(cluster, 'owned_copy')).toBe(false);
    expect(x.alerter.sent[0]).toMatchObject({ severity: 'critical', job: 'restore' });
    expect(x.logs.join('')).toMatch(/dropped database owned_copy again/);

    // --no-owner restores it.
    await runRestore(x.deps, m.id, { targetDb: 'owned_copy', create: true, noOwner: true });
    expect(await rowCounts(cluster, 'owned_copy')).toEqual({ 'public.t': 1 });
  });
});
