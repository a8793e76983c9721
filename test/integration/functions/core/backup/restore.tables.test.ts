// restore --table against a real PostgreSQL, on a schema like the example's: a table comes back
// with its indexes (unique, partial), constraints (primary key, check, foreign keys), triggers and
// sequences, in public or another schema; names not in the backup are refused before anything.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../../../../functions/core/backup/backup.ts';
import { runRestore } from '../../../../../functions/core/backup/restore.ts';
import type { BackupManifest } from '../../../../../functions/core/catalog/manifest.ts';
import { exitCodeOf, UsageError } from '../../../../../functions/core/errors.ts';
import { useTestCluster } from '../../../../helpers/postgres.ts';
import { databaseExists, freshStorage, harness, rowCounts } from '../../../../helpers/backup-fixtures.ts';

const cluster = useTestCluster();
const { storage } = freshStorage();
const staging = mkdtempSync(join(tmpdir(), 'pgops-restore-tables-'));
afterAll(() => rmSync(staging, { recursive: true, force: true }));
const h = () => harness(cluster, storage, 'auth', { tmpDir: staging });
let backup: BackupManifest;

beforeAll(async () => {
  await cluster.createDatabase('auth');
  await cluster.query(`
    CREATE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
    CREATE TABLE users (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(), email text NOT NULL, active boolean NOT NULL DEFAULT true,
      updated_at timestamptz, CONSTRAINT users_email_shape CHECK (position('@' in email) > 1));
    CREATE UNIQUE INDEX users_email_key ON users (lower(email));
    CREATE INDEX users_active_email ON users (email) WHERE active;
    CREATE TRIGGER users_touch BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
    CREATE TABLE refresh_tokens (id bigserial PRIMARY KEY, user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE, revoked boolean NOT NULL DEFAULT false);
    CREATE INDEX refresh_tokens_live ON refresh_tokens (user_id) WHERE NOT revoked;
    CREATE SCHEMA audit;
    CREATE FUNCTION audit.stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.note := coalesce(NEW.note, 'stamped'); RETURN NEW; END $$;
    CREATE TABLE audit.logs (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, user_id uuid REFERENCES users (id), action text NOT NULL CHECK (action <> ''),
      note text, created_at timestamptz NOT NULL DEFAULT now());
    CREATE INDEX logs_action_created ON audit.logs (action, created_at);
    CREATE TRIGGER logs_stamp BEFORE INSERT ON audit.logs FOR EACH ROW EXECUTE FUNCTION audit.stamp();
    CREATE SCHEMA "Mixed Case";
    CREATE TABLE "Mixed Case"."T" (id int PRIMARY KEY);
    INSERT INTO users (email, active) SELECT 'u' || g || '@example.com', g % 3 <> 0 FROM generate_series(1, 300) g;
    INSERT INTO refresh_tokens (user_id, revoked) SELECT id, random() < 0.5 FROM users;
    INSERT INTO audit.logs (user_id, action) SELECT id, 'login' FROM users;
    INSERT INTO "Mixed Case"."T" SELECT generate_series(1, 7);
  `, [], 'auth');
  backup = await runBackup(h().deps);
});

/** Indexes, constraints and triggers of a table, by name and definition. */
async function shape(db: string, table: string): Promise<{ indexes: string[]; constraints: string[]; triggers: string[] }> {
  const q = async (sql: string) => (await cluster.query<{ d: string }>(sql, [table], db)).rows.map((r) => r.d).sort();
  return {
    indexes: await q(`SELECT pg_get_indexdef(indexrelid) AS d FROM pg_index WHERE indrelid = $1::regclass`),
    constraints: await q(`SELECT conname || ' ' || pg_get_constraintdef(oid) AS d FROM pg_constraint WHERE conrelid = $1::regclass`),
    triggers: await q(`SELECT pg_get_triggerdef(oid) AS d FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal`),
  };
}

