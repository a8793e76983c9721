// CREATE INDEX without CONCURRENTLY blocks every write to the table for the whole build.
import type { IndexStmt } from 'libpg-query';
import { as, named, relationOf } from '../ast.ts';
import type { Rule } from '../types.ts';

const PARTITIONED_SAFE = 'On a partitioned table: CREATE INDEX ... ON ONLY the parent (instant, the index is invalid), then CREATE INDEX CONCURRENTLY on each partition in a `-- pgops:no-transaction` migration, and ALTER INDEX parent_idx ATTACH PARTITION partition_idx for each.';

export const requireConcurrentIndexCreation: Rule = {
  id: 'require-concurrent-index-creation',
  severity: 'error',
  why: 'CREATE INDEX holds a SHARE lock for the whole build: every INSERT, UPDATE and DELETE on the table waits until the index is built.',
  safe: 'CREATE INDEX CONCURRENTLY in a migration marked `-- pgops:no-transaction` (in a .js migration: `pgm.noTransaction()` and `pgm.createIndex(table, columns, { concurrently: true })`).',
  exemptNewRelation: true,
  check(stmt, ctx) {
    const index = as<IndexStmt>(stmt.node, 'IndexStmt');
    const table = relationOf(index?.relation);
    if (!index || !table || index.concurrent) return [];
    // A partitioned table cannot be indexed CONCURRENTLY; ON ONLY the parent builds nothing (it is how
    // the safe form starts, and without a database pgops takes ON ONLY to mean a partitioned table).
    const kind = ctx.db?.relation(table)?.kind;
    // The parse tree leaves false out: no inh is ON ONLY.
    const onlyTheParent = index.relation?.inh !== true;
    if (onlyTheParent && (kind === 'p' || kind === undefined)) return [];
    return [{
      ...(kind === 'p' ? { safe: PARTITIONED_SAFE } : {}),
      relation: table,
      message: `CREATE ${index.unique ? 'UNIQUE ' : ''}INDEX${named(index.idxname)} on ${ctx.describe(table)} without CONCURRENTLY blocks writes to the table under a SHARE lock until the index is built`,
    }];
  },
};
