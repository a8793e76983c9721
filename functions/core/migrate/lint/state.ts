// What one migration has done so far, statement by statement: the tables and indexes it created
// (exempt from the lock rules), the transaction it opened, and the constraints it added NOT VALID
// or validated. The linter applies each statement after the rules have seen it.
import type { Constraint, CreateStmt, CreateTableAsStmt, IndexStmt, Node, NullTest, RenameStmt, TransactionStmt } from 'libpg-query';
import { addedConstraints, as, commandsOf, kindOf, relationKey, relationOf, stringsOf } from './ast.ts';
import type { RelationRef, Statement } from './types.ts';

export class MigrationState {
  /** Tables created in this migration, by relationKey. */
  private readonly tables = new Set<string>();
  /** Indexes created in this migration, by relationKey. */
  private readonly indexes = new Set<string>();
  private readonly notValid = new Map<string, { table: RelationRef; notNullColumn?: string }>();
  private readonly notNullValidated = new Set<string>();
  openTransactionLine: number | undefined;

  /** `exists`: the connected database already has this table (without a database: never known). */
  constructor(private readonly exists: (ref: RelationRef) => boolean = () => false) {}

  isNew(ref: RelationRef, kind: 'table' | 'index' = 'table'): boolean {
    if (kind === 'table') return this.tables.has(relationKey(ref));
    return this.indexes.has(relationKey(ref));
  }

  addedNotValid(constraint: string): RelationRef | undefined {
    return this.notValid.get(constraint)?.table;
  }

  notNullChecked(table: RelationRef, column: string): boolean {
    return this.notNullValidated.has(`${relationKey(table)}.${column}`);
  }

  apply(stmt: Statement): void {
    switch (kindOf(stmt.node)) {
      case 'CreateStmt': {
        const create = as<CreateStmt>(stmt.node, 'CreateStmt')!;
        const table = relationOf(create.relation);
        return create.if_not_exists && table && this.exists(table) ? undefined : this.created(table);
      }
      case 'CreateTableAsStmt': return this.created(relationOf(as<CreateTableAsStmt>(stmt.node, 'CreateTableAsStmt')?.into?.rel));
      case 'IndexStmt': return this.indexCreated(as<IndexStmt>(stmt.node, 'IndexStmt')!);
      case 'RenameStmt': return this.renamed(as<RenameStmt>(stmt.node, 'RenameStmt')!);
      case 'TransactionStmt': return this.transaction(as<TransactionStmt>(stmt.node, 'TransactionStmt')!, stmt.line);
      case 'AlterTableStmt': return this.constraints(stmt);
      default: return undefined;
    }
  }

  private created(ref: RelationRef | undefined): void {
    if (ref) this.tables.add(relationKey(ref));
  }

  private indexCreated(index: IndexStmt): void {
    const table = relationOf(index.relation);
    if (!table || !index.idxname) return;
    // An index lives in its table's schema.
    this.indexes.add(relationKey({ schema: table.schema, name: index.idxname }));
  }

  private renamed(rename: RenameStmt): void {
    const table = relationOf(rename.relation);
    if (rename.renameType === 'OBJECT_TABLE' && table && rename.newname && this.isNew(table)) {
      this.tables.add(relationKey({ schema: table.schema, name: rename.newname }));
    }
  }

  private transaction(tx: TransactionStmt, line: number): void {
    if (tx.kind === 'TRANS_STMT_BEGIN' || tx.kind === 'TRANS_STMT_START') this.openTransactionLine ??= line;
    else if (tx.kind === 'TRANS_STMT_COMMIT' || tx.kind === 'TRANS_STMT_ROLLBACK' || tx.kind === 'TRANS_STMT_PREPARE') this.openTransactionLine = undefined;
  }

  private constraints(stmt: Statement): void {
    for (const { table, constraint } of addedConstraints(stmt)) this.constraintAdded(table, constraint);
    for (const { cmd } of commandsOf(stmt, 'AT_ValidateConstraint')) {
      const added = cmd.name ? this.notValid.get(cmd.name) : undefined;
      if (added?.notNullColumn) this.notNullValidated.add(`${relationKey(added.table)}.${added.notNullColumn}`);
    }
  }

  private constraintAdded(table: RelationRef, constraint: Constraint): void {
    if (constraint.contype !== 'CONSTR_CHECK' && constraint.contype !== 'CONSTR_FOREIGN') return;
    const notNullColumn = constraint.contype === 'CONSTR_CHECK' ? notNullColumnOf(constraint.raw_expr) : undefined;
    if (constraint.skip_validation) {
      if (constraint.conname) this.notValid.set(constraint.conname, { table, notNullColumn });
    } else if (notNullColumn) {
      this.notNullValidated.add(`${relationKey(table)}.${notNullColumn}`);
    }
  }
}

/** `col IS NOT NULL` -> col. */
function notNullColumnOf(expr: Node | undefined): string | undefined {
  const test = as<NullTest>(expr, 'NullTest');
  if (test?.nulltesttype !== 'IS_NOT_NULL') return undefined;
  const fields = stringsOf(as<{ fields?: Node[] }>(test.arg, 'ColumnRef')?.fields);
  return fields.length === 1 ? fields[0] : undefined;
}
