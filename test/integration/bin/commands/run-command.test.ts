// SIGTERM to the real CLI mid-job (run-command.ts handles it): the job stops its tool, removes what
// it wrote (partial dump, temp files, a database it created), sends one alert and exits 143.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../../../functions/core/backup/backup.ts';
import { FileStorage } from '../../../../functions/core/storage/file.ts';
import { allFiles, harness } from '../../../helpers/backup-fixtures.ts';
import { childProcesses, processAlive, startCli, waitFor, type RunningCli } from '../../../helpers/cli.ts';
import { useTestCluster } from '../../../helpers/postgres.ts';

const cluster = useTestCluster();
const work = mkdtempSync(join(tmpdir(), 'pgops-signal-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let db = '';
const config = join(work, 'pgops.json');

beforeAll(async () => {
  db = await cluster.createDatabase('sig');
  await cluster.query(`
    CREATE TABLE customers (id serial PRIMARY KEY, email text NOT NULL);
    INSERT INTO customers (email) SELECT 'c' || g || '@example.com' FROM generate_series(1, 1000) g;
    -- Empty and partitioned: not counted by the backup's control session, but locked by pg_dump.
    CREATE TABLE held (id int) PARTITION BY RANGE (id);
  `, [], db);
  // The restore waits on the lock as long as the test needs (the default would time out first).
  writeFileSync(config, JSON.stringify({ database: { lockTimeoutMs: 120_000 } }));
});

function dirs(name: string): { store: string; tmp: string } {
  const store = join(work, name, 'store');
  const tmp = join(work, name, 'tmp');
  mkdirSync(store, { recursive: true });
  mkdirSync(tmp, { recursive: true });
  return { store, tmp };
}

async function session(database: string, sql: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: cluster.url(database), application_name: 'the-application' });
  await c.connect();
  await c.query(sql);
  return c;
}

/** Wait until a pgops session (by application name) waits on a lock in `database`. */
const waitingOnLock = (database: string, app: string) => waitFor(`${app} waiting on a lock`, async () =>
  ((await cluster.query(`SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name = $2 AND wait_event_type = 'Lock'`, [database, app])).rowCount ?? 0) > 0);

const tool = (cli: RunningCli, name: string) => childProcesses(cli.pid).filter((p) => p.argv[0]?.endsWith(`/${name}`));
/** What pgops left in TMPDIR (tsx, which runs the CLI, keeps its cache there). */
const leftIn = (tmp: string) => readdirSync(tmp).filter((n) => !n.startsWith('tsx-'));
const alertLines = (stderr: string) => stderr.split('\n').filter((l) => l.includes('ALERT'));

