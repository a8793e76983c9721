// Dropping a table loses its data and breaks running code that still uses it.
import type { DropStmt } from 'libpg-query';
import { as, droppedRelations } from '../ast.ts';
import type { Rule } from '../types.ts';

export const banDropTable: Rule = {
  id: 'ban-drop-table',
  severity: 'error',
  why: 'Dropping a table loses its data for good and breaks the running application if it still uses the table.',
  safe: 'First release code that no longer uses the table (rename it aside for a while if in doubt); then drop it in its own migration, with `-- pgops:lint-ignore ban-drop-table` above the statement.',
  exemptNewRelation: true,
  check(stmt, ctx) {
    const drop = as<DropStmt>(stmt.node, 'DropStmt');
    if (!drop || drop.removeType !== 'OBJECT_TABLE') return [];
    return droppedRelations(drop).map((table) => ({ relation: table, message: `DROP TABLE ${ctx.describe(table)} removes the table and its data` }));
  },
};
