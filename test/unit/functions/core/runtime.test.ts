// The runtime builder: which dependencies each job gets from the settings, storage only where a
// caller passes an opener, the client tools found once, and where failures are reported.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FanoutAlerter } from '../../../../functions/core/alerts/alerter.ts';
import { loadSettings } from '../../../../functions/core/config.ts';
import { ConfigError } from '../../../../functions/core/errors.ts';
import { silentLogger } from '../../../../functions/core/logger.ts';
import { buildRuntime, type StorageOpener } from '../../../../functions/core/runtime.ts';
import { FileStorage } from '../../../../functions/core/storage/file.ts';
import type { Storage } from '../../../../functions/core/storage/types.ts';

const URL = 'postgres://app:pw@db.internal:5432/shop';

function binDir(tools = ['pg_dump', 'pg_restore']): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgops-bin-'));
  for (const t of tools) writeFileSync(join(dir, t), '');
  return dir;
}

function runtime(env: Record<string, string>, opener?: StorageOpener) {
  const opened: string[] = [];
  const openStorage: StorageOpener | undefined = opener ?? ((url) => { opened.push(url); return new FileStorage(url); });
  const rt = buildRuntime(loadSettings({}, { DATABASE_URL: URL, PGOPS_ENVIRONMENT: 'staging', ...env }), silentLogger, { openStorage });
  return { rt, opened };
}

describe('buildRuntime', () => {
  it('gives the migrate job its target, session, history tables and where to report', async () => {
    const { rt } = runtime({ PGOPS_MIGRATIONS_DIR: '/srv/migrations' });
    const d = await rt.migrateDeps();
    expect(d).toMatchObject({ dir: '/srv/migrations', databaseId: 'shop', environment: 'staging', tables: { schema: 'public', table: 'pgmigrations', checksums: 'pgmigrations_checksums' }, lockWaitSeconds: 60 });
    expect(d.target.display).toBe('postgres://app:***@db.internal:5432/shop');
    expect(d.alerter).toBe(rt.alerter);
    expect(d).not.toHaveProperty('storage');
  });

  it('gives the backup jobs storage and the configured client tools directory, found once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgops-store-'));
    const bin = binDir();
    const { rt, opened } = runtime({ PGOPS_STORAGE: `file://${dir}`, PGOPS_PG_BINDIR: bin, PGOPS_DATABASE_ID: 'orders' });
    const d = await rt.backupDeps({ tmpDir: '/scratch' });
    expect(d).toMatchObject({ binDir: bin, databaseId: 'orders', environment: 'staging', tmpDir: '/scratch', migrationsTable: { schema: 'public', table: 'pgmigrations' } });
    expect(d.storage.url).toBe(`file://${dir}`);
    await rt.backupDeps();
    expect(opened).toHaveLength(1);
  });

  it('gives on-demand backups estimated row counts under backup.rowCounts auto, and the configured ones otherwise', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgops-store-'));
    const env = { PGOPS_STORAGE: `file://${dir}`, PGOPS_PG_BINDIR: binDir() };
    expect((await runtime(env).rt.backupDeps()).backupDefaults).toEqual({ compression: 'gzip:1', rowCounts: 'estimate' });
    const config = join(dir, 'pgops.json');
    writeFileSync(config, JSON.stringify({ backup: { rowCounts: 'exact', compression: 'gzip:6' } }));
    expect((await runtime({ ...env, PGOPS_CONFIG: config }).rt.backupDeps()).backupDefaults).toEqual({ compression: 'gzip:6', rowCounts: 'exact' });
  });

  it('a configured tools directory without pg_dump is a configuration error naming it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgops-store-'));
    const { rt } = runtime({ PGOPS_STORAGE: `file://${dir}`, PGOPS_PG_BINDIR: binDir(['pg_restore']) });
    await expect(rt.backupDeps()).rejects.toThrow(ConfigError);
    expect(() => rt.binDir()).toThrow(/PGOPS_PG_BINDIR .*: no pg_dump there/);
  });

  it('storage missing: a ConfigError for the jobs that need it, none for those that can do without', async () => {
    const { rt, opened } = runtime({});
    expect(() => rt.storage()).toThrow(ConfigError);
    expect(() => rt.storage()).toThrow(/no storage: set --storage \/ PGOPS_STORAGE/);
    await expect(rt.backupDeps()).rejects.toThrow(ConfigError);
    expect((await rt.cleanupDeps()).storage).toBeUndefined();
    expect((await rt.healthDeps()).storage).toBeUndefined();
    expect(opened).toEqual([]);
  });

  it('a caller that passes no storage opener (the migrate function) cannot open storage', () => {
    const rt = buildRuntime(loadSettings({}, { DATABASE_URL: URL, PGOPS_STORAGE: 's3://bucket/prefix' }), silentLogger);
    expect(() => rt.storage()).toThrow(/storage is not available to this job/);
  });

  it('gives cleanup and health their config, health no alerter (it delivers its own, deduplicated)', async () => {
    const fake = { url: 'file:///x' } as Storage;
    const { rt } = runtime({ PGOPS_STORAGE: 'file:///x' }, () => fake);
    const c = await rt.cleanupDeps({ deadline: 42 });
    expect(c).toMatchObject({ storage: fake, deadline: 42, databaseId: 'shop', environment: 'staging' });
    expect(c.config).toBe(rt.settings.config);
    const h = await rt.healthDeps();
    expect(h).toMatchObject({ storage: fake, databaseId: 'shop', environment: 'staging', migrationsDir: rt.settings.migrationsDir });
    expect(h).not.toHaveProperty('alerter');
  });

  it('reports failures through its alerter, naming the database once it is known', async () => {
    const { rt } = runtime({});
    const r = rt.reporting();
    expect(r.alerter).toBeInstanceOf(FanoutAlerter);
    expect(typeof r.databaseId === 'function' ? r.databaseId() : r.databaseId).toBe('unknown');
    await rt.target();
    expect(typeof r.databaseId === 'function' ? r.databaseId() : r.databaseId).toBe('shop');
  });

  it('refuses an event for another database', async () => {
    const { rt } = runtime({});
    await rt.target();
    expect(() => rt.checkServes('billing', 'cleanup')).toThrow(/this cleanup function serves database "shop", not "billing"/);
    expect(() => rt.checkServes('shop', 'cleanup')).not.toThrow();
    expect(() => rt.checkServes(undefined, 'cleanup')).not.toThrow();
  });
});

describe('the stop signal (CLI SIGTERM/SIGINT)', () => {
  it('is handed to the backup, verify and restore jobs, and says so; a runtime without one is not interruptible', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgops-store-'));
    const settings = loadSettings({}, { DATABASE_URL: URL, PGOPS_STORAGE: `file://${dir}`, PGOPS_PG_BINDIR: binDir() });
    const stop = new AbortController();
    const rt = buildRuntime(settings, silentLogger, { openStorage: (url) => new FileStorage(url), signal: stop.signal });
    expect(rt.interruptible()).toBe(false);
    await rt.migrateDeps();
    expect(rt.interruptible()).toBe(false);
    expect((await rt.backupDeps()).signal).toBe(stop.signal);
    expect(rt.interruptible()).toBe(true);
    const plain = buildRuntime(settings, silentLogger, { openStorage: (url) => new FileStorage(url) });
    expect((await plain.backupDeps()).signal).toBeUndefined();
    expect(plain.interruptible()).toBe(false);
  });
});
