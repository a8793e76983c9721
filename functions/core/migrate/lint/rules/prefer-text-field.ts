// varchar(n) buys nothing over text and changing n later is a migration of its own.
import { declaredColumns, typeDisplay, typeNameOf } from '../ast.ts';
import type { Rule } from '../types.ts';

export const preferTextField: Rule = {
  id: 'prefer-text-field',
  severity: 'warning',
  why: 'varchar(n) stores nothing more efficiently than text, and raising n later means an ALTER COLUMN TYPE under an ACCESS EXCLUSIVE lock (lowering it rewrites the table).',
  safe: 'text, with a CHECK (length(col) <= n) constraint when the limit matters (a CHECK can be replaced NOT VALID, without a lock on reads and writes).',
  exemptNewRelation: false,
  check(stmt) {
    return declaredColumns(stmt).flatMap(({ table, column }) => {
      if (typeNameOf(column.typeName) !== 'varchar' || (column.typeName?.typmods ?? []).length === 0) return [];
      return [{ message: `column ${column.colname ?? ''} of ${table.name} is ${typeDisplay(column.typeName)}` }];
    });
  },
};
