// A backup that fails in any way is never stored as a success: pg_dump's connection terminated
// mid-dump, pg_dump failing or killed, storage failing mid-upload, an older pg_dump.
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline, Transform, type Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../../../../functions/core/backup/backup.ts';
import { listBackups } from '../../../../../functions/core/catalog/catalog.ts';
import { BackupError, PgDumpVersionError } from '../../../../../functions/core/backup/errors.ts';
import { exitCodeOf } from '../../../../../functions/core/errors.ts';
import type { Storage } from '../../../../../functions/core/storage/types.ts';
import { useTestCluster } from '../../../../helpers/postgres.ts';
import { allFiles, freshStorage, harness } from '../../../../helpers/backup-fixtures.ts';

const cluster = useTestCluster();
const { storage, dir } = freshStorage();
let db = '';
const fakeBins = mkdtempSync(join(tmpdir(), 'pgops-fake-bin-'));
afterAll(() => rmSync(fakeBins, { recursive: true, force: true }));

beforeAll(async () => {
  db = await cluster.createDatabase('big');
  // Poorly compressible, so pg_dump runs long enough to be interrupted.
  await cluster.query(`CREATE TABLE big AS SELECT g AS id, md5(random()::text) || md5(random()::text) || md5(random()::text) AS payload
                         FROM generate_series(1, 200000) g`, [], db);
});

/** Storage whose uploads pass through `wrap` (a throttle, a fault). */
function wrapUploads(inner: Storage, wrap: () => Transform): Storage {
  return {
    url: inner.url,
    putStream: (key: string, body: Readable, o?: { contentType?: string; signal?: AbortSignal }) => {
      const t = wrap();
      pipeline(body, t, () => {});
      return inner.putStream(key, t, o);
    },
    putBytes: (k, d, o) => inner.putBytes(k, d, o),
    getStream: (k) => inner.getStream(k),
    getBytes: (k) => inner.getBytes(k),
    list: (p) => inner.list(p),
    delete: (k) => inner.delete(k),
  };
}

const throttle = (ms: number) => () => new Transform({ transform(chunk, _e, cb) { setTimeout(() => cb(null, chunk), ms); } });

/** A bin dir whose pg_dump is a shell script. */
function fakeBinDir(name: string, script: string, version = '15.99'): string {
  const binDir = mkdtempSync(join(fakeBins, `${name}-bin-`));
  const path = join(binDir, 'pg_dump');
  writeFileSync(path, `#!/bin/sh\ncase "$1" in --version) echo "pg_dump (PostgreSQL) ${version}"; exit 0;; esac\n${script}\n`);
  chmodSync(path, 0o755);
  return binDir;
}

