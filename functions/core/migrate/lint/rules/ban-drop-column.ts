// Dropping a column loses its data and breaks running code that still reads it.
import { commandsOf } from '../ast.ts';
import type { Rule } from '../types.ts';

export const banDropColumn: Rule = {
  id: 'ban-drop-column',
  severity: 'error',
  why: 'Dropping a column loses its data for good and breaks the running application if it still reads or writes the column (SELECT * included).',
  safe: 'First release code that no longer uses the column; then drop it in its own migration, with `-- pgops:lint-ignore ban-drop-column` above the statement as the record that this was checked.',
  exemptNewRelation: true,
  check(stmt, ctx) {
    return commandsOf(stmt, 'AT_DropColumn').map(({ table, cmd }) => ({
      relation: table,
      message: `DROP COLUMN ${cmd.name ?? ''} removes the column and its data from ${ctx.describe(table)}`,
    }));
  },
};
