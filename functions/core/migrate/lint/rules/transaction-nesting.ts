// BEGIN and COMMIT inside a migration fight the transaction pgops runs it in, or leave one open.
import type { TransactionStmt } from 'libpg-query';
import { as } from '../ast.ts';
import type { Rule, RuleContext, Violation } from '../types.ts';

const OPENS = new Set(['TRANS_STMT_BEGIN', 'TRANS_STMT_START']);
const CLOSES = new Set(['TRANS_STMT_COMMIT', 'TRANS_STMT_ROLLBACK', 'TRANS_STMT_PREPARE', 'TRANS_STMT_COMMIT_PREPARED', 'TRANS_STMT_ROLLBACK_PREPARED']);

export const transactionNesting: Rule = {
  id: 'transaction-nesting',
  severity: 'error',
  why: 'pgops runs each migration in its own transaction: a BEGIN inside it is ignored with a warning and a COMMIT ends pgops\' transaction early, so a later failure leaves the migration half applied; a transaction left open is never committed.',
  safe: 'Leave out BEGIN and COMMIT: the migration already is one transaction. A migration marked `-- pgops:no-transaction` may group statements in BEGIN ... COMMIT, and must close every transaction it opens.',
  exemptNewRelation: false,
  check(stmt, ctx) {
    const kind = as<TransactionStmt>(stmt.node, 'TransactionStmt')?.kind;
    if (!kind) return [];
    if (OPENS.has(kind)) return opening(ctx);
    if (CLOSES.has(kind)) return closing(ctx);
    return [];
  },
  end(ctx) {
    if (ctx.openTransactionLine === undefined || ctx.transactional) return [];
    return [{ message: `the transaction opened by BEGIN on line ${ctx.openTransactionLine} is never committed: its statements would be rolled back when the session ends` }];
  },
};

function opening(ctx: RuleContext): Violation[] {
  if (ctx.openTransactionLine !== undefined) return [{ message: `BEGIN inside the transaction already opened on line ${ctx.openTransactionLine}: PostgreSQL ignores it with a warning` }];
  if (ctx.transactional) return [{ message: 'BEGIN inside the transaction pgops runs this migration in: ignored with a warning, and the matching COMMIT would end pgops\' transaction early' }];
  return [];
}

function closing(ctx: RuleContext): Violation[] {
  if (ctx.openTransactionLine !== undefined) return [];
  if (ctx.transactional) return [{ message: 'COMMIT or ROLLBACK ends the transaction pgops runs this migration in: the statements after it run outside it, and a failure leaves the migration half applied' }];
  return [{ message: 'COMMIT or ROLLBACK without a BEGIN: there is no transaction to end' }];
}
