import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryAlerter } from '../../../../../functions/core/alerts/alerter.ts';
import { defaultFileConfig } from '../../../../../functions/core/config.ts';
import { createTextLogger } from '../../../../../functions/core/logger.ts';
import { historyTables } from '../../../../../functions/core/migrate/files.ts';
import { migrationStatus, runMigrations, validateMigrations, type MigrateJobDeps } from '../../../../../functions/core/migrate/job.ts';
import { MigrationOrderError } from '../../../../../functions/core/migrate/rules.ts';
import { runCli } from '../../../../helpers/cli.ts';
import { useTestCluster } from '../../../../helpers/postgres.ts';

const cluster = useTestCluster();
const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function migrationsDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgops-rules-'));
  dirs.push(dir);
  for (const [name, body] of Object.entries(files)) writeFileSync(join(dir, name), body);
  return dir;
}

const table = (name: string) => `-- Up Migration\nCREATE TABLE ${name} (id int);\n-- Down Migration\nDROP TABLE ${name};\n`;

function deps(db: string, dir: string, log: string[] = []): MigrateJobDeps {
  return {
    target: cluster.target(db),
    session: defaultFileConfig().database,
    dir,
    tables: historyTables('public', 'pgmigrations'),
    lockWaitSeconds: 5,
    logger: createTextLogger({ write: (l) => log.push(l) }),
    lockPollMs: 50,
    alerter: new MemoryAlerter(),
    databaseId: db,
    environment: 'test',
  };
}

async function tables(db: string): Promise<string[]> {
  const r = await cluster.query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", [], db);
  return r.rows.map((x) => x.t);
}

const OUT_OF_ORDER = /002_b\.sql sorts before 003_c, which is already applied: rename it to sort after 003_c \(e\.g\. 004_b\.sql\)/;

describe('a pending migration that sorts before applied ones', () => {
  it('is refused the same way by dry run, validate and up, reported by status, and nothing runs', async () => {
    const db = await cluster.createDatabase();
    const dir = migrationsDir({ '001_a.sql': table('a'), '003_c.sql': table('c') });
    const d = deps(db, dir);
    await runMigrations(d, { command: 'up' });
    writeFileSync(join(dir, '002_b.sql'), table('b'));

    const dry = await runMigrations(d, { command: 'up', dryRun: true }).catch((e: unknown) => e);
    expect(dry).toBeInstanceOf(MigrationOrderError);
    expect((dry as Error).message).toMatch(OUT_OF_ORDER);
    await expect(validateMigrations(d)).rejects.toThrow(OUT_OF_ORDER);
    const up = await runMigrations(d, { command: 'up' }).catch((e: unknown) => e);
    expect(up).toBeInstanceOf(MigrationOrderError);
    expect((up as Error).message).toMatch(OUT_OF_ORDER);
    expect((up as Error).message).not.toMatch(/Not run migration/);
    // down would run node-pg-migrate's order check too: refused alike, nothing reverted
    await expect(runMigrations(d, { command: 'down' })).rejects.toThrow(OUT_OF_ORDER);

    const status = await migrationStatus(d);
    expect(status.outOfOrder).toEqual([{ name: '002_b', file: '002_b.sql', sortsBefore: '003_c' }]);
    expect(status.pending).toEqual([{ name: '002_b' }]);
    expect(await tables(db)).toEqual(['a', 'c', 'pgmigrations', 'pgmigrations_checksums']);
  });

  it('the CLI: dry run and validate exit 1 with the fix, status exits 0 and reports it in text and JSON', async () => {
    const db = await cluster.createDatabase();
    const dir = migrationsDir({ '001_a.sql': table('a'), '003_c.sql': table('c') });
    const env = { DATABASE_URL: cluster.url(db), PGOPS_MIGRATIONS_DIR: dir };
    expect((await runCli(['migrate', 'up'], env)).code).toBe(0);
    writeFileSync(join(dir, '002_b.sql'), table('b'));
    for (const args of [['migrate', 'up', '--dry-run'], ['migrate', 'validate'], ['migrate', 'up']]) {
      const r = await runCli(args, env);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(OUT_OF_ORDER);
      expect(r.stdout).not.toMatch(/would apply/);
    }
    const json = await runCli(['migrate', 'status', '--json'], env);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout).outOfOrder).toEqual([{ name: '002_b', file: '002_b.sql', sortsBefore: '003_c' }]);
    expect(json.stderr).toMatch(OUT_OF_ORDER);
    const text = await runCli(['migrate', 'status'], env);
    expect(text.stdout).toMatch(/pending {2}002_b {2}OUT OF ORDER \(sorts before the applied 003_c\)/);
    expect(await tables(db)).not.toContain('b');
  });
});

describe('two files with one version prefix', () => {
  it('are refused by every command before anything runs, naming both', async () => {
    const db = await cluster.createDatabase();
    const dir = migrationsDir({ '001_a.sql': table('a'), '002_a.sql': table('x'), '002_b.sql': table('y') });
    const d = deps(db, dir);
    const clash = /002_a\.sql and 002_b\.sql share the version 002 \(rename one to a free version, e\.g\. 003_b\.sql\)/;
    await expect(runMigrations(d, { command: 'up' })).rejects.toThrow(clash);
    await expect(runMigrations(d, { command: 'up', dryRun: true })).rejects.toThrow(clash);
    await expect(validateMigrations(d)).rejects.toThrow(clash);
    await expect(migrationStatus(d)).rejects.toBeInstanceOf(MigrationOrderError);
    expect(await tables(db)).toEqual([]);
    const r = await runCli(['migrate', 'status', '--json'], { DATABASE_URL: cluster.url(db), PGOPS_MIGRATIONS_DIR: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(clash);
    expect(JSON.parse(r.stdout).error).toMatchObject({ type: 'MigrationOrderError', exitCode: 1 });
  });
});

describe('an empty migration', () => {
  it('is a warning: logged, in the dry run and up results, and in status; it still applies', async () => {
    const db = await cluster.createDatabase();
    const dir = migrationsDir({ '001_a.sql': table('a'), '002_nothing.sql': '-- Up Migration\n-- nothing yet;\n\n-- Down Migration\n' });
    const log: string[] = [];
    const d = deps(db, dir, log);
    const warning = 'migration 002_nothing.sql has no SQL in its Up section: it would be recorded as applied without changing anything';
    expect((await migrationStatus(d)).warnings).toEqual([warning]);
    expect((await runMigrations(d, { command: 'up', dryRun: true })).warnings).toEqual([warning]);
    const up = await runMigrations(d, { command: 'up' });
    expect(up.ran.map((m) => m.name)).toEqual(['001_a', '002_nothing']);
    expect(up.warnings).toEqual([warning]);
    expect(log.join('')).toContain(`warn: ${warning}`);
    expect((await migrationStatus(d)).warnings).toBeUndefined();
  });

  it('the CLI puts the warning in --json and on stderr, and exits 0', async () => {
    const db = await cluster.createDatabase();
    const dir = migrationsDir({ '001_nothing.sql': '-- Up Migration\n\n-- Down Migration\n' });
    const r = await runCli(['migrate', 'up', '--dry-run', '--json'], { DATABASE_URL: cluster.url(db), PGOPS_MIGRATIONS_DIR: dir });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).warnings).toEqual([expect.stringMatching(/001_nothing\.sql has no SQL in its Up section/)]);
    expect(r.stderr).toMatch(/warn: migration 001_nothing\.sql has no SQL/);
  });
});
