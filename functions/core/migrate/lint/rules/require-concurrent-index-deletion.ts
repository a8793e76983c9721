// DROP INDEX without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on the index's table.
import type { DropStmt } from 'libpg-query';
import { as, droppedRelations, relationName } from '../ast.ts';
import type { Rule } from '../types.ts';

export const requireConcurrentIndexDeletion: Rule = {
  id: 'require-concurrent-index-deletion',
  severity: 'error',
  why: 'DROP INDEX takes an ACCESS EXCLUSIVE lock on the table: it waits behind every running query, and every query that arrives meanwhile waits behind it.',
  safe: 'DROP INDEX CONCURRENTLY in a migration marked `-- pgops:no-transaction` (in a .js migration: `pgm.noTransaction()` and `pgm.dropIndex(table, columns, { concurrently: true })`).',
  exemptNewRelation: true,
  check(stmt, ctx) {
    const drop = as<DropStmt>(stmt.node, 'DropStmt');
    if (!drop || drop.removeType !== 'OBJECT_INDEX' || drop.concurrent) return [];
    return droppedRelations(drop).map((index) => ({
      relation: index,
      relationKind: 'index' as const,
      message: `DROP INDEX ${relationName(index)} without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on ${ctx.describe(index, 'index')}: reads and writes queue behind it`,
    }));
  },
};

