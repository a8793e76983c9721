// Renaming a column breaks every query of the running application that names it.
import type { RenameStmt } from 'libpg-query';
import { as, relationOf } from '../ast.ts';
import type { Rule } from '../types.ts';

export const renamingColumn: Rule = {
  id: 'renaming-column',
  severity: 'error',
  why: 'The application version still running during and after the deployment queries the old name and fails; the rename also waits for an ACCESS EXCLUSIVE lock.',
  safe: 'Expand and contract: add the new column, write to both, backfill, move reads to the new column, then drop the old one in a later release (or keep the old name).',
  exemptNewRelation: true,
  check(stmt, ctx) {
    const rename = as<RenameStmt>(stmt.node, 'RenameStmt');
    const table = relationOf(rename?.relation);
    if (!rename || !table || rename.renameType !== 'OBJECT_COLUMN' || rename.relationType !== 'OBJECT_TABLE') return [];
    return [{ relation: table, message: `RENAME COLUMN ${rename.subname ?? ''} TO ${rename.newname ?? ''} on ${ctx.describe(table)} breaks every running query that names ${rename.subname ?? 'it'}` }];
  },
};
