// A column whose value must be computed per row (volatile default, sequence, generated) rewrites the table.
import type { ColumnDef } from 'libpg-query';
import { addedColumns, columnConstraints, typeNameOf } from '../ast.ts';
import type { Rule, RuleContext } from '../types.ts';
import { volatilityOf } from '../volatility.ts';

const SERIAL = new Set(['serial', 'serial2', 'serial4', 'serial8', 'smallserial', 'bigserial']);

export const addingFieldWithDefault: Rule = {
  id: 'adding-field-with-default',
  severity: 'error',
  why: 'A column whose value is computed for every existing row (a volatile DEFAULT such as gen_random_uuid() or clock_timestamp(), a serial or identity column, a STORED generated column) rewrites the whole table under an ACCESS EXCLUSIVE lock. A constant or STABLE default (now()) does not.',
  safe: 'Add the column without the default (or with a constant one), set the default for new rows with ALTER COLUMN ... SET DEFAULT, and backfill existing rows in batches.',
  exemptNewRelation: true,
  check(stmt, ctx) {
    return addedColumns(stmt).flatMap(({ table, column }) => {
      const why = rewriteReason(column, ctx);
      if (!why) return [];
      return [{ relation: table, message: `ADD COLUMN ${column.colname ?? ''} ${why}: rewrites ${ctx.describe(table)} under an ACCESS EXCLUSIVE lock` }];
    });
  },
};

function rewriteReason(column: ColumnDef, ctx: RuleContext): string | undefined {
  const type = typeNameOf(column.typeName);
  if (type && SERIAL.has(type)) return `of type ${type} fills every row from a sequence`;
  for (const c of columnConstraints(column)) {
    if (c.contype === 'CONSTR_IDENTITY') return 'as an identity column fills every row from a sequence';
    if (c.contype === 'CONSTR_GENERATED') return 'as a STORED generated column computes every row';
    if (c.contype !== 'CONSTR_DEFAULT') continue;
    const v = volatilityOf(c.raw_expr, ctx.db);
    if (v.volatile === true) return `with a volatile DEFAULT (${v.functions.map((f) => `${f}()`).join(', ')}) computes every row`;
    if (v.volatile === 'unknown') {
      const unknown = ctx.db ? 'the database has no such function (yet)' : 'pgops cannot tell its volatility without a database';
      return `with a DEFAULT calling ${v.functions.map((f) => `${f}()`).join(', ')} (${unknown}) may compute every row`;
    }
  }
  return undefined;
}
