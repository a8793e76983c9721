// ADD CONSTRAINT ... UNIQUE builds its index under an ACCESS EXCLUSIVE lock.
import { addedColumns, addedConstraints, hasConstraint, named } from '../ast.ts';
import type { Rule, Violation } from '../types.ts';

export const disallowedUniqueConstraint: Rule = {
  id: 'disallowed-unique-constraint',
  severity: 'error',
  why: 'Adding a UNIQUE constraint builds its index while holding an ACCESS EXCLUSIVE lock: reads and writes wait for the whole build.',
  safe: 'CREATE UNIQUE INDEX CONCURRENTLY in a `-- pgops:no-transaction` migration, then ALTER TABLE ... ADD CONSTRAINT c UNIQUE USING INDEX idx in a later one.',
  exemptNewRelation: true,
  check(stmt, ctx) {
    const out: Violation[] = [];
    for (const { table, constraint } of addedConstraints(stmt)) {
      if (constraint.contype !== 'CONSTR_UNIQUE' || constraint.indexname) continue;
      out.push({ relation: table, message: `ADD CONSTRAINT${named(constraint.conname)} UNIQUE builds an index on ${ctx.describe(table)} under an ACCESS EXCLUSIVE lock: reads and writes wait until it is built` });
    }
    for (const { table, column } of addedColumns(stmt)) {
      if (!hasConstraint(column, 'CONSTR_UNIQUE')) continue;
      out.push({ relation: table, message: `ADD COLUMN ${column.colname ?? ''} UNIQUE builds an index on ${ctx.describe(table)} under an ACCESS EXCLUSIVE lock: reads and writes wait until it is built` });
    }
    return out;
  },
};
