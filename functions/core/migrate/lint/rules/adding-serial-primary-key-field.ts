// ADD PRIMARY KEY builds its index (and checks NOT NULL) under an ACCESS EXCLUSIVE lock.
import { addedColumns, addedConstraints, hasConstraint } from '../ast.ts';
import type { Rule, Violation } from '../types.ts';

export const addingSerialPrimaryKeyField: Rule = {
  id: 'adding-serial-primary-key-field',
  severity: 'error',
  why: 'Adding a PRIMARY KEY builds its unique index while holding an ACCESS EXCLUSIVE lock (reads and writes wait); a new serial primary key column also rewrites the table.',
  safe: 'CREATE UNIQUE INDEX CONCURRENTLY in a `-- pgops:no-transaction` migration (on NOT NULL columns), then ALTER TABLE ... ADD CONSTRAINT pk PRIMARY KEY USING INDEX idx in a later one.',
  exemptNewRelation: true,
  check(stmt, ctx) {
    const out: Violation[] = [];
    for (const { table, constraint } of addedConstraints(stmt)) {
      if (constraint.contype !== 'CONSTR_PRIMARY' || constraint.indexname) continue;
      out.push({ relation: table, message: `ADD PRIMARY KEY builds an index on ${ctx.describe(table)} under an ACCESS EXCLUSIVE lock: reads and writes wait until it is built` });
    }
    for (const { table, column } of addedColumns(stmt)) {
      if (!hasConstraint(column, 'CONSTR_PRIMARY')) continue;
      out.push({ relation: table, message: `ADD COLUMN ${column.colname ?? ''} PRIMARY KEY builds an index on ${ctx.describe(table)} under an ACCESS EXCLUSIVE lock: reads and writes wait until it is built` });
    }
    return out;
  },
};
