// ADD COLUMN ... NOT NULL without a default fails on a table with rows (and locks it to find out).
import { addedColumns, columnConstraints, hasConstraint } from '../ast.ts';
import type { Rule } from '../types.ts';

export const addingRequiredField: Rule = {
  id: 'adding-required-field',
  severity: 'error',
  why: 'A NOT NULL column without a default cannot be added to a table that has rows: the migration fails, after queueing for an ACCESS EXCLUSIVE lock.',
  safe: 'Add the column nullable (or NOT NULL with a constant DEFAULT), backfill it in batches, then enforce NOT NULL with a CHECK (col IS NOT NULL) NOT VALID constraint validated in a later migration.',
  exemptNewRelation: true,
  check(stmt, ctx) {
    return addedColumns(stmt).flatMap(({ table, column }) => {
      const notNull = column.is_not_null === true || hasConstraint(column, 'CONSTR_NOTNULL');
      const filled = columnConstraints(column).some((c) => c.contype === 'CONSTR_DEFAULT' || c.contype === 'CONSTR_GENERATED' || c.contype === 'CONSTR_IDENTITY');
      if (!notNull || filled) return [];
      return [{ relation: table, message: `ADD COLUMN ${column.colname ?? ''} NOT NULL without a DEFAULT fails on ${ctx.describe(table)} as soon as it has a row` }];
    });
  },
};
