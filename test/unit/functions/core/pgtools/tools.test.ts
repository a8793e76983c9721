// Pure parts of the backup jobs: pg_dump/pg_restore argv and environment (never the password in
// argv), version checks, ids and keys, table patterns, pg_restore listings, stderr summaries.
import { describe, expect, it } from 'vitest';
import { backupLockKey } from '../../../../../functions/core/backup/backup.ts';
import { backupKeys, checkDatabaseId, isBackupId, newBackupId } from '../../../../../functions/core/catalog/layout.ts';
import { normalizeBackupOptions, progressReporter } from '../../../../../functions/core/backup/deps.ts';
import { buildPgDumpCommand, buildPgRestoreCommand, checkPgDumpVersion, describeExit, dieWithParent, parseToolVersion, pgEnv, startTool, summarizeStderr, withStreamBuffers } from '../../../../../functions/core/pgtools/tools.ts';
import { parseRestoreList } from '../../../../../functions/core/backup/restore.ts';
import { parseTablePattern, tableSelected } from '../../../../../functions/core/backup/tables.ts';
import { parseDatabaseUrl } from '../../../../../functions/core/db.ts';
import { ConfigError, exitCodeOf, UsageError } from '../../../../../functions/core/errors.ts';
import { PgDumpVersionError } from '../../../../../functions/core/backup/errors.ts';

const PASSWORD = 's3cr3t-P@ss:word/with?chars';
const target = parseDatabaseUrl(`postgres://backup_user:${encodeURIComponent(PASSWORD)}@db.internal:6543/auth?sslmode=verify-full&sslrootcert=/etc/ssl/rds.pem`);
const opts = normalizeBackupOptions({ tables: ['public.users', 'audit.*'], excludeTables: ['big_log'] });

