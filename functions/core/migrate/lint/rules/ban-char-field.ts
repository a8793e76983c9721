// char(n) pads with spaces and compares surprisingly.
import { declaredColumns, typeDisplay, typeNameOf } from '../ast.ts';
import type { Rule } from '../types.ts';

export const banCharField: Rule = {
  id: 'ban-char-field',
  severity: 'warning',
  why: 'char(n) pads values with spaces, which vanish in some comparisons and not in others, and it is no faster than text.',
  safe: 'text (with a CHECK constraint on its length if the length is a rule).',
  exemptNewRelation: false,
  check(stmt) {
    return declaredColumns(stmt).flatMap(({ table, column }) => (typeNameOf(column.typeName) === 'bpchar'
      ? [{ message: `column ${column.colname ?? ''} of ${table.name} is ${typeDisplay(column.typeName).replace('bpchar', 'char')}` }]
      : []));
  },
};
