// Renaming a table breaks every query of the running application that names it.
import type { RenameStmt } from 'libpg-query';
import { as, relationOf } from '../ast.ts';
import type { Rule } from '../types.ts';

export const renamingTable: Rule = {
  id: 'renaming-table',
  severity: 'error',
  why: 'The application version still running during and after the deployment queries the old name and fails; the rename also waits for an ACCESS EXCLUSIVE lock.',
  safe: 'Rename the table and, in the same migration, CREATE VIEW old_name AS SELECT * FROM new_name (a simple view stays writable), with `-- pgops:lint-ignore renaming-table` above the rename; drop the view once no code uses the old name.',
  exemptNewRelation: true,
  check(stmt, ctx) {
    const rename = as<RenameStmt>(stmt.node, 'RenameStmt');
    const table = relationOf(rename?.relation);
    if (!rename || !table || rename.renameType !== 'OBJECT_TABLE') return [];
    return [{ relation: table, message: `RENAME ${ctx.describe(table)} TO ${rename.newname ?? ''} breaks every running query that names ${table.name}` }];
  },
};