describe('pg_dump command', () => {
  const base = { PATH: '/usr/bin', PGSERVICE: 'evil', PGPASSWORD: 'stale', DATABASE_URL: 'postgres://x:y@h/d', PGOPS_SLACK_WEBHOOK_URL: 'https://hooks.slack.com/x', HOME: '/root' };

  it('never puts the password in argv; passes it, and the connection, through libpq variables', () => {
    const cmd = buildPgDumpCommand(target, opts, { binDir: '/usr/lib/postgresql/17/bin', format: 'custom', snapshot: '00000003-0000001B-1', baseEnv: base });
    expect(cmd.command).toBe('/usr/lib/postgresql/17/bin/pg_dump');
    expect(cmd.args).toEqual(['--format=custom', '--no-password', '--table=public.users', '--table=audit.*', '--exclude-table=big_log', '--snapshot=00000003-0000001B-1']);
    for (const a of cmd.args) {
      expect(a).not.toContain(PASSWORD);
      expect(a).not.toContain(encodeURIComponent(PASSWORD));
      expect(a).not.toMatch(/db\.internal|backup_user|postgres:\/\//);
    }
    expect(cmd.env).toMatchObject({
      PGHOST: 'db.internal', PGPORT: '6543', PGUSER: 'backup_user', PGDATABASE: 'auth', PGPASSWORD: PASSWORD,
      PGSSLMODE: 'verify-full', PGSSLROOTCERT: '/etc/ssl/rds.pem', PGAPPNAME: 'pgops-backup', PGCONNECT_TIMEOUT: '10',
      PATH: '/usr/bin', HOME: '/root',
    });
    // Inherited libpq settings and unrelated secrets do not reach the tool.
    expect(cmd.env.PGSERVICE).toBeUndefined();
    expect(cmd.env.DATABASE_URL).toBeUndefined();
    expect(cmd.env.PGOPS_SLACK_WEBHOOK_URL).toBeUndefined();
  });

  it('uses the directory format with --jobs, and the schema/data switches', () => {
    const o = normalizeBackupOptions({ schemaOnly: true, jobs: 4 });
    const cmd = buildPgDumpCommand(target, o, { binDir: '/b', format: 'directory', outDir: '/tmp/x/dump', jobs: 4 });
    expect(cmd.args).toEqual(['--format=directory', '--file=/tmp/x/dump', '--jobs=4', '--no-sync', '--no-password', '--schema-only']);
    expect(buildPgDumpCommand(target, normalizeBackupOptions({ dataOnly: true }), { binDir: '/b', format: 'custom' }).args).toContain('--data-only');
  });

  it('omits PGPASSWORD without a password', () => {
    const env = pgEnv(parseDatabaseUrl('postgres://u@h/d'), { applicationName: 'x', baseEnv: { PGPASSWORD: 'old' } });
    expect(env.PGPASSWORD).toBeUndefined();
  });

  it('rejects bad option combinations as usage errors', () => {
    expect(() => normalizeBackupOptions({ schemaOnly: true, dataOnly: true })).toThrow(UsageError);
    expect(() => normalizeBackupOptions({ jobs: 0 })).toThrow(/--jobs must be a whole number/);
    expect(() => normalizeBackupOptions({ tables: [''] })).toThrow(/empty/);
  });
});

describe('pg_restore command', () => {
  it('restores with the password in the environment only', () => {
    const cmd = buildPgRestoreCommand(target, { binDir: '/b', format: 'custom', input: '/tmp/d/dump', database: 'auth_copy', clean: true, noOwner: true, tables: ['users'], singleTransaction: true });
    expect(cmd.args).toEqual(['--format=custom', '--dbname=auth_copy', '--exit-on-error', '--no-password', '--clean', '--if-exists', '--no-owner', '--table=users', '--single-transaction', '/tmp/d/dump']);
    expect(cmd.args.join(' ')).not.toContain(PASSWORD);
    expect(cmd.env).toMatchObject({ PGDATABASE: 'auth_copy', PGPASSWORD: PASSWORD, PGAPPNAME: 'pgops-restore' });
  });

  it('parallel jobs replace the single transaction; without a database it reads to /dev/null', () => {
    expect(buildPgRestoreCommand(target, { binDir: '/b', input: 'x', database: 'd', jobs: 3, singleTransaction: true }).args).toEqual(['--dbname=d', '--exit-on-error', '--no-password', '--jobs=3', 'x']);
    expect(buildPgRestoreCommand(target, { binDir: '/b', format: 'custom' }).args).toEqual(['--format=custom', '--file=/dev/null']);
  });
});

describe('pg_dump version check', () => {
  it('parses pg_dump --version', () => {
    expect(parseToolVersion('pg_dump (PostgreSQL) 15.14 (Debian 15.14-1.pgdg120+1)\n').num).toBe(150014);
    expect(parseToolVersion('pg_dump (PostgreSQL) 17.2').num).toBe(170002);
    expect(parseToolVersion('pg_dump (PostgreSQL) 9.6.24').num).toBe(90624);
    expect(parseToolVersion('pg_dump (PostgreSQL) 18beta1').num).toBe(180000);
    expect(() => parseToolVersion('nonsense')).toThrow(PgDumpVersionError);
  });

  it('refuses a pg_dump older than the server, accepts the same or a newer major', () => {
    const err = (() => { try { checkPgDumpVersion(parseToolVersion('pg_dump (PostgreSQL) 15.8'), 160004); } catch (e) { return e; } })();
    expect(err).toBeInstanceOf(PgDumpVersionError);
    expect(exitCodeOf(err)).toBe(1);
    expect((err as Error).message).toMatch(/^pg_dump 15 is older than the server \(PostgreSQL 16\): install the PostgreSQL 16 client tools/);
    expect(() => checkPgDumpVersion(parseToolVersion('pg_dump (PostgreSQL) 9.5.1'), 90624)).toThrow(/pg_dump 9\.5 is older than the server \(PostgreSQL 9\.6\)/);
    expect(() => checkPgDumpVersion(parseToolVersion('pg_dump (PostgreSQL) 16.0'), 160004)).not.toThrow();
    expect(() => checkPgDumpVersion(parseToolVersion('pg_dump (PostgreSQL) 17.2'), 150010)).not.toThrow();
    expect(() => checkPgDumpVersion(parseToolVersion('pg_dump (PostgreSQL) 15.1'), 150014)).not.toThrow();
  });
});

describe('ids, keys and locks', () => {
  it('makes time-sorted backup ids', () => {
    expect(newBackupId(new Date('2026-11-22T02:00:00.999Z'), () => '3fa2')).toBe('20261122T020000Z-3fa2');
    const a = newBackupId(new Date('2026-11-22T02:00:00Z'));
    const b = newBackupId(new Date('2026-11-22T02:00:01Z'));
    expect(isBackupId(a)).toBe(true);
    expect(a < b).toBe(true);
    expect(isBackupId('../etc')).toBe(false);
  });

  it('lays keys out under <database>/logical/<id>/ and refuses database ids that could escape', () => {
    expect(backupKeys('auth', '20261122T020000Z-3fa2')).toEqual({
      dir: 'auth/logical/20261122T020000Z-3fa2/',
      dump: 'auth/logical/20261122T020000Z-3fa2/dump',
      manifest: 'auth/logical/20261122T020000Z-3fa2/manifest.json',
      restoreTest: 'auth/logical/20261122T020000Z-3fa2/restore-test.json',
    });
    for (const bad of ['..', 'a/b', '', 'x y']) expect(() => checkDatabaseId(bad)).toThrow(ConfigError);
  });

  it('derives one lock key per database', () => {
    expect(backupLockKey('auth')).toBe(backupLockKey('auth'));
    expect(backupLockKey('auth')).not.toBe(backupLockKey('billing'));
  });

  it('reports progress at most every interval, and once at the end', () => {
    const seen: number[] = [];
    const p = progressReporter((x) => seen.push(x.bytes), 60_000);
    p.update(1);
    p.update(2);
    p.done(3);
    expect(seen).toEqual([3]);
  });
});

describe('table patterns (pg_dump -t/-T rules)', () => {
  const t = (schema: string, name: string, visible = schema === 'public') => ({ schema, name, visible });
  it('folds unquoted names, honours quotes, wildcards and schemas', () => {
    expect(parseTablePattern('Users').name.test('users')).toBe(true);
    expect(parseTablePattern('"Users"').name.test('users')).toBe(false);
    expect(parseTablePattern('"Users"').name.test('Users')).toBe(true);
    expect(tableSelected(t('audit', 'events'), ['audit.*'], [])).toBe(true);
    expect(tableSelected(t('public', 'events'), ['audit.*'], [])).toBe(false);
    expect(tableSelected(t('public', 'users'), ['user?'], [])).toBe(true);
    // Unqualified patterns match only tables visible on the search path.
    expect(tableSelected(t('audit', 'users'), ['users'], [])).toBe(false);
    expect(tableSelected(t('public', 'big_log'), [], ['big_log'])).toBe(false);
    expect(tableSelected(t('public', 'bigXlog'), [], ['big_log'])).toBe(true);
  });
});

describe('pg_restore listings and tool errors', () => {
  it('counts entries and tables from pg_restore --list', () => {
    const listing = [
      ';',
      '; Archive created at 2026-11-22 02:00:00 UTC',
      '215; 1259 16385 TABLE public users postgres',
      '216; 1259 16390 TABLE audit events postgres',
      '3345; 0 16385 TABLE DATA public users postgres',
      '3346; 0 16390 TABLE DATA audit events postgres',
      '3200; 0 0 SEQUENCE SET public users_id_seq postgres',
      '3201; 2606 16400 CONSTRAINT public users users_pkey postgres',
      '3202; 2606 16401 FK CONSTRAINT public orders orders_user_id_fkey postgres',
    ].join('\n');
    const plan = parseRestoreList(listing);
    expect(plan.tables).toEqual(['audit.events', 'public.users']);
    expect(plan.entries).toEqual({ TABLE: 2, 'TABLE DATA': 2, 'SEQUENCE SET': 1, CONSTRAINT: 1, 'FK CONSTRAINT': 1 });
  });

  it('names the real error of a failed dump, not the COPY command', () => {
    const stderr = 'pg_dump: error: Dumping the contents of table "big" failed: PQgetCopyData() failed.\npg_dump: detail: Error message from server: server closed the connection unexpectedly\npg_dump: detail: Command was: COPY public.big (id, payload) TO stdout;\n';
    expect(summarizeStderr(stderr)).toBe('pg_dump: error: Dumping the contents of table "big" failed: PQgetCopyData() failed. — Error message from server: server closed the connection unexpectedly');
    expect(describeExit('pg_dump', { code: null, signal: 'SIGKILL', stderr: '' })).toBe('pg_dump was killed by SIGKILL');
    expect(describeExit('pg_dump', { code: 1, signal: null, stderr: 'connection to postgres://u:hunter22@h/d failed\n' })).toBe('pg_dump exited with code 1: connection to postgres://u:***@h/d failed');
  });
});

describe('restore sessions and tool processes', () => {
  it('gives pg_restore our lock_timeout through PGOPTIONS, never an inherited PGOPTIONS', () => {
    const baseEnv = { PATH: '/usr/bin', PGOPTIONS: '-c lock_timeout=0 -c search_path=evil' };
    const cmd = buildPgRestoreCommand(target, { binDir: '/b', input: 'x', database: 'd', lockTimeoutMs: 1500, baseEnv });
    expect(cmd.env.PGOPTIONS).toBe('-c lock_timeout=1500');
    expect(pgEnv(target, { applicationName: 'a', baseEnv })).not.toHaveProperty('PGOPTIONS');
    expect(pgEnv(target, { applicationName: 'a', baseEnv, lockTimeoutMs: 250.7 }).PGOPTIONS).toBe('-c lock_timeout=250');
  });

  it('lists with dependencies (-l -v) and restores a list file instead of --table', () => {
    expect(buildPgRestoreCommand(target, { binDir: '/b', format: 'custom', input: 'x', list: true, verbose: true }).args).toEqual(['--format=custom', '--list', '--verbose', 'x']);
    expect(buildPgRestoreCommand(target, { binDir: '/b', input: 'x', database: 'd', useList: '/t/restore.list', tables: ['users'], singleTransaction: true }).args)
      .toEqual(['--dbname=d', '--exit-on-error', '--no-password', '--use-list=/t/restore.list', '--single-transaction', 'x']);
  });

  it('runs a tool under setpriv --pdeathsig so it dies with pgops; a missing tool is spawned as is', () => {
    const cmd = { command: '/usr/bin/sleep', args: ['5'], env: {} };
    expect(dieWithParent(cmd, '/usr/bin/setpriv')).toEqual({ command: '/usr/bin/setpriv', args: ['--pdeathsig', 'TERM', '--', '/usr/bin/sleep', '5'] });
    expect(dieWithParent(cmd, null)).toEqual({ command: '/usr/bin/sleep', args: ['5'] });
    expect(dieWithParent({ ...cmd, command: '/nowhere/pg_restore' }, '/usr/bin/setpriv').command).toBe('/nowhere/pg_restore');
  });

  it('stops a running tool when its abort signal fires', async () => {
    const abort = new AbortController();
    const t0 = Date.now();
    const tool = startTool({ command: '/bin/sleep', args: ['30'], env: { PATH: '/usr/bin:/bin' } }, { signal: abort.signal });
    setTimeout(() => abort.abort('SIGTERM'), 100);
    const exit = await tool.done;
    expect(exit.signal).toBe('SIGTERM');
    expect(Date.now() - t0).toBeLessThan(10_000);
    // Already aborted: the tool is stopped at once.
    expect((await startTool({ command: '/bin/sleep', args: ['30'], env: {} }, { signal: abort.signal }).done).signal).toBe('SIGTERM');
  });

  it('gives a tool streaming an archive 1 MiB stdio buffers on its piped side only, keeping any LD_PRELOAD; without the library, the environment as is', () => {
    const lib = '/usr/libexec/coreutils/libstdbuf.so';
    expect(withStreamBuffers({ PATH: '/usr/bin' }, { stdout: true }, lib)).toEqual({ PATH: '/usr/bin', LD_PRELOAD: lib, _STDBUF_O: '1048576' });
    expect(withStreamBuffers({ LD_PRELOAD: '/opt/x.so' }, { stdin: true }, lib)).toEqual({ LD_PRELOAD: `${lib}:/opt/x.so`, _STDBUF_I: '1048576' });
    expect(withStreamBuffers({ PATH: '/usr/bin' }, { stdout: true }, null)).toEqual({ PATH: '/usr/bin' });
    expect(withStreamBuffers({ PATH: '/usr/bin' }, {}, lib)).toEqual({ PATH: '/usr/bin' });
  });

  it('starts a streaming tool with the buffer settings in its environment (this machine has coreutils\' library)', async () => {
    const tool = startTool({ command: '/usr/bin/env', args: [], env: { PATH: '/usr/bin:/bin' } }, { stdout: 'pipe', streamBuffers: true });
    let out = '';
    tool.child.stdout?.setEncoding('utf8').on('data', (d: string) => { out += d; });
    expect((await tool.done).code).toBe(0);
    expect(out).toMatch(/^_STDBUF_O=1048576$/m);
    expect(out).toMatch(/^LD_PRELOAD=\S*libstdbuf\.so$/m);
  });
});
