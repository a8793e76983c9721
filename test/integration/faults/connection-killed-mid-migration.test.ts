// Fault: the migrate session is terminated while a slow migration runs. pgops promises: the run
// fails naming the migration (one critical alert), the migration is rolled back (its table is not
// there) and the history is unchanged; a later run applies it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultFileConfig } from '../../../functions/core/config.ts';
import { exitCodeOf, PgopsError } from '../../../functions/core/errors.ts';
import { historyTables } from '../../../functions/core/migrate/files.ts';
import { runMigrations, type MigrateJobDeps } from '../../../functions/core/migrate/job.ts';
import { terminate, userTables, waitForNoSession, waitForSession } from '../../helpers/faults.ts';
import { captured, type Captured } from '../../helpers/output-scan.ts';
import { useTestCluster } from '../../helpers/postgres.ts';

const cluster = useTestCluster();
const out = captured(() => [cluster.pg.password]);
const dir = mkdtempSync(join(tmpdir(), 'pgops-fault-mig-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let db = '';

function deps(c: Captured) {
  const { logger } = c.logger();
  const alerter = c.alerter();
  const config = defaultFileConfig();
  const d: MigrateJobDeps = {
    target: cluster.target(db), session: config.database, dir, tables: historyTables('public', 'pgmigrations'),
    lockWaitSeconds: 5, logger, alerter, databaseId: db, environment: 'faults',
  };
  return { deps: d, alerter };
}

const history = async () => (await cluster.query<{ name: string }>('SELECT name FROM pgmigrations ORDER BY id', [], db)).rows.map((r) => r.name);

beforeAll(async () => {
  db = await cluster.createDatabase('killed_migration');
  writeFileSync(join(dir, '001_users.sql'), '-- Up Migration\nCREATE TABLE users (id int PRIMARY KEY);\n-- Down Migration\nDROP TABLE users;\n');
  await runMigrations(deps(out).deps, { command: 'up' });
  // The slow one: creates a table, then sleeps while we kill its session.
  writeFileSync(join(dir, '002_slow.sql'), "-- Up Migration\nCREATE TABLE slow_things (id int PRIMARY KEY);\nSELECT pg_sleep(60);\n-- Down Migration\nDROP TABLE slow_things;\n");
});

describe('connection killed mid-migration', () => {
  it('fails naming the migration with one alert; rolled back; history unchanged', async () => {
    expect(await history()).toEqual(['001_users']);
    const { deps: d, alerter } = deps(out);
    const job = runMigrations(d, { command: 'up' }).then(() => undefined, (e: unknown) => out.error(e));
    const pid = await waitForSession(cluster, `datname = '${db}' AND query ILIKE '%pg_sleep%'`);
    await terminate(cluster, pid);

    const err = await job;
    expect(err).toBeInstanceOf(PgopsError);
    expect(exitCodeOf(err)).toBe(1);
    expect((err as Error).message).toMatch(/002_slow/);
    expect(alerter.sent).toHaveLength(1);
    expect(alerter.sent[0]).toMatchObject({ severity: 'critical', job: 'migrate', database: db });
    expect(alerter.sent[0]!.summary).toMatch(/002_slow/);

    await waitForNoSession(cluster, `datname = '${db}' AND query ILIKE '%pg_sleep%'`);
    const tables = await userTables(cluster, db);
    expect(tables).toContain('public.users');
    expect(tables).not.toContain('public.slow_things');
    expect(await history()).toEqual(['001_users']);
  });
});