describe('restore --table', () => {
  it('restores public.users with its indexes, constraints and trigger; the foreign keys of tables not restored are skipped and said', async () => {
    const x = h();
    const r = await runRestore(x.deps, backup.id, { targetDb: 'users_only', create: true, tables: ['public.users'] });
    expect(r.tables).toBe(1);
    expect(await rowCounts(cluster, 'users_only')).toEqual({ 'public.users': 300 });
    const restored = await shape('users_only', 'public.users');
    expect(restored).toEqual(await shape('auth', 'public.users'));
    expect(restored.indexes).toHaveLength(3);
    expect(restored.constraints.join('\n')).toMatch(/users_email_shape CHECK/);
    // The trigger works, so its function came along.
    await cluster.query(`UPDATE users SET active = false WHERE email = 'u1@example.com'`, [], 'users_only');
    expect((await cluster.query(`SELECT count(*)::int AS n FROM users WHERE updated_at IS NOT NULL`, [], 'users_only')).rows[0]?.n).toBe(1);
    expect(x.logs.join('')).toMatch(/not restored: FK CONSTRAINT public refresh_tokens refresh_tokens_user_id_fkey: needs TABLE public refresh_tokens/);
    expect(x.alerter.sent).toEqual([]);
    expect(readdirSync(staging)).toEqual([]);
  });

  it('a bare name works the same way', async () => {
    const r = await runRestore(h().deps, backup.id, { targetDb: 'users_bare', create: true, tables: ['users'] });
    expect(r.tables).toBe(1);
    expect(await shape('users_bare', 'public.users')).toEqual(await shape('auth', 'public.users'));
  });

  it('restores a table of another schema with its schema, identity, check, index and trigger; its foreign key to a table not restored is left out', async () => {
    const r = await runRestore(h().deps, backup.id, { targetDb: 'logs_only', create: true, tables: ['audit.logs'] });
    expect(r.tables).toBe(1);
    expect(await rowCounts(cluster, 'logs_only')).toEqual({ 'audit.logs': 300 });
    const source = await shape('auth', 'audit.logs');
    const restored = await shape('logs_only', 'audit.logs');
    expect(restored.indexes).toEqual(source.indexes);
    expect(restored.triggers).toEqual(source.triggers);
    expect(restored.constraints).toEqual(source.constraints.filter((c) => !c.includes('FOREIGN KEY')));
    // The identity continues after the restored rows, and the trigger runs.
    const next = await cluster.query<{ id: string; note: string }>(`INSERT INTO audit.logs (action) VALUES ('x') RETURNING id, note`, [], 'logs_only');
    expect(next.rows[0]).toEqual({ id: '301', note: 'stamped' });
  });

  it('keeps the foreign key when both tables are restored, and takes quoted names', async () => {
    const r = await runRestore(h().deps, backup.id, { targetDb: 'users_tokens', create: true, tables: ['users', 'public.refresh_tokens', '"Mixed Case"."T"'] });
    expect(r.tables).toBe(3);
    expect(await rowCounts(cluster, 'users_tokens')).toEqual({ '"Mixed Case"."T"': 7, 'public.refresh_tokens': 300, 'public.users': 300 });
    expect(await shape('users_tokens', 'public.refresh_tokens')).toEqual(await shape('auth', 'public.refresh_tokens'));
    const seq = await cluster.query<{ id: string }>(`INSERT INTO refresh_tokens (user_id) SELECT id FROM users LIMIT 1 RETURNING id`, [], 'users_tokens');
    expect(seq.rows[0]?.id).toBe('301');
  });

  it('refuses names not in the backup before touching the target: exit 2, named with close matches, nothing created', async () => {
    const x = h();
    const err = await runRestore(x.deps, backup.id, { targetDb: 'never_made', create: true, tables: ['user', 'users', 'nope'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect(exitCodeOf(err)).toBe(2);
    expect((err as Error).message).toMatch(/--table user: no such table in backup \S+ \(close matches: public\.users\)/);
    expect((err as Error).message).toMatch(/--table nope: no such table/);
    expect(await databaseExists(cluster, 'never_made')).toBe(false);
    expect(x.alerter.sent).toEqual([]);
    expect(readdirSync(staging)).toEqual([]);
  });

  it('the dry run lists exactly the entries the restore then creates', async () => {
    const dry = await runRestore(h().deps, backup.id, { targetDb: 'logs_planned', create: true, tables: ['audit.logs'], dryRun: true });
    expect(await databaseExists(cluster, 'logs_planned')).toBe(false);
    expect(dry.plan?.tables).toEqual(['audit.logs']);
    expect(dry.plan?.restored).toEqual([
      'SCHEMA audit', 'FUNCTION audit stamp()', 'TABLE audit logs', 'SEQUENCE audit logs_id_seq', 'TABLE DATA audit logs',
      'SEQUENCE SET audit logs_id_seq', 'CONSTRAINT audit logs logs_pkey', 'INDEX audit logs_action_created', 'TRIGGER audit logs logs_stamp',
    ]);
    expect(dry.plan?.skipped).toEqual(['FK CONSTRAINT audit logs logs_user_id_fkey: needs TABLE public users, CONSTRAINT public users users_pkey, which is not restored']);
    expect(dry.plan?.entries).toMatchObject({ INDEX: 1, CONSTRAINT: 1, TRIGGER: 1, 'TABLE DATA': 1 });
    expect(dry.plan?.steps.join('\n')).toMatch(/skip FK CONSTRAINT audit logs logs_user_id_fkey/);
  });

  it('with --clean into an existing database, restores a referenced table and re-makes the foreign keys pointing at it', async () => {
    await runRestore(h().deps, backup.id, { targetDb: 'auth_copy', create: true });
    await cluster.query(`DELETE FROM audit.logs WHERE user_id IN (SELECT id FROM users WHERE email LIKE 'u1%'); DELETE FROM users WHERE email LIKE 'u1%'; UPDATE users SET email = 'changed@example.com' WHERE email = 'u2@example.com'`, [], 'auth_copy');
    const tokensBefore = (await rowCounts(cluster, 'auth_copy'))['public.refresh_tokens'];
    const r = await runRestore(h().deps, backup.id, { targetDb: 'auth_copy', clean: true, tables: ['public.users'] });
    expect(r.tables).toBe(1);
    const counts = await rowCounts(cluster, 'auth_copy');
    expect(counts['public.users']).toBe(300);
    expect(counts['public.refresh_tokens']).toBe(tokensBefore);
    expect(await shape('auth_copy', 'public.users')).toEqual(await shape('auth', 'public.users'));
    expect(await shape('auth_copy', 'public.refresh_tokens')).toEqual(await shape('auth', 'public.refresh_tokens'));
    expect(await shape('auth_copy', 'audit.logs')).toEqual(await shape('auth', 'audit.logs'));
  });
});
