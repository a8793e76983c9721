// Shared set-up for the backup / restore integration tests: local storage in a temp dir, job
// dependencies that capture logs and alerts, a small seeded database.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll } from 'vitest';
import { MemoryAlerter } from '../../functions/core/alerts/alerter.ts';
import type { BackupJobDeps } from '../../functions/core/backup/deps.ts';
import { createTextLogger } from '../../functions/core/logger.ts';
import { FileStorage } from '../../functions/core/storage/file.ts';
import type { TestCluster } from './postgres.ts';

export interface Harness {
  deps: BackupJobDeps;
  logs: string[];
  alerter: MemoryAlerter;
}

export function harness(cluster: TestCluster, storage: FileStorage, db: string, extra: Partial<BackupJobDeps> = {}): Harness {
  const logs: string[] = [];
  const alerter = new MemoryAlerter();
  const deps: BackupJobDeps = {
    target: cluster.target(db),
    storage,
    logger: createTextLogger({ level: 'debug', write: (l) => { logs.push(l); } }),
    alerter,
    databaseId: db,
    environment: 'test',
    binDir: cluster.pg.binDir,
    ...extra,
  };
  return { deps, logs, alerter };
}

/** A FileStorage over a fresh temp dir, removed after the file's tests. */
export function freshStorage(): { storage: FileStorage; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'pgops-bk-store-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return { storage: new FileStorage(pathToFileURL(dir).href), dir };
}

/** Every file under dir (temporary files included), relative, sorted. */
export function allFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

export function sha256File(path: string): { sha256: string; bytes: number } {
  const data = readFileSync(path);
  return { sha256: createHash('sha256').update(data).digest('hex'), bytes: statSync(path).size };
}

/** Two small tables plus a node-pg-migrate history table. */
export async function seed(cluster: TestCluster, db: string): Promise<void> {
  await cluster.query(`
    CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE, created_at timestamptz NOT NULL DEFAULT now());
    CREATE TABLE orders (id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users(id), total numeric(10,2), note text);
    CREATE SCHEMA audit;
    CREATE TABLE audit.events (id int PRIMARY KEY, payload jsonb);
    INSERT INTO users (email) SELECT 'user' || g || '@example.com' FROM generate_series(1, 2000) g;
    INSERT INTO orders (user_id, total, note) SELECT 1 + g % 2000, g / 7.0, md5(g::text) FROM generate_series(1, 3000) g;
    INSERT INTO audit.events SELECT g, jsonb_build_object('n', g) FROM generate_series(1, 500) g;
    CREATE TABLE pgmigrations (id serial PRIMARY KEY, name varchar(255) NOT NULL, run_on timestamp NOT NULL);
    INSERT INTO pgmigrations (name, run_on) VALUES ('001_init', now() - interval '1 day'), ('002_orders', now());
  `, [], db);
}

export async function rowCounts(cluster: TestCluster, db: string): Promise<Record<string, number>> {
  const tables = await cluster.query<{ t: string }>(`
    SELECT format('%I.%I', n.nspname, c.relname) AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_' ORDER BY 1`, [], db);
  const out: Record<string, number> = {};
  for (const { t } of tables.rows) out[t] = Number((await cluster.query<{ n: string }>(`SELECT count(*) AS n FROM ${t}`, [], db)).rows[0]!.n);
  return out;
}

export async function databaseExists(cluster: TestCluster, db: string): Promise<boolean> {
  return ((await cluster.query('SELECT 1 FROM pg_database WHERE datname = $1', [db])).rowCount ?? 0) > 0;
}
