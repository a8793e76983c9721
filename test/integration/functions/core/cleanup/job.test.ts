// Expired-row cleanup on a real PostgreSQL: batches, dry-run, deadline, catalog checks, config
// validation, functions and VACUUM, and the whole job with backup retention and its CLI.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupCommand } from '../../../../../bin/commands/cleanup.ts';
import { MemoryAlerter } from '../../../../../functions/core/alerts/alerter.ts';
import { runCleanup, CleanupError, type CleanupDeps } from '../../../../../functions/core/cleanup/job.ts';
import { resolveRules } from '../../../../../functions/core/cleanup/rows.ts';
import { defaultFileConfig, loadSettings, parseFileConfig, type CleanupRule } from '../../../../../functions/core/config.ts';
import { withClient } from '../../../../../functions/core/db.ts';
import { ConfigError, exitCodeOf } from '../../../../../functions/core/errors.ts';
import { silentLogger } from '../../../../../functions/core/logger.ts';
import { FileStorage } from '../../../../../functions/core/storage/file.ts';
import { REPO_ROOT, runCli } from '../../../../helpers/cli.ts';
import { validManifest } from '../../../../helpers/manifests.ts';
import { useTestCluster } from '../../../../helpers/postgres.ts';

const cluster = useTestCluster();
const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'pgops-cleanup-'));
  dirs.push(d);
  return d;
}

const SESSION = { lockTimeoutMs: 300, statementTimeoutMs: 0, connectTimeoutMs: 5000 };
const RULE: CleanupRule = { name: 'old events', table: 'events', timestampColumn: 'created_at', olderThanDays: 30, batchSize: 1000 };

type KeyKind = 'pk' | 'ctid' | 'tableoid-ctid';
const TABLES: Record<KeyKind, string> = {
  pk: 'CREATE TABLE events (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL, payload text)',
  ctid: 'CREATE TABLE events (id bigint, created_at timestamptz NOT NULL, payload text)',
  'tableoid-ctid': `CREATE TABLE events (id bigint, created_at timestamptz NOT NULL, payload text) PARTITION BY RANGE (created_at);
    CREATE TABLE events_old PARTITION OF events FOR VALUES FROM (MINVALUE) TO ('2000-01-01');
    CREATE TABLE events_new PARTITION OF events FOR VALUES FROM ('2000-01-01') TO (MAXVALUE)`,
};

/** A fresh database with 5,000 expired events and 100 fresh ones. */
async function seeded(kind: KeyKind = 'pk'): Promise<string> {
  const db = await cluster.createDatabase();
  await cluster.query(TABLES[kind], [], db);
  // Expired rows spread over both partitions, 31 to 400 days old; fresh ones up to a day old.
  await cluster.query(`INSERT INTO events (id, created_at, payload)
    SELECT g, CASE WHEN g % 2 = 0 THEN now() - interval '31 days' - g * interval '1 minute' ELSE timestamptz '1999-06-01' + g * interval '1 minute' END, 'expired ' || g
      FROM generate_series(1, 5000) g`, [], db);
  await cluster.query(`INSERT INTO events (id, created_at, payload) SELECT g, now() - (g - 5000) * interval '10 minutes', 'fresh' FROM generate_series(5001, 5100) g`, [], db);
  return db;
}

const count = async (db: string, sql = 'SELECT count(*)::int AS n FROM events') => (await cluster.query<{ n: number }>(sql, [], db)).rows[0]!.n;

function deps(db: string, overrides: Omit<Partial<CleanupDeps>, 'config'> & { config?: unknown } = {}): CleanupDeps & { alerter: MemoryAlerter } {
  const { config, ...rest } = overrides;
  return {
    target: cluster.target(db),
    session: SESSION,
    logger: silentLogger,
    alerter: new MemoryAlerter(),
    databaseId: db,
    environment: 'test',
    config: defaultFileConfig(config ?? { cleanup: { rules: [RULE] } }),
    ...rest,
  } as CleanupDeps & { alerter: MemoryAlerter };
}

