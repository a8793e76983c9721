// The issue-10 repro end to end through the CLI: partial backups and a default cleanup, what
// `backups list` shows (kinds, invalid manifests), and what cleanup reports of crashed writes.
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupKeys } from '../../../../functions/core/catalog/layout.ts';
import { runCli, type CliResult } from '../../../helpers/cli.ts';
import { validManifest } from '../../../helpers/manifests.ts';
import { useTestCluster } from '../../../helpers/postgres.ts';

const cluster = useTestCluster();
const work = mkdtempSync(join(tmpdir(), 'pgops-cleanup-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let db = '';
const store = join(work, 'store');
const outputs: string[] = [];
beforeAll(async () => {
  db = await cluster.createDatabase('shop');
  await cluster.query('CREATE TABLE orders (id serial PRIMARY KEY, total numeric); INSERT INTO orders (total) SELECT g FROM generate_series(1, 500) g', [], db);
});
afterAll(() => {
  expect(outputs.join('\n')).not.toContain(cluster.pg.password);
});

async function cli(...args: string[]): Promise<CliResult> {
  const r = await runCli(args, { DATABASE_URL: cluster.url(db), PGOPS_STORAGE: `file://${store}` }, { timeoutMs: 120_000 });
  outputs.push(r.stdout, r.stderr);
  return r;
}

async function backupId(...flags: string[]): Promise<string> {
  const r = await cli('backup', '--json', ...flags);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { id: string }).id;
}

describe('eight --schema-only backups after one full backup, then a default cleanup (issue 10)', () => {
  let full = '';
  const schemaOnly: string[] = [];

  it('each backup says what it holds', async () => {
    const first = await cli('backup', '--json');
    expect(first.code, first.stderr).toBe(0);
    const m = JSON.parse(first.stdout) as { id: string; kind: string };
    expect(m.kind).toBe('full');
    full = m.id;
    const text = await cli('backup', '--schema-only');
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^backup \S+ \(schema-only\): .*\n.*\n {2}a schema-only backup: "latest" and retention's full backups ignore it; restore it by its id\n$/);
    schemaOnly.push(text.stdout.split(' ')[1]!);
    for (let i = 1; i < 8; i++) schemaOnly.push(await backupId('--schema-only'));
    expect(new Set(schemaOnly).size).toBe(8);
  });

  it('the cleanup keeps the full backup; `latest` is still the full one', async () => {
    const dry = await cli('cleanup', '--dry-run');
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/backups \(file:.*\): 8 kept, 1 would be deleted: \S+ \(schema-only\)\n/);

    const r = await cli('cleanup', '--json');
    expect(r.code, r.stderr).toBe(0);
    const { backups } = JSON.parse(r.stdout) as { backups: { kept: string[]; deleted: string[] } };
    expect(backups.kept).toContain(full);
    expect(backups.kept).toHaveLength(8);
    expect(backups.deleted).toHaveLength(1);
    expect(schemaOnly).toContain(backups.deleted[0]);
    expect(existsSync(join(store, db, 'logical', full, 'dump'))).toBe(true);

    const restore = await cli('restore', 'latest', '--target-db', 'shop_copy', '--create', '--json');
    expect(restore.code, restore.stderr).toBe(0);
    expect(JSON.parse(restore.stdout)).toMatchObject({ backupId: full, targetDb: 'shop_copy' });
    expect((await cluster.query<{ n: number }>('SELECT count(*)::int AS n FROM orders', [], 'shop_copy')).rows[0]!.n).toBe(500);
  });

  it('backups list shows each backup\'s kind; --json keeps the manifests as they are', async () => {
    const text = await cli('backups', 'list');
    expect(text.code, text.stderr).toBe(0);
    const lines = text.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^id\s+kind\s+completed\s+size\s+migration$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 2))).toEqual([
      ...schemaOnly.slice(1).reverse().map((id) => [id, 'schema-only']),
      [full, 'full'],
    ]);
    const json = JSON.parse((await cli('backups', 'list', '--json')).stdout) as Array<{ id: string; kind: string }>;
    expect(json.map((m) => [m.id, m.kind])).toEqual(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 2)));
  });

  it('with only partial backups left, `restore latest` refuses (exit 1) and says to name one by id', async () => {
    rmSync(join(store, db, 'logical', full), { recursive: true });
    const r = await cli('restore', 'latest', '--target-db', 'never_made', '--create');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`no full backup of database "${db}"`);
    expect(r.stderr).toContain('7 partial backups: restore one by its id');
    expect((await cluster.query("SELECT 1 FROM pg_database WHERE datname = 'never_made'")).rowCount).toBe(0);
  });
});

describe('invalid manifests and crashed writes are reported, never skipped (issue 10)', () => {
  const future = '20261001T020000Z-f00d';

  it('backups list names every invalid manifest and why, on stderr and in the text; --json stays an array of manifests', async () => {
    const keys = backupKeys(db, future);
    mkdirSync(join(store, db, 'logical', future), { recursive: true });
    writeFileSync(join(store, keys.manifest), JSON.stringify({ ...validManifest(db, future), formatVersion: 2 }));
    const text = await cli('backups', 'list');
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`INVALID ${future}: formatVersion 2 (this pgops reads 1): written by a newer pgops: upgrade pgops to read it (${keys.manifest})\n`);
    expect(text.stderr).toContain(`warning: invalid manifest ${keys.manifest}: formatVersion 2`);
    const json = await cli('backups', 'list', '--json');
    const list = JSON.parse(json.stdout) as Array<{ id: string }>;
    expect(Array.isArray(list)).toBe(true);
    expect(list.map((m) => m.id)).not.toContain(future);
    expect(json.stderr).toContain(`invalid manifest ${keys.manifest}`);
  });

  it('cleanup reports and removes a crashed backup\'s temporary dump older than a day, and leaves the invalid manifest alone', async () => {
    const crashed = join(store, db, 'logical', '20261001T030000Z-dead');
    mkdirSync(crashed, { recursive: true });
    const temp = join(crashed, '.dump.pgops-tmp-0123456789ab');
    writeFileSync(temp, Buffer.alloc(64 * 1024));
    const twoDaysAgo = new Date(Date.now() - 2 * 86_400_000);
    utimesSync(temp, twoDaysAgo, twoDaysAgo);
    const key = `${db}/logical/20261001T030000Z-dead/.dump.pgops-tmp-0123456789ab`;

    const dry = await cli('cleanup', '--dry-run');
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`unfinished temporary file ${key} (since ${twoDaysAgo.toISOString().slice(0, 16)}`);
    expect(dry.stdout).toMatch(/unfinished temporary file .*: would be removed\n/);
    expect(dry.stdout).toContain(`${future}: invalid manifest (formatVersion 2`);
    expect(existsSync(temp)).toBe(true);

    const r = await cli('cleanup', '--json');
    expect(r.code, r.stderr).toBe(0);
    const { backups } = JSON.parse(r.stdout) as { backups: { incomplete: Array<{ key: string; kind: string }>; invalid: Array<{ id: string }> } };
    expect(backups.incomplete).toEqual([expect.objectContaining({ key, kind: 'temp-file' })]);
    expect(backups.invalid.map((i) => i.id)).toEqual([future]);
    expect(existsSync(temp)).toBe(false);
    expect(existsSync(join(store, backupKeys(db, future).manifest))).toBe(true);
  });
});
