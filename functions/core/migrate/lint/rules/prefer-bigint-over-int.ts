// A 32-bit (or 16-bit) key runs out; widening it later rewrites the table and every referencing one.
import { columnConstraints, declaredColumns, tablePrimaryKeyColumns, typeNameOf } from '../ast.ts';
import type { Rule } from '../types.ts';

const SMALL_SERIAL = new Set(['serial', 'serial4', 'serial2', 'smallserial']);
const SMALL_INT = new Set(['int4', 'int2']);

export const preferBigintOverInt: Rule = {
  id: 'prefer-bigint-over-int',
  severity: 'warning',
  why: 'A 32-bit key or sequence runs out at 2,147,483,647 (16-bit: 32,767), and changing its type later rewrites the table and every table that references it. Only keys and sequence-filled columns are flagged: a counter or a small enumeration is fine as integer.',
  safe: 'bigint (bigserial, or bigint GENERATED ALWAYS AS IDENTITY) for primary keys and sequence-filled columns.',
  exemptNewRelation: false,
  check(stmt) {
    const tableKeys = tablePrimaryKeyColumns(stmt);
    return declaredColumns(stmt).flatMap(({ table, column }) => {
      const type = typeNameOf(column.typeName);
      if (!type || !(SMALL_SERIAL.has(type) || SMALL_INT.has(type))) return [];
      const constraints = columnConstraints(column).map((c) => c.contype);
      const isKey = SMALL_SERIAL.has(type) || constraints.includes('CONSTR_PRIMARY') || constraints.includes('CONSTR_IDENTITY') || tableKeys.has(column.colname ?? '');
      if (!isKey) return [];
      return [{ message: `column ${column.colname ?? ''} of ${table.name} is a ${type === 'int2' || type === 'serial2' || type === 'smallserial' ? '16' : '32'}-bit ${SMALL_SERIAL.has(type) ? `${type} ` : ''}key: it runs out, and widening it later rewrites the table` }];
    });
  },
};
