// TRUNCATE ... CASCADE empties every table that references the named ones, however far.
import type { TruncateStmt } from 'libpg-query';
import { as, relationName, relationOf } from '../ast.ts';
import type { Rule } from '../types.ts';

export const banTruncateCascade: Rule = {
  id: 'ban-truncate-cascade',
  severity: 'error',
  why: 'TRUNCATE ... CASCADE also empties every table with a foreign key to the named ones, and the tables referencing those, whatever they hold.',
  safe: 'TRUNCATE the tables you mean, each by name, without CASCADE: PostgreSQL then refuses if another table still references them.',
  exemptNewRelation: false,
  check(stmt) {
    const truncate = as<TruncateStmt>(stmt.node, 'TruncateStmt');
    if (truncate?.behavior !== 'DROP_CASCADE') return [];
    const names = (truncate.relations ?? []).flatMap((r) => { const ref = relationOf(as(r, 'RangeVar')); return ref ? [relationName(ref)] : []; });
    return [{ message: `TRUNCATE ${names.join(', ')} CASCADE also empties every table that references ${names.length > 1 ? 'them' : 'it'}` }];
  },
};
