// A restore never waits on a lock without bound: pg_restore's sessions get lock_timeout through
// PGOPTIONS, and the failure names the session holding the lock. An interrupted restore stops
// pg_restore, drops the database it created and removes its temporary dump.
import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../../../../functions/core/backup/backup.ts';
import { RestoreBlockedError } from '../../../../../functions/core/backup/errors.ts';
import { runRestore } from '../../../../../functions/core/backup/restore.ts';
import type { BackupManifest } from '../../../../../functions/core/catalog/manifest.ts';
import { exitCodeOf } from '../../../../../functions/core/errors.ts';
import { InterruptedError } from '../../../../../functions/core/run-job.ts';
import { useTestCluster } from '../../../../helpers/postgres.ts';
import { databaseExists, freshStorage, harness, rowCounts, seed } from '../../../../helpers/backup-fixtures.ts';
import { waitFor } from '../../../../helpers/cli.ts';

const cluster = useTestCluster();
const { storage } = freshStorage();
const staging = mkdtempSync(join(tmpdir(), 'pgops-restore-locks-'));
afterAll(() => rmSync(staging, { recursive: true, force: true }));
const session = { lockTimeoutMs: 400, statementTimeoutMs: 0, connectTimeoutMs: 10_000 };
const h = (extra = {}) => harness(cluster, storage, 'shop', { tmpDir: staging, session, ...extra });
let backup: BackupManifest;

beforeAll(async () => {
  await cluster.createDatabase('shop');
  await seed(cluster, 'shop');
  backup = await runBackup(h().deps);
});

describe('restore and locks', () => {
  it('restore --clean against a table an open transaction read fails within seconds, naming that session; the target is as before', async () => {
    await runRestore(h().deps, backup.id, { targetDb: 'shop_live', create: true });
    await cluster.query(`INSERT INTO users (email) VALUES ('after-backup@example.com')`, [], 'shop_live');
    const before = await rowCounts(cluster, 'shop_live');
    const app = new pg.Client({ connectionString: cluster.url('shop_live'), application_name: 'auth-api' });
    await app.connect();
    try {
      await app.query('BEGIN');
      await app.query('SELECT count(*) FROM users');
      const pid = (await app.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const x = h();
      const t0 = Date.now();
      const err = await runRestore(x.deps, backup.id, { targetDb: 'shop_live', clean: true }).catch((e: unknown) => e);
      expect(Date.now() - t0).toBeLessThan(15_000);
      expect(err).toBeInstanceOf(RestoreBlockedError);
      expect(exitCodeOf(err)).toBe(1);
      const message = (err as Error).message;
      expect(message).toMatch(/lock timeout: pg_restore waited longer than lock_timeout 400 ms for a lock on public\.\w+, /);
      expect(message).toMatch(new RegExp(`blocked by pid ${pid} \\(application "auth-api", idle in transaction for \\d+ s, AccessShareLock on [^)]*public\\.users`));
      expect(message).toMatch(/the target is unchanged/);
      expect((err as RestoreBlockedError).holders).toEqual([expect.objectContaining({ pid, applicationName: 'auth-api' })]);
      expect(x.alerter.sent).toHaveLength(1);
      expect(x.alerter.sent[0]!.summary).toMatch(new RegExp(`pid ${pid}`));
    } finally {
      await app.query('ROLLBACK');
      await app.end();
    }
    expect(await rowCounts(cluster, 'shop_live')).toEqual(before);
    expect(readdirSync(staging)).toEqual([]);
  });

  it('an interrupted --create restore stops pg_restore, drops the database it created and removes its temp dump', async () => {
    // A pg_restore that lists like the real one but restores slowly (a stand-in for a large restore).
    const bin = mkdtempSync(join(staging, '..', 'pgops-slow-bin-'));
    afterAll(() => rmSync(bin, { recursive: true, force: true }));
    const real = cluster.pg.bin('pg_restore');
    writeFileSync(join(bin, 'pg_restore'), `#!/bin/sh\ncase "$*" in *--dbname=*) exec sleep 60;; esac\nexec ${real} "$@"\n`);
    chmodSync(join(bin, 'pg_restore'), 0o755);
    const abort = new AbortController();
    const x = h({ binDir: bin, signal: abort.signal });
    const running = runRestore(x.deps, backup.id, { targetDb: 'shop_interrupted', create: true }).catch((e: unknown) => e);
    await waitFor('the restore to create its database', () => databaseExists(cluster, 'shop_interrupted'));
    await waitFor('pg_restore to start', () => readdirSync(staging).length > 0);
    abort.abort('SIGTERM');
    const err = await running;
    expect(err).toBeInstanceOf(InterruptedError);
    expect((err as Error).message).toBe('restore interrupted by SIGTERM');
    expect(exitCodeOf(err)).toBe(143);
    expect(await databaseExists(cluster, 'shop_interrupted')).toBe(false);
    expect(readdirSync(staging)).toEqual([]);
    expect(x.alerter.sent).toHaveLength(1);
    expect(x.alerter.sent[0]).toMatchObject({ severity: 'critical', job: 'restore', summary: 'restore interrupted by SIGTERM' });
  });
});
