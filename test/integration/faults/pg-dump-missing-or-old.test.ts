// Fault: pg_dump is missing from the configured tools directory, or older than the server. pgops
// promises: the backup fails before anything is written (non-zero exit, the cause named: which
// tool, where, which versions), nothing is listed, and the good backup is untouched.
import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../../functions/core/backup/backup.ts';
import { PgDumpVersionError } from '../../../functions/core/backup/errors.ts';
import { exitCodeOf, PgopsError } from '../../../functions/core/errors.ts';
import { allFiles, freshStorage } from '../../helpers/backup-fixtures.ts';
import { runCli } from '../../helpers/cli.ts';
import { alertLines, backupJobDeps, cliEnv, fakePgDumpDir, listedIds, useTempDirs } from '../../helpers/faults.ts';
import { captured } from '../../helpers/output-scan.ts';
import { useTestCluster } from '../../helpers/postgres.ts';

const cluster = useTestCluster();
const out = captured(() => [cluster.pg.password]);
const tempDir = useTempDirs();
const { storage, dir } = freshStorage();
let db = '';
let goodId = '';
let goodFiles: string[] = [];
let noPgDump = '';

beforeAll(async () => {
  db = await cluster.createDatabase('tools');
  await cluster.query('CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100)', [], db);
  goodId = (await runBackup(backupJobDeps(cluster, storage, db, out).deps)).id;
  goodFiles = allFiles(dir);
  // pg_restore is there, pg_dump is not.
  noPgDump = join(tempDir(), 'bin');
  mkdirSync(noPgDump);
  symlinkSync(join(cluster.pg.binDir, 'pg_restore'), join(noPgDump, 'pg_restore'));
});

describe('pg_dump missing', () => {
  it('the job fails with one alert naming pg_dump and where it looked; nothing written', async () => {
    const { deps, alerter } = backupJobDeps(cluster, storage, db, out, { binDir: noPgDump });
    const err = await runBackup(deps).then(() => undefined, (e: unknown) => out.error(e));
    expect(err).toBeInstanceOf(PgopsError);
    expect(exitCodeOf(err)).not.toBe(0);
    expect((err as Error).message).toMatch(/pg_dump/);
    expect((err as Error).message).toContain(noPgDump);
    expect(alerter.sent).toHaveLength(1);
    expect(alerter.sent[0]!.summary).toMatch(/pg_dump/);
    expect(allFiles(dir)).toEqual(goodFiles);
    expect(await listedIds(storage, db)).toEqual([goodId]);
  });

  it('the CLI with PGOPS_PG_BINDIR lacking pg_dump is a configuration error: exit 2 naming the setting and the tool, no page', async () => {
    const r = out.cli(await runCli(['backup'], cliEnv(cluster, db, storage.url, { PGOPS_PG_BINDIR: noPgDump })));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/PGOPS_PG_BINDIR/);
    expect(r.stderr).toMatch(/pg_dump/);
    // Configuration pages nobody (the one failure policy); in AWS the function's Errors alarm fires.
    expect(alertLines(r.stderr)).toHaveLength(0);
    expect(allFiles(dir)).toEqual(goodFiles);
  });
});

describe('pg_dump too old', () => {
  it('the job refuses before writing anything, naming both versions, with one alert', async () => {
    const binDir = fakePgDumpDir(tempDir(), cluster.pg.binDir, '14.9');
    const { deps, alerter, lines } = backupJobDeps(cluster, storage, db, out, { binDir });
    const err = await runBackup(deps).then(() => undefined, (e: unknown) => out.error(e));
    expect(err).toBeInstanceOf(PgDumpVersionError);
    expect(exitCodeOf(err)).toBe(1);
    expect((err as Error).message).toMatch(/pg_dump 14 is older than the server \(PostgreSQL 15\)/);
    expect(alerter.sent).toHaveLength(1);
    expect(alerter.sent[0]!.summary).toMatch(/pg_dump 14/);
    expect(lines.join('')).not.toMatch(/must not run/);
    expect(allFiles(dir)).toEqual(goodFiles);
    expect(await listedIds(storage, db)).toEqual([goodId]);
  });

  it('the CLI exits 1 with one ALERT line naming the versions', async () => {
    const binDir = fakePgDumpDir(tempDir(), cluster.pg.binDir, '14.9');
    const r = out.cli(await runCli(['backup'], cliEnv(cluster, db, storage.url, { PGOPS_PG_BINDIR: binDir })));
    expect(r.code).toBe(1);
    expect(alertLines(r.stderr)).toHaveLength(1);
    expect(alertLines(r.stderr)[0]).toMatch(/pg_dump 14 is older than the server/);
    expect(allFiles(dir)).toEqual(goodFiles);
  });
});
