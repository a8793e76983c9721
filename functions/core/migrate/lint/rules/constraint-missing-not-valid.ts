// A CHECK or FOREIGN KEY constraint added to an existing table is validated by a full scan under lock.
import type { Rule, Violation } from '../types.ts';
import { addedConstraints, commandsOf, named, relationName } from '../ast.ts';

export const constraintMissingNotValid: Rule = {
  id: 'constraint-missing-not-valid',
  severity: 'error',
  why: 'Adding a CHECK or FOREIGN KEY constraint scans the whole table to validate it while holding a lock that blocks writes (ACCESS EXCLUSIVE for CHECK, SHARE ROW EXCLUSIVE on both tables for FOREIGN KEY).',
  safe: 'ALTER TABLE ... ADD CONSTRAINT ... NOT VALID, then ALTER TABLE ... VALIDATE CONSTRAINT ... in a later migration (validation then takes only a SHARE UPDATE EXCLUSIVE lock).',
  exemptNewRelation: true,
  check(stmt, ctx) {
    const out: Violation[] = [];
    for (const { table, constraint } of addedConstraints(stmt)) {
      if (constraint.contype !== 'CONSTR_CHECK' && constraint.contype !== 'CONSTR_FOREIGN') continue;
      if (constraint.skip_validation) continue;
      const kind = constraint.contype === 'CONSTR_CHECK' ? 'CHECK' : 'FOREIGN KEY';
      const lock = constraint.contype === 'CONSTR_CHECK' ? 'an ACCESS EXCLUSIVE lock (reads and writes wait)' : 'a SHARE ROW EXCLUSIVE lock on both tables (writes wait)';
      out.push({
        relation: table,
        message: `ADD ${kind} constraint${named(constraint.conname)} without NOT VALID scans ${ctx.describe(table)} to validate it under ${lock}`,
      });
    }
    // NOT VALID then VALIDATE in one transaction keeps the first lock through the scan: no gain.
    if (ctx.transactional) {
      for (const { table, cmd } of commandsOf(stmt, 'AT_ValidateConstraint')) {
        const added = cmd.name ? ctx.addedNotValid(cmd.name) : undefined;
        if (!added) continue;
        out.push({
          relation: table,
          message: `VALIDATE CONSTRAINT ${cmd.name} in the same transaction that added it NOT VALID keeps the ADD's lock on ${ctx.describe(table)} through the validating scan`,
          safe: `Validate ${cmd.name} in a later migration than the one that adds it NOT VALID (${relationName(added)}).`,
        });
      }
    }
    return out;
  },
};
