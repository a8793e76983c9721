// SET NOT NULL scans the whole table under ACCESS EXCLUSIVE, unless a validated CHECK proves it.
import { commandsOf } from '../ast.ts';
import type { Rule } from '../types.ts';

export const addingNotNullableField: Rule = {
  id: 'adding-not-nullable-field',
  severity: 'error',
  why: 'ALTER COLUMN ... SET NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock (reads and writes wait), unless a validated CHECK (col IS NOT NULL) constraint already proves it.',
  safe: 'ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID; VALIDATE CONSTRAINT c in a later migration; then SET NOT NULL (PostgreSQL uses the constraint and skips the scan) and drop the constraint.',
  exemptNewRelation: true,
  check(stmt, ctx) {
    return commandsOf(stmt, 'AT_SetNotNull').flatMap(({ table, cmd }) => {
      const column = cmd.name ?? '';
      if (ctx.notNullChecked(table, column)) return [];
      return [{ relation: table, message: `ALTER COLUMN ${column} SET NOT NULL scans ${ctx.describe(table)} under an ACCESS EXCLUSIVE lock: reads and writes wait until it is done` }];
    });
  },
};