/** argv of the pg_dump processes this test process started (other test files run their own). */
function pgDumpCmdlines(): string[][] {
  const out: string[][] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const ppid = Number(readFileSync(`/proc/${p}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[1]);
      if (ppid !== process.pid) continue;
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').filter(Boolean);
      if (argv[0]?.endsWith('/pg_dump')) out.push(argv);
    } catch { /* exited meanwhile */ }
  }
  return out;
}

describe('a failed backup leaves nothing behind', () => {
  it('fails when pg_dump\'s connection is terminated mid-dump: no manifest, no object, an alert', async () => {
    const before = await listBackups(storage, 'big');
    const h = harness(cluster, storage, db);
    h.deps.storage = wrapUploads(storage, throttle(3));
    const job = runBackup(h.deps).then(() => undefined, (e: unknown) => e);

    // Wait until pg_dump's session is copying the table, then kill it from the server side.
    let pid: number | undefined;
    const deadline = Date.now() + 20_000;
    while (!pid && Date.now() < deadline) {
      const r = await cluster.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE application_name = 'pgops-backup' AND query ILIKE 'COPY%big%'`);
      pid = r.rows[0]?.pid;
      if (!pid) await new Promise((res) => setTimeout(res, 10));
    }
    expect(pid, 'pg_dump never started copying').toBeDefined();
    // While it runs: the password is nowhere in pg_dump's argv.
    const argvs = pgDumpCmdlines();
    expect(argvs.length).toBeGreaterThan(0);
    for (const argv of argvs) expect(argv.join(' ')).not.toContain(cluster.pg.password);
    await cluster.query('SELECT pg_terminate_backend($1)', [pid]);

    const err = await job;
    expect(err).toBeInstanceOf(BackupError);
    expect(exitCodeOf(err)).toBe(1);
    expect((err as Error).message).toMatch(/^pg_dump exited with code 1: pg_dump: error: Dumping the contents of table "big" failed/);
    expect(allFiles(dir)).toEqual([]);
    expect(await listBackups(storage, 'big')).toEqual(before);
    expect(h.alerter.sent).toHaveLength(1);
    expect(h.alerter.sent[0]).toMatchObject({ severity: 'critical', job: 'backup', database: 'big', environment: 'test' });
    expect(h.alerter.sent[0]!.summary).toMatch(/^backup failed: pg_dump exited with code 1/);
    const password = cluster.pg.password;
    expect(h.logs.join('')).not.toContain(password);
    expect(JSON.stringify(h.alerter.sent)).not.toContain(password);
    expect((err as Error).message).not.toContain(password);
  });

  it('fails when storage fails mid-upload, and stops pg_dump', async () => {
    const h = harness(cluster, storage, db);
    let seen = 0;
    h.deps.storage = wrapUploads(storage, () => new Transform({
      transform(chunk: Buffer, _e, cb) {
        seen += chunk.length;
        if (seen > 1_000_000) cb(new Error('simulated storage outage: 500 InternalError'));
        else cb(null, chunk);
      },
    }));
    const err = await runBackup(h.deps).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackupError);
    expect((err as Error).message).toMatch(/upload to file:\/\/.* failed: simulated storage outage/);
    expect(allFiles(dir)).toEqual([]);
    expect(h.alerter.sent[0]?.summary).toMatch(/simulated storage outage/);
    // pg_dump was stopped, not left running (its server session goes a moment later).
    expect(pgDumpCmdlines()).toEqual([]);
    let sessions = 1;
    for (let i = 0; i < 100 && sessions > 0; i++) {
      sessions = (await cluster.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = 'pgops-backup'`)).rowCount ?? 0;
      if (sessions > 0) await new Promise((res) => setTimeout(res, 50));
    }
    expect(sessions).toBe(0);
  });

  it('fails when pg_dump exits non-zero after writing part of a dump, naming its error', async () => {
    const binDir = fakeBinDir('exit1', 'head -c 300000 /dev/urandom\necho "pg_dump: error: simulated failure of the dump" >&2\nexit 1');
    const h = harness(cluster, storage, db, { binDir });
    const err = await runBackup(h.deps).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackupError);
    expect((err as Error).message).toBe('pg_dump exited with code 1: pg_dump: error: simulated failure of the dump');
    expect(allFiles(dir)).toEqual([]);
    expect(h.alerter.sent[0]?.summary).toBe('backup failed: pg_dump exited with code 1: pg_dump: error: simulated failure of the dump');
  });

  it('fails when pg_dump is killed by a signal', async () => {
    const binDir = fakeBinDir('killed', 'head -c 300000 /dev/urandom\nkill -9 $$');
    const h = harness(cluster, storage, db, { binDir });
    const err = await runBackup(h.deps).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^pg_dump was killed by SIGKILL/);
    expect(allFiles(dir)).toEqual([]);
  });

  it('removes the staging directory of a failed parallel dump', async () => {
    const binDir = fakeBinDir('dirfail', 'for a in "$@"; do case "$a" in --file=*) d="${a#--file=}"; mkdir -p "$d"; head -c 1000 /dev/urandom > "$d/toc.dat";; esac; done\necho "pg_dump: error: worker failed" >&2\nexit 1');
    const staging = mkdtempSync(join(fakeBins, 'staging-'));
    const h = harness(cluster, storage, db, { binDir, tmpDir: staging });
    await expect(runBackup(h.deps, { jobs: 2 })).rejects.toThrow(/worker failed/);
    expect(readdirSync(staging)).toEqual([]);
    expect(allFiles(dir)).toEqual([]);
  });

  it('refuses a pg_dump older than the server before writing anything', async () => {
    const binDir = fakeBinDir('old', 'echo "must not run" >&2\nexit 1', '14.9');
    const h = harness(cluster, storage, db, { binDir });
    const err = await runBackup(h.deps).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PgDumpVersionError);
    expect((err as Error).message).toMatch(/^pg_dump 14 is older than the server \(PostgreSQL 15\)/);
    expect(allFiles(dir)).toEqual([]);
    expect(h.logs.join('')).not.toMatch(/must not run/);
  });
});
