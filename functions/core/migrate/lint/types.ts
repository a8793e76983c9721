// The shapes of the migration linter: what a rule sees (a parsed statement and its migration's
// state), what it answers (a violation), and what the linter reports (findings).
import type { Node } from 'libpg-query';

export type Severity = 'error' | 'warning';

/** `migrate.lint`: refuse on an error finding, report and go on, or skip the lint. */
export type LintMode = 'error' | 'warn' | 'off';

export type RuleId =
  | 'require-concurrent-index-creation'
  | 'require-concurrent-index-deletion'
  | 'constraint-missing-not-valid'
  | 'adding-required-field'
  | 'adding-not-nullable-field'
  | 'adding-field-with-default'
  | 'changing-column-type'
  | 'renaming-column'
  | 'renaming-table'
  | 'ban-drop-column'
  | 'ban-drop-table'
  | 'ban-drop-database'
  | 'disallowed-unique-constraint'
  | 'adding-serial-primary-key-field'
  | 'ban-concurrent-index-creation-in-transaction'
  | 'transaction-nesting'
  | 'prefer-bigint-over-int'
  | 'prefer-timestamptz'
  | 'prefer-text-field'
  | 'ban-char-field'
  | 'identifier-too-long'
  | 'ban-truncate-cascade'
  | 'syntax-error'
  | 'not-linted';

/** A table or index as a statement names it (identifiers as PostgreSQL folds them). */
export interface RelationRef {
  schema?: string;
  name: string;
}

/** What pgops knows of a relation in the connected database. */
export interface RelationFacts {
  /** The table's name as PostgreSQL prints it (for an index: the table it indexes). */
  table: string;
  /** pg_class.relkind of the table: `r` a table, `p` a partitioned table, `m` a materialized view. */
  kind: string;
  bytes: number;
  /** pg_class.reltuples; null when the table was never vacuumed or analyzed. */
  rows: number | null;
  /** Column name to its type as format_type prints it (`character varying(50)`). */
  columns: Record<string, string>;
  /** Columns covered by a validated CHECK (col IS NOT NULL): SET NOT NULL then skips its scan. */
  notNullChecked: string[];
}

/** The connected database, read before the rules run (rules stay synchronous and pure). */
export interface DatabaseFacts {
  /** Facts of a table, or of the table an index belongs to; undefined when it does not exist (yet). */
  relation(ref: RelationRef): RelationFacts | undefined;
  /** True or false when the database knows the function; undefined when it does not. */
  isVolatile(functionName: string): boolean | undefined;
}

/** One parsed statement of a migration. */
export interface Statement {
  node: Node;
  /** 1-based line of the statement's first token in the migration file (a .js file: its `up`). */
  line: number;
  /** The statement's SQL, trimmed. */
  sql: string;
}

/** What a rule may know beyond the statement: the migration it is in and the database. */
export interface RuleContext {
  /** `.sql` or `.js`: the safe form is spelled differently. */
  fileKind: 'sql' | 'js';
  /** The migration runs in pgops' transaction (no `-- pgops:no-transaction`, no `pgm.noTransaction()`). */
  transactional: boolean;
  /** An explicit BEGIN earlier in the migration that is still open, by its line. */
  openTransactionLine?: number;
  /** A CHECK constraint added NOT VALID earlier in this migration, by constraint name. */
  addedNotValid(constraint: string): RelationRef | undefined;
  /** `column` of `table` is covered by a CHECK (column IS NOT NULL) validated before this statement. */
  notNullChecked(table: RelationRef, column: string): boolean;
  /**
   * `orders (38.0 GiB, 210M rows)` with a database, `orders` without. For an index: the table it
   * belongs to when the database knows it, else `its table`.
   */
  describe(ref: RelationRef, kind?: 'table' | 'index'): string;
  db?: DatabaseFacts;
}

/** A rule's answer for one statement. */
export interface Violation {
  message: string;
  /** The relation it locks, rewrites or removes: named in the finding, and exempt when it is new. */
  relation?: RelationRef;
  /** What `relation` names (default: a table). */
  relationKind?: 'table' | 'index';
  /** A more specific safe form than the rule's. */
  safe?: string;
}

export interface Rule {
  id: RuleId;
  severity: Severity;
  /** Why the rule exists, in one sentence (the README's table). */
  why: string;
  /** The safe way to write it. */
  safe: string;
  /** Exempt when the relation it names was created earlier in the same migration (an empty, unseen table). */
  exemptNewRelation: boolean;
  check(stmt: Statement, ctx: RuleContext): Violation[];
  /** After the last statement of a migration (a transaction left open). */
  end?(ctx: RuleContext): Violation[];
}

export interface LintFinding {
  file: string;
  line: number;
  rule: RuleId;
  severity: Severity;
  message: string;
  /** The safe way to write it. */
  safe: string;
  /** The table it locks, rewrites or removes. */
  table?: string;
  /** Its size when a database was connected. */
  tableSize?: { bytes: number; rows: number | null };
  /** The statement (cut short), so a finding in a .js migration names the SQL it generates. */
  statement?: string;
}

export interface LintReport {
  /** How many migration files were linted. */
  files: number;
  findings: LintFinding[];
}
