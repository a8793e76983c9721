// A .js migration whose SQL cannot be known without running it against the database.
import type { Rule } from '../types.ts';

export const notLinted: Rule = {
  id: 'not-linted',
  severity: 'warning',
  why: 'A .js migration that queries the database (pgm.db) while building its SQL cannot be rendered without running it, so pgops cannot check what it will do.',
  safe: 'Build the SQL without querying the database, or move the data-dependent step into SQL (a DO block or a function).',
  exemptNewRelation: false,
  // Reported by the linter when rendering the migration needs the database.
  check: () => [],
};
