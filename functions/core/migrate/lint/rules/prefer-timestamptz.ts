// timestamp without time zone reads differently depending on the session's TimeZone.
import { declaredColumns, typeNameOf } from '../ast.ts';
import type { Rule } from '../types.ts';

export const preferTimestamptz: Rule = {
  id: 'prefer-timestamptz',
  severity: 'warning',
  why: 'timestamp (without time zone) stores a wall-clock reading with no zone: the same instant written by sessions in different zones compares wrong, and daylight-saving changes make it ambiguous.',
  safe: 'timestamptz (timestamp with time zone): an absolute instant, shown in the session\'s zone.',
  exemptNewRelation: false,
  check(stmt) {
    return declaredColumns(stmt).flatMap(({ table, column }) => (typeNameOf(column.typeName) === 'timestamp'
      ? [{ message: `column ${column.colname ?? ''} of ${table.name} is timestamp without time zone` }]
      : []));
  },
};
