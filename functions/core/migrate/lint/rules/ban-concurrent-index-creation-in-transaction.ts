// CONCURRENTLY cannot run inside a transaction block: the migration would fail.
import type { DefElem, DropStmt, IndexStmt, Node, ReindexStmt } from 'libpg-query';
import { as } from '../ast.ts';
import type { Rule } from '../types.ts';

export const banConcurrentIndexCreationInTransaction: Rule = {
  id: 'ban-concurrent-index-creation-in-transaction',
  severity: 'error',
  why: 'PostgreSQL refuses CREATE INDEX CONCURRENTLY (and DROP or REINDEX ... CONCURRENTLY) inside a transaction block, and pgops runs a migration in one unless it is marked: the migration fails.',
  safe: 'Add the line `-- pgops:no-transaction` to the .sql file (pgops then runs its statements one at a time, outside a transaction); in a .js migration call `pgm.noTransaction()`. Keep such a migration to the concurrent statements alone.',
  exemptNewRelation: false,
  check(stmt, ctx) {
    const what = concurrentOperation(stmt.node);
    if (!what) return [];
    if (ctx.openTransactionLine !== undefined) {
      return [{ message: `${what} inside the transaction opened by BEGIN on line ${ctx.openTransactionLine}: PostgreSQL refuses it in a transaction block`, safe: 'Run the concurrent statement outside BEGIN ... COMMIT.' }];
    }
    if (!ctx.transactional) return [];
    const marker = ctx.fileKind === 'js' ? 'pgm.noTransaction()' : '-- pgops:no-transaction';
    return [{ message: `${what} in a migration that runs in a transaction (no ${marker}): PostgreSQL refuses it and the migration fails` }];
  },
};

function concurrentOperation(node: Node): string | undefined {
  if (as<IndexStmt>(node, 'IndexStmt')?.concurrent) return 'CREATE INDEX CONCURRENTLY';
  const drop = as<DropStmt>(node, 'DropStmt');
  if (drop?.concurrent) return 'DROP INDEX CONCURRENTLY';
  const reindex = as<ReindexStmt>(node, 'ReindexStmt');
  if ((reindex?.params ?? []).some((p) => as<DefElem>(p, 'DefElem')?.defname === 'concurrently')) return 'REINDEX CONCURRENTLY';
  return undefined;
}
