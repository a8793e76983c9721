// A migration never drops a database.
import type { Rule } from '../types.ts';
import { as } from '../ast.ts';

export const banDropDatabase: Rule = {
  id: 'ban-drop-database',
  severity: 'error',
  why: 'Dropping a database loses everything in it; it has no place in a schema migration.',
  safe: 'Drop databases by hand, after a backup, never from a migration.',
  exemptNewRelation: false,
  check(stmt) {
    const drop = as<{ dbname?: string }>(stmt.node, 'DropdbStmt');
    return drop ? [{ message: `DROP DATABASE ${drop.dbname ?? ''} removes a whole database` }] : [];
  },
};