describe('expired rows', () => {
  for (const kind of ['pk', 'ctid', 'tableoid-ctid'] as const) {
    it(`5,000 expired and 100 fresh (${kind}): a dry run reports 5,000 and deletes nothing; the run leaves exactly the 100, in several batches`, async () => {
      const db = await seeded(kind);
      const dry = await runCleanup(deps(db), { dryRun: true });
      expect(dry).toMatchObject({ dryRun: true, rows: [{ rule: 'old events', table: 'public.events', deleted: 5000, complete: true }] });
      expect(await count(db)).toBe(5100);

      const run = await runCleanup(deps(db), { dryRun: false });
      expect(run).toMatchObject({ dryRun: false, complete: true, rows: [{ rule: 'old events', deleted: 5000, complete: true }] });
      expect(run.rows[0]!.batches).toBeGreaterThanOrEqual(5);
      expect(await count(db)).toBe(100);
      expect(await count(db, "SELECT count(*)::int AS n FROM events WHERE payload = 'fresh'")).toBe(100);
    });
  }

  it('with its deadline already passed it stops after at most one batch, complete: false; the next run finishes', async () => {
    const db = await seeded();
    const cut = await runCleanup(deps(db, { deadline: Date.now() - 1 }), { dryRun: false });
    expect(cut.complete).toBe(false);
    expect(cut.rows[0]).toMatchObject({ complete: false });
    expect(cut.rows[0]!.batches).toBeLessThanOrEqual(1);
    expect(cut.rows[0]!.deleted).toBeLessThanOrEqual(1000);
    expect(await count(db)).toBe(5100 - cut.rows[0]!.deleted);

    const next = await runCleanup(deps(db, { deadline: Date.now() + 60_000 }), { dryRun: false });
    expect(next).toMatchObject({ complete: true, rows: [{ complete: true, deleted: 5000 - cut.rows[0]!.deleted }] });
    expect(await count(db)).toBe(100);
  });

  it('a table or column that does not exist is a configuration error (exit 2) naming it, and nothing is deleted', async () => {
    const db = await seeded();
    const config = { cleanup: { rules: [
      RULE, // valid, listed first: still untouched, because every rule is checked before any DELETE
      { ...RULE, name: 'gone', table: 'no_such_table' },
      { ...RULE, name: 'typo', timestampColumn: 'created' },
      { ...RULE, name: 'text column', timestampColumn: 'payload' },
    ] } };
    const d = deps(db, { config });
    const err = await runCleanup(d, { dryRun: false }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect(exitCodeOf(err)).toBe(2);
    const issues = (err as ConfigError).issues;
    expect(issues).toEqual([
      expect.stringMatching(/cleanup\.rules\.1 \("gone"\): table no_such_table does not exist/),
      expect.stringMatching(/cleanup\.rules\.2 \("typo"\): column created does not exist in public\.events/),
      expect.stringMatching(/cleanup\.rules\.3 \("text column"\): column public\.events\.payload is text, not a timestamp or date/),
    ]);
    expect(await count(db)).toBe(5100);
    expect(d.alerter.sent).toEqual([]); // the caller reports config errors (the Lambda alerts on them)
  });

  it('a table name like "events; drop table x" is refused by config validation, and nothing is dropped', async () => {
    const db = await seeded();
    await cluster.query('CREATE TABLE x (id int)', [], db);
    const bad = { cleanup: { rules: [{ ...RULE, table: 'events; drop table x' }, { ...RULE, schema: 'public"; drop table x; --' }] } };

    const parsed = parseFileConfig(bad, 'config');
    expect(parsed.config).toBeUndefined();
    expect(parsed.issues).toEqual([
      expect.stringMatching(/^config: cleanup\.rules\.0\.table: must be a plain identifier/),
      expect.stringMatching(/^config: cleanup\.rules\.1\.schema: must be a plain identifier/),
    ]);
    const file = join(tempDir(), 'pgops.json');
    writeFileSync(file, JSON.stringify(bad));
    expect(() => loadSettings({ config: file, databaseUrl: cluster.url(db) }, {})).toThrow(ConfigError);

    // Even past the config (a caller that skipped it), the name is quoted and looked up, never spliced.
    await expect(withClient(cluster.target(db), SESSION, (c) => resolveRules(c, [{ ...RULE, table: 'events; drop table x' }])))
      .rejects.toThrow(/table events; drop table x does not exist/);
    expect(await count(db, "SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'x'")).toBe(1);
    expect(await count(db)).toBe(5100);
  });

  it('olderThanDays: "thirty" is a ConfigError (exit 2) naming the field', () => {
    const file = join(tempDir(), 'pgops.json');
    writeFileSync(file, JSON.stringify({ cleanup: { rules: [{ ...RULE, olderThanDays: 'thirty' }, { ...RULE, batchSize: 0 }] } }));
    const err = (() => { try { loadSettings({ config: file }, {}); } catch (e) { return e; } })();
    expect(err).toBeInstanceOf(ConfigError);
    expect(exitCodeOf(err)).toBe(2);
    expect((err as ConfigError).issues).toEqual([
      expect.stringMatching(/^config: cleanup\.rules\.0\.olderThanDays: /),
      expect.stringMatching(/^config: cleanup\.rules\.1\.batchSize: /),
    ]);
  });

  it('a locked table fails its rule within lock_timeout, the other rules still run, and the run fails (exit 1) after one alert', async () => {
    const db = await seeded();
    await cluster.query('CREATE TABLE sessions (id int PRIMARY KEY, expires_at timestamptz); INSERT INTO sessions SELECT g, now() - interval \'2 days\' FROM generate_series(1, 50) g', [], db);
    const holder = new pg.Client({ connectionString: cluster.url(db) });
    await holder.connect();
    try {
      await holder.query('BEGIN; LOCK TABLE events IN ACCESS EXCLUSIVE MODE');
      const d = deps(db, { config: { cleanup: { rules: [RULE, { name: 'sessions', table: 'sessions', timestampColumn: 'expires_at', olderThanDays: 1 }] } } });
      const started = Date.now();
      // Resolving the rules reads only the catalog, so it does not wait for the lock.
      const err = await runCleanup(d, { dryRun: false }).then(() => undefined, (e: unknown) => e);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(err).toBeInstanceOf(CleanupError);
      expect(exitCodeOf(err)).toBe(1);
      expect((err as CleanupError).message).toMatch(/rule "old events": could not lock public\.events within lock_timeout \(300ms\)/);
      expect((err as CleanupError).result.rows).toMatchObject([{ rule: 'old events', complete: false, deleted: 0 }, { rule: 'sessions', complete: true, deleted: 50 }]);
      expect(d.alerter.sent).toHaveLength(1);
      expect(d.alerter.sent[0]).toMatchObject({ severity: 'critical', job: 'cleanup', database: db, environment: 'test' });
      expect((err as CleanupError).alertSent).toBe(true);
    } finally {
      await holder.query('ROLLBACK').catch(() => {});
      await holder.end();
    }
    expect(await count(db)).toBe(5100);
  });

  it('fractional days work (0.5 = 12 hours) and a date column is accepted', async () => {
    const db = await cluster.createDatabase();
    await cluster.query(`CREATE TABLE tokens (id int PRIMARY KEY, expires_at timestamp, valid_until date);
      INSERT INTO tokens VALUES (1, now() - interval '13 hours', current_date - 10), (2, now() - interval '11 hours', current_date)`, [], db);
    const half = await runCleanup(deps(db, { config: { cleanup: { rules: [{ name: 'half day', table: 'tokens', timestampColumn: 'expires_at', olderThanDays: 0.5 }] } } }), { dryRun: true });
    expect(half.rows[0]!.deleted).toBe(1);
    const byDate = await runCleanup(deps(db, { config: { cleanup: { rules: [{ name: 'by date', table: 'tokens', schema: 'public', timestampColumn: 'valid_until', olderThanDays: 5 }] } } }), { dryRun: false });
    expect(byDate.rows[0]).toMatchObject({ deleted: 1, table: 'public.tokens' });
  });
});

describe('scratch files of killed jobs', () => {
  it('removes pgops scratch directories older than a day from the temp dir (not in a dry run), and leaves younger ones and others alone', async () => {
    const db = await seeded();
    const tmp = tempDir();
    const old = join(tmp, 'pgops-restore-killed');
    const young = join(tmp, 'pgops-backup-running');
    const other = join(tmp, 'someone-else');
    for (const d of [old, young, other]) mkdirSync(d);
    writeFileSync(join(old, 'dump'), 'x'.repeat(1000));
    const twoDaysAgo = new Date(Date.now() - 2 * 86_400_000);
    for (const p of [join(old, 'dump'), old, other]) utimesSync(p, twoDaysAgo, twoDaysAgo);
    const dry = await runCleanup(deps(db, { tmpDir: tmp }), { dryRun: true });
    expect(dry.scratch).toEqual([]);
    expect(readdirSync(tmp).sort()).toEqual(['pgops-backup-running', 'pgops-restore-killed', 'someone-else']);
    const r = await runCleanup(deps(db, { tmpDir: tmp }), { dryRun: false });
    expect(r.scratch).toEqual(['pgops-restore-killed']);
    expect(readdirSync(tmp).sort()).toEqual(['pgops-backup-running', 'someone-else']);
  });
});

describe('functions and VACUUM', () => {
  const FN = `CREATE FUNCTION purge_marked() RETURNS integer LANGUAGE sql AS $$ WITH d AS (DELETE FROM events WHERE payload = 'fresh' AND id > 5090 RETURNING 1) SELECT count(*)::int FROM d $$`;

  it('calls cleanup.callFunctions (not in a dry run) and vacuums each rule\'s table', async () => {
    const db = await seeded();
    await cluster.query(FN, [], db);
    const config = { cleanup: { rules: [RULE], callFunctions: ['purge_marked'], vacuumAnalyze: true } };
    const dry = await runCleanup(deps(db, { config }), { dryRun: true });
    expect(dry.functions).toEqual([{ name: 'purge_marked', called: false }]);
    expect(dry.vacuum).toEqual([{ table: 'public.events', done: false }]);
    expect(await count(db)).toBe(5100);

    const run = await runCleanup(deps(db, { config }), { dryRun: false });
    expect(run.functions).toMatchObject([{ name: 'purge_marked', called: true, result: 10 }]);
    expect(run.vacuum).toMatchObject([{ table: 'public.events', done: true }]);
    expect(run.complete).toBe(true);
    expect(await count(db)).toBe(90);
  });

  it('a function that does not exist (with no arguments) is a configuration error before any DELETE', async () => {
    const db = await seeded();
    await cluster.query('CREATE FUNCTION needs_arg(n int) RETURNS int LANGUAGE sql AS $$ SELECT n $$', [], db);
    const err = await runCleanup(deps(db, { config: { cleanup: { rules: [RULE], callFunctions: ['nope', 'needs_arg'] } } }), { dryRun: false }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues).toEqual([
      expect.stringMatching(/cleanup\.callFunctions\.0: function nope\(\) does not exist/),
      expect.stringMatching(/cleanup\.callFunctions\.1: function needs_arg\(\) does not exist/),
    ]);
    expect(await count(db)).toBe(5100);
  });

  it('runs the example schema\'s cleanup_expired_data() and rules from pgops.example.json', async () => {
    const db = await cluster.createDatabase();
    const migrations = join(REPO_ROOT, 'migrations');
    const { runMigrations } = await import('../../../../../functions/core/migrate/job.ts');
    const { historyTables } = await import('../../../../../functions/core/migrate/files.ts');
    await runMigrations({ target: cluster.target(db), session: SESSION, dir: migrations, tables: historyTables('public', 'pgmigrations'), lockWaitSeconds: 5, logger: silentLogger, alerter: new MemoryAlerter(), databaseId: db, environment: 'test' }, { command: 'up' });
    const example = parseFileConfig(JSON.parse(readFileSync(join(REPO_ROOT, 'pgops.example.json'), 'utf8')));
    const r = await runCleanup(deps(db, { config: example.config }), { dryRun: false });
    expect(r.rows.map((x) => [x.table, x.complete])).toEqual([
      ['public.refresh_tokens', true], ['public.password_reset_tokens', true], ['public.user_sessions', true], ['public.audit_logs', true],
    ]);
    expect(r.functions).toMatchObject([{ name: 'cleanup_expired_data', called: true, result: 0 }]);
  });
});

describe('the whole job with backup retention', () => {
  const IDS = ['20261101T020000Z-0a01', '20261102T020000Z-0a02', '20261103T020000Z-0a03', '20261104T020000Z-0a04', '20261105T020000Z-0a05'];

  async function storageWithBackups(db: string): Promise<FileStorage> {
    const storage = new FileStorage(pathToFileURL(tempDir()).href);
    for (const id of IDS) {
      await storage.putBytes(`${db}/logical/${id}/dump`, 'x');
      // A manifest the catalog accepts (a bare { id, completedAt } is rejected as invalid).
      await storage.putBytes(`${db}/logical/${id}/manifest.json`, JSON.stringify(validManifest(db, id, { completedAt: new Date(Date.UTC(2026, 10, Number(id.slice(6, 8)), 2)).toISOString() })));
    }
    return storage;
  }

  it('reports rows and backups in the documented JSON shape; without storage it says retention was skipped', async () => {
    const db = await seeded();
    const storage = await storageWithBackups(db);
    const config = { cleanup: { rules: [RULE] }, retention: { keepLast: 3, keepDaily: 0, keepWeekly: 0, keepMonthly: 0 } };
    const dry = await runCleanup(deps(db, { storage, config }), { dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, rows: [{ rule: 'old events', deleted: 5000 }], backups: { kept: IDS.slice(2).reverse(), deleted: IDS.slice(0, 2).reverse() } });
    expect((await storage.list(`${db}/logical/`)).length).toBe(10);

    const run = await runCleanup(deps(db, { storage, config }), { dryRun: false });
    expect(run).toMatchObject({ dryRun: false, complete: true, rows: [{ deleted: 5000, complete: true }], backups: { kept: IDS.slice(2).reverse(), deleted: IDS.slice(0, 2).reverse(), orphans: [], storage: storage.url } });
    expect((await storage.list(`${db}/logical/`)).map((o) => o.key.split('/')[2])).toEqual(IDS.slice(2).flatMap((id) => [id, id]));

    const none = await runCleanup(deps(db, { config }), { dryRun: true });
    expect(none.backups).toEqual({ kept: [], deleted: [], skipped: 'no storage configured' });
  });
});

describe('pgops cleanup (CLI)', () => {
  /** The cleanup command under the CLI's global options, in-process (as bin/pgops.ts wires it). */
  async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const io = { out: (s: string) => { out += s; }, err: (s: string) => { err += s; }, isTTY: false };
    const program = new Command('pgops')
      .addOption(new Option('--database-url <url>'))
      .addOption(new Option('--storage <url>'))
      .addOption(new Option('--config <file>'))
      .option('--json')
      .option('-q, --quiet')
      .exitOverride()
      .configureOutput({ writeOut: io.out, writeErr: io.err });
    program.addCommand(cleanupCommand(io).exitOverride().configureOutput({ writeOut: io.out, writeErr: io.err }));
    const saved = process.exitCode;
    process.exitCode = undefined;
    let code: number;
    try {
      await program.parseAsync(['node', 'pgops', ...args]);
      code = typeof process.exitCode === 'number' ? process.exitCode : 0;
    } catch (e) {
      if (!(e instanceof CommanderError)) throw e;
      code = e.code === 'commander.helpDisplayed' ? 0 : 2;
    } finally {
      process.exitCode = saved;
    }
    return { code, out, err };
  }

  function configFile(body: unknown): string {
    const file = join(tempDir(), 'pgops.json');
    writeFileSync(file, JSON.stringify(body));
    return file;
  }

  it('--dry-run --json prints the result document; text mode a readable summary; then a run deletes', async () => {
    const db = await seeded();
    const storage = pathToFileURL(tempDir()).href;
    const config = configFile({ cleanup: { rules: [RULE] } });
    const base = ['--database-url', cluster.url(db), '--config', config, '--storage', storage, '-q'];

    const json = await cli([...base, '--json', 'cleanup', '--dry-run']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.out)).toMatchObject({ dryRun: true, rows: [{ rule: 'old events', deleted: 5000 }], backups: { kept: [], deleted: [] } });

    const text = await cli([...base, 'cleanup', '--dry-run']);
    expect(text.code).toBe(0);
    expect(text.out).toContain('Dry run: nothing was deleted.');
    expect(text.out).toContain('old events (public.events): 5000 would be deleted');
    expect(await count(db)).toBe(5100);

    const run = await cli([...base, 'cleanup']);
    expect(run.code).toBe(0);
    expect(run.out).toContain('old events (public.events): 5000 deleted');
    expect(run.out).toMatch(/backups \(file:\/\/.*\): 0 kept, 0 deleted/);
    expect(await count(db)).toBe(100);
  });

  it('exits 2 naming the field for olderThanDays: "thirty", and 2 naming the table for a missing one', async () => {
    const db = await seeded();
    const bad = await cli(['--database-url', cluster.url(db), '--config', configFile({ cleanup: { rules: [{ ...RULE, olderThanDays: 'thirty' }] } }), 'cleanup']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/cleanup\.rules\.0\.olderThanDays/);
    const missing = await cli(['--database-url', cluster.url(db), '--config', configFile({ cleanup: { rules: [{ ...RULE, table: 'evnets' }] } }), '--json', 'cleanup']);
    expect(missing.code).toBe(2);
    expect(JSON.parse(missing.out)).toMatchObject({ error: { type: 'ConfigError', exitCode: 2 } });
    expect(missing.err).toMatch(/table evnets does not exist/);
    expect(await count(db)).toBe(5100);
  });

  it('--help shows examples', async () => {
    const r = await cli(['cleanup', '--help']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('--dry-run');
    expect(r.out).toContain('$ pgops cleanup --config pgops.json --dry-run');
  });

  // Through the real bin/pgops.js once the command is registered there.
  const registered = readFileSync(join(REPO_ROOT, 'bin', 'pgops.ts'), 'utf8').includes('cleanupCommand(');
  it.skipIf(!registered)('bin/pgops.js: olderThanDays "thirty" exits 2 naming the field', async () => {
    const r = await runCli(['cleanup', '--config', configFile({ cleanup: { rules: [{ ...RULE, olderThanDays: 'thirty' }] } })], { DATABASE_URL: cluster.url('postgres') });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cleanup\.rules\.0\.olderThanDays/);
  });
});
