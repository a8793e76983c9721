// ALTER COLUMN ... TYPE rewrites the table (and rebuilds its indexes) unless the change is binary-coercible.
import type { ColumnDef } from 'libpg-query';
import { as, commandsOf, typeDisplay, typeNameOf } from '../ast.ts';
import type { Rule } from '../types.ts';

export const changingColumnType: Rule = {
  id: 'changing-column-type',
  severity: 'error',
  why: 'Changing a column\'s type rewrites the table and rebuilds its indexes under an ACCESS EXCLUSIVE lock (reads and writes wait), and running code may break on the new type.',
  safe: 'Add a column of the new type, write to both (trigger or application), backfill in batches, switch reads, then drop the old column in a later migration. Widening varchar(n) or varchar to text needs no rewrite: with a database connected pgops recognises it.',
  exemptNewRelation: true,
  check(stmt, ctx) {
    return commandsOf(stmt, 'AT_AlterColumnType').flatMap(({ table, cmd }) => {
      const column = cmd.name ?? '';
      const def = as<ColumnDef>(cmd.def, 'ColumnDef');
      const next = def?.typeName;
      const current = ctx.db?.relation(table)?.columns[column];
      // A USING expression computes every row: a rewrite whatever the types.
      if (current && !def?.raw_default && isWidening(current, typeNameOf(next), typeDisplay(next))) return [];
      return [{ relation: table, message: `ALTER COLUMN ${column} TYPE ${typeDisplay(next)}${current ? ` (from ${current})` : ''} rewrites ${ctx.describe(table)} and its indexes under an ACCESS EXCLUSIVE lock` }];
    });
  },
};

/** varchar(n) -> varchar(m >= n), varchar or text; text -> varchar: binary-coercible, no rewrite, no index rebuild. */
function isWidening(current: string, nextName: string | undefined, nextDisplay: string): boolean {
  const toLength = nextName === 'text' ? Infinity : nextName === 'varchar' ? lengthOf(nextDisplay) : undefined;
  if (toLength === undefined) return false;
  if (current === 'text') return toLength === Infinity;
  const from = /^character varying(?:\((\d+)\))?$/.exec(current);
  if (!from) return false;
  return toLength >= (from[1] === undefined ? Infinity : Number(from[1]));
}

function lengthOf(display: string): number {
  const m = /\((\d+)\)$/.exec(display);
  return m ? Number(m[1]) : Infinity;
}
