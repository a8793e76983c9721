// A statement PostgreSQL cannot parse: the migration fails, and nothing else in it can be checked.
import type { Rule } from '../types.ts';

export const syntaxError: Rule = {
  id: 'syntax-error',
  severity: 'error',
  why: 'PostgreSQL cannot parse the statement: the migration fails when it runs, and pgops cannot check the rest of its part.',
  safe: 'Fix the SQL: the message is PostgreSQL\'s own parser\'s, and the line is where it stopped.',
  exemptNewRelation: false,
  // Reported by the linter when a part does not parse.
  check: () => [],
};