describe('SIGTERM mid-job', () => {
  for (const jobs of [1, 2]) {
    it(`stops a backup${jobs > 1 ? ' --jobs 2 (staged on local disk)' : ' (streamed)'}: no manifest, no dump, no temp files, no pg_dump, one alert, exit 143`, async () => {
      const { store, tmp } = dirs(`backup-${jobs}`);
      const blocker = await session(db, 'BEGIN; LOCK TABLE held IN ACCESS EXCLUSIVE MODE');
      try {
        const cli = startCli(['backup', ...(jobs > 1 ? ['--jobs', '2'] : [])], { DATABASE_URL: cluster.url(db), PGOPS_STORAGE: pathToFileURL(store).href, TMPDIR: tmp });
        await waitingOnLock(db, 'pgops-backup');
        const dumps = tool(cli, 'pg_dump');
        expect(dumps).toHaveLength(1);
        cli.child.kill('SIGTERM');
        const r = await cli.result;
        expect(r.code, r.stderr).toBe(143);
        expect(alertLines(r.stderr)).toEqual([expect.stringMatching(/ALERT CRITICAL backup test\/sig|ALERT CRITICAL backup default\/sig/)]);
        expect(alertLines(r.stderr)[0]).toMatch(/backup interrupted by SIGTERM/);
        expect(r.stderr).toMatch(/pgops: error: backup interrupted by SIGTERM/);
        expect(allFiles(store)).toEqual([]);
        expect(leftIn(tmp)).toEqual([]);
        expect(processAlive(dumps[0]!.pid)).toBe(false);
      } finally {
        await blocker.query('ROLLBACK');
        await blocker.end();
      }
    });
  }

  it('stops a restore: pg_restore and its server session end, the temp dump goes, the target is untouched, one alert, exit 143', async () => {
    const { store, tmp } = dirs('restore');
    await runBackup(harness(cluster, new FileStorage(pathToFileURL(store).href), db).deps);
    const target = await cluster.createDatabase('sig_target');
    // An uncommitted table of the same name: pg_restore's CREATE TABLE waits for that transaction.
    const blocker = await session(target, 'BEGIN; CREATE TABLE customers (x int)');
    try {
      const cli = startCli(['restore', 'latest', '--target-db', target, '--config', config], { DATABASE_URL: cluster.url(db), PGOPS_STORAGE: pathToFileURL(store).href, TMPDIR: tmp });
      await waitingOnLock(target, 'pgops-restore');
      const restores = tool(cli, 'pg_restore');
      expect(restores).toHaveLength(1);
      expect(leftIn(tmp)).toEqual([expect.stringMatching(/^pgops-restore-/)]);
      cli.child.kill('SIGTERM');
      const r = await cli.result;
      expect(r.code, r.stderr).toBe(143);
      expect(alertLines(r.stderr)).toHaveLength(1);
      expect(alertLines(r.stderr)[0]).toMatch(/ALERT CRITICAL restore .*restore interrupted by SIGTERM/);
      expect(leftIn(tmp)).toEqual([]);
      expect(processAlive(restores[0]!.pid)).toBe(false);
      // Its server session no longer queues behind (or in front of) the application.
      expect((await cluster.query(`SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name = 'pgops-restore'`, [target])).rowCount).toBe(0);
    } finally {
      await blocker.query('ROLLBACK');
      await blocker.end();
    }
    expect((await cluster.query(`SELECT count(*)::int AS n FROM pg_class WHERE relnamespace = 'public'::regnamespace`, [], target)).rows[0]?.n).toBe(0);
  });

  it('a second SIGTERM exits at once, while the job is still stopping', async () => {
    const { store, tmp } = dirs('twice');
    // A pg_dump that ignores SIGTERM: the first signal cannot end the job, only the second can.
    const bin = join(work, 'twice', 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'pg_dump'), `#!/bin/sh\ncase "$1" in --version) echo "pg_dump (PostgreSQL) 15.99"; exit 0;; esac\ntrap '' TERM\nexec sleep 60\n`, { mode: 0o755 });
    symlinkSync(cluster.pg.bin('pg_restore'), join(bin, 'pg_restore'));
    const cli = startCli(['backup'], { DATABASE_URL: cluster.url(db), PGOPS_STORAGE: pathToFileURL(store).href, TMPDIR: tmp, PGOPS_PG_BINDIR: bin });
    let stubborn: number | undefined;
    try {
      await waitFor('the stubborn pg_dump', () => childProcesses(cli.pid).some((p) => p.argv.includes('60')));
      stubborn = childProcesses(cli.pid).find((p) => p.argv.includes('60'))!.pid;
      cli.child.kill('SIGTERM');
      await waitFor('the first SIGTERM to be handled', () => /stopping the job and cleaning up/.test(cli.output().stderr));
      cli.child.kill('SIGTERM');
      const r = await cli.result;
      expect(r.code).toBe(143);
      expect(r.stderr).toMatch(/pgops: SIGTERM: stopping now/);
      expect(allFiles(store).filter((f) => f.endsWith('manifest.json'))).toEqual([]);
    } finally {
      if (stubborn !== undefined && processAlive(stubborn)) process.kill(stubborn, 'SIGKILL');
    }
  });

  it('kill -9 of a restore: pg_restore dies with it, and the next restore sweeps the day-old temp dir', async () => {
    const { store, tmp } = dirs('killed');
    await runBackup(harness(cluster, new FileStorage(pathToFileURL(store).href), db).deps);
    const target = await cluster.createDatabase('killed_target');
    const blocker = await session(target, 'BEGIN; CREATE TABLE customers (x int)');
    const env = { DATABASE_URL: cluster.url(db), PGOPS_STORAGE: pathToFileURL(store).href, TMPDIR: tmp };
    try {
      const cli = startCli(['restore', 'latest', '--target-db', target, '--config', config], env);
      await waitingOnLock(target, 'pgops-restore');
      const restores = tool(cli, 'pg_restore');
      expect(restores).toHaveLength(1);
      cli.child.kill('SIGKILL');
      await cli.result;
      await waitFor('pg_restore to die with pgops', () => !processAlive(restores[0]!.pid), 10_000);
    } finally {
      await blocker.query('ROLLBACK');
      await blocker.end();
    }
    // No clean-up ran: the temp dir is left. Once a day old, the next restore removes it.
    const left = leftIn(tmp);
    expect(left).toEqual([expect.stringMatching(/^pgops-restore-/)]);
    const old = Date.now() / 1000 - 2 * 24 * 3600;
    for (const f of readdirSync(join(tmp, left[0]!))) utimesSync(join(tmp, left[0]!, f), old, old);
    utimesSync(join(tmp, left[0]!), old, old);
    const again = await startCli(['restore', 'latest', '--target-db', 'killed_next', '--create'], env).result;
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/removed 1 scratch directory left by killed jobs/);
    expect(leftIn(tmp)).toEqual([]);
  });
});
