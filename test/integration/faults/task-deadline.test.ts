// Every Fargate task enforces its own deadline (PGOPS_TASK_DEADLINES, from tasks.deadlineMinutes):
// the real CLI, a real backup against a throttled pg_dump, a 3-second deadline. pgops stops the
// dump through the same path as SIGTERM, cleans up, sends one alert naming the deadline, and exits
// 124; nothing new is listed.
import { beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../../functions/core/backup/backup.ts';
import { freshStorage } from '../../helpers/backup-fixtures.ts';
import {
  alertLines, backupJobDeps, cliEnv, fillTable, leftovers, listedIds, processesNamed, slowToolsDir, startCli, useTempDirs, waitForNoSession,
} from '../../helpers/faults.ts';
import { captured } from '../../helpers/output-scan.ts';
import { useTestCluster } from '../../helpers/postgres.ts';

const cluster = useTestCluster();
const out = captured(() => [cluster.pg.password]);
const tempDir = useTempDirs();
const { storage, dir } = freshStorage();
let db = '';
let goodId = '';
let slowBin = '';

beforeAll(async () => {
  db = await cluster.createDatabase('deadline');
  await fillTable(cluster, db, 'big', 100_000);
  goodId = (await runBackup(backupJobDeps(cluster, storage, db, out).deps)).id;
  // pg_dump's output at 200 kB/s: the dump takes far longer than the deadline.
  slowBin = slowToolsDir(tempDir(), cluster.pg.binDir, 200_000);
});

describe('the task deadline', () => {
  it('stops a backup that outlives it: exit 124, one alert naming the deadline, pg_dump stopped, nothing left or listed', async () => {
    const started = Date.now();
    const cli = startCli(['backup'], cliEnv(cluster, db, storage.url, { PGOPS_PG_BINDIR: slowBin, PGOPS_TASK_DEADLINES: JSON.stringify({ backup: 3, verify: 3600 }) }));
    const r = out.cli(await cli.done);
    expect(r.signal).toBeNull();
    expect(r.code, r.stderr).toBe(124);
    expect(Date.now() - started, 'stopped at the deadline, not at the end of the dump').toBeLessThan(60_000);
    expect(r.stderr).toContain('pgops: backup reached the task deadline (3 s): stopping the job and cleaning up');
    expect(alertLines(r.stderr)).toHaveLength(1);
    expect(alertLines(r.stderr)[0]).toMatch(/^pgops: ALERT CRITICAL backup faults\/deadline: backup interrupted by the task deadline \(3 s\)/);
    await waitForNoSession(cluster, `application_name LIKE 'pgops-backup%'`, 20_000);
    expect(processesNamed('pg_dump', `PGPORT=${cluster.pg.port}`)).toEqual([]);
    expect(leftovers(dir)).toEqual([]);
    expect(await listedIds(storage, db)).toEqual([goodId]);
  });

  it('leaves a job without a deadline of its own alone', async () => {
    const cli = startCli(['backups', 'list', '--json'], cliEnv(cluster, db, storage.url, { PGOPS_TASK_DEADLINES: JSON.stringify({ backup: 1 }) }));
    const r = out.cli(await cli.done);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as Array<{ id: string }>).map((b) => b.id)).toEqual([goodId]);
  });
});
