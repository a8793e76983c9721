// One throwaway PostgreSQL cluster per test file: started in beforeAll, stopped and removed in
// afterAll whatever the tests did (and by an exit hook if the worker dies).
import { afterAll, beforeAll, inject } from 'vitest';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedPostgres, type StartOptions } from '../../bin/demo/embedded-postgres.ts';
import { parseDatabaseUrl, type DbTarget } from '../../functions/core/db.ts';

export interface TestCluster {
  readonly pg: EmbeddedPostgres;
  url(database?: string): string;
  target(database?: string): DbTarget;
  /** Run SQL as the superuser on a database (default postgres). */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[], database?: string): Promise<pg.QueryResult<R>>;
  /** A fresh empty database, for tests that must not see each other's tables. */
  createDatabase(name?: string): Promise<string>;
}

let counter = 0;

export function useTestCluster(options: StartOptions = {}): TestCluster {
  let cluster: EmbeddedPostgres | undefined;
  beforeAll(async () => {
    // A copy of the integration project's template (global-setup.ts), when there is one.
    cluster = await startEmbeddedPostgres({ template: inject('pgTemplate'), ...options });
  });
  afterAll(async () => {
    await cluster?.stop();
  });
  const get = (): EmbeddedPostgres => {
    if (!cluster) throw new Error('test cluster not started (use it inside tests or hooks)');
    return cluster;
  };
  const api: TestCluster = {
    get pg() { return get(); },
    url: (database = 'postgres') => get().url(database),
    target: (database = 'postgres') => parseDatabaseUrl(get().url(database)),
    async query(sql, params, database = 'postgres') {
      const client = new pg.Client({ connectionString: get().url(database) });
      await client.connect();
      try {
        return await client.query(sql, params);
      } finally {
        await client.end();
      }
    },
    async createDatabase(name) {
      const db = name ?? `t${process.pid}_${++counter}_${Date.now().toString(36)}`;
      await api.query(`CREATE DATABASE "${db}"`);
      return db;
    },
  };
  return api;
}
