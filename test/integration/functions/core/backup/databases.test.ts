// "Is the target empty": every kind of user object pg_dump would dump makes a database non-empty,
// so a restore is refused up front instead of failing half-way on a name clash.
import { beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../../../../functions/core/backup/backup.ts';
import { isDatabaseEmpty, userObjectsIn } from '../../../../../functions/core/backup/databases.ts';
import { RestoreRefusedError } from '../../../../../functions/core/backup/errors.ts';
import { runRestore } from '../../../../../functions/core/backup/restore.ts';
import { DEFAULT_SESSION } from '../../../../../functions/core/db.ts';
import { exitCodeOf } from '../../../../../functions/core/errors.ts';
import { useTestCluster } from '../../../../helpers/postgres.ts';
import { freshStorage, harness, seed } from '../../../../helpers/backup-fixtures.ts';

const cluster = useTestCluster();
const { storage } = freshStorage();

const KINDS: Array<{ kind: string; sql: string }> = [
  { kind: 'relations', sql: 'CREATE TABLE t (id int)' },
  { kind: 'relations', sql: 'CREATE VIEW v AS SELECT 1 AS one' },
  { kind: 'sequences', sql: 'CREATE SEQUENCE s' },
  { kind: 'functions', sql: 'CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$' },
  { kind: 'functions', sql: 'CREATE PROCEDURE p() LANGUAGE sql AS $$ SELECT 1 $$' },
  { kind: 'types', sql: "CREATE TYPE mood AS ENUM ('ok', 'meh')" },
  { kind: 'types', sql: 'CREATE TYPE pair AS (a int, b int)' },
  { kind: 'domains', sql: 'CREATE DOMAIN positive AS int CHECK (VALUE > 0)' },
  { kind: 'schemas', sql: 'CREATE SCHEMA app' },
  { kind: 'extensions', sql: 'CREATE EXTENSION pgcrypto' },
];

describe('isDatabaseEmpty / userObjectsIn', () => {
  beforeAll(async () => {
    await cluster.createDatabase('fresh');
  });

  it('a new database (public schema, plpgsql) is empty', async () => {
    expect(await userObjectsIn(cluster.target(), DEFAULT_SESSION, 'fresh')).toEqual({});
    expect(await isDatabaseEmpty(cluster.target(), DEFAULT_SESSION, 'fresh')).toBe(true);
  });

  for (const [i, { kind, sql }] of KINDS.entries()) {
    it(`${sql.split(' ').slice(0, 3).join(' ')} makes it non-empty (${kind})`, async () => {
      const db = await cluster.createDatabase(`kind_${i}`);
      await cluster.query(sql, [], db);
      const objects = await userObjectsIn(cluster.target(), DEFAULT_SESSION, db);
      expect(objects).toEqual({ [kind]: 1 });
      expect(await isDatabaseEmpty(cluster.target(), DEFAULT_SESSION, db)).toBe(false);
    });
  }

  it('objects of an extension count as the extension only', async () => {
    const db = await cluster.createDatabase('ext_only');
    await cluster.query('CREATE EXTENSION pgcrypto', [], db);
    expect(await userObjectsIn(cluster.target(), DEFAULT_SESSION, db)).toEqual({ extensions: 1 });
  });
});

describe('restore into a target holding only a function', () => {
  it('is refused before pg_restore runs, naming what is there', async () => {
    await cluster.createDatabase('shop');
    await seed(cluster, 'shop');
    const x = harness(cluster, storage, 'shop');
    const backup = await runBackup(x.deps);
    const db = await cluster.createDatabase('has_function');
    await cluster.query('CREATE FUNCTION cleanup_expired_data() RETURNS void LANGUAGE sql AS $$ SELECT $$', [], db);
    const err = await runRestore(x.deps, backup.id, { targetDb: db }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RestoreRefusedError);
    expect(exitCodeOf(err)).toBe(1);
    expect((err as Error).message).toMatch(/database "has_function" is not empty: add --clean .*\(it holds 1 functions\)/);
    expect((await cluster.query(`SELECT count(*)::int AS n FROM pg_class WHERE relnamespace = 'public'::regnamespace`, [], db)).rows[0]?.n).toBe(0);
  });
});
