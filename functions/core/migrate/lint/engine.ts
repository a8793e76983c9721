// Runs the rules over one migration's Up statements in order, carrying the migration's state from
// statement to statement, drops what the migration exempts or ignores, and names each finding's table.
import { relationName } from './ast.ts';
import { describeRelation } from './database.ts';
import { destructiveChangesOf, type DestructiveChange } from './destructive.ts';
import { statementIgnores } from './ignore.ts';
import type { ParseOutcome } from './parser.ts';
import { RULES, ruleById } from './rules/index.ts';
import type { LintSource, SqlPart } from './sources.ts';
import { MigrationState } from './state.ts';
import type { DatabaseFacts, LintFinding, Rule, RuleContext, RuleId, Statement, Violation } from './types.ts';

export interface ParsedSource {
  source: LintSource;
  up?: ParseOutcome;
  down?: ParseOutcome;
}

export interface SourceAnalysis {
  findings: LintFinding[];
  destructive: DestructiveChange[];
}

const MAX_STATEMENT = 200;

/** The findings and destructive changes of one migration file. */
export function analyzeSource(parsed: ParsedSource, db: DatabaseFacts | undefined): SourceAnalysis {
  const { source } = parsed;
  const out: SourceAnalysis = { findings: [], destructive: [] };
  const partFinding = (line: number, id: RuleId, message: string) => {
    if (!source.ignoredRules.has(id)) out.findings.push(wholePartFinding(source, line, id, message));
  };
  if ('unavailable' in source.up) {
    partFinding(1, source.up.reason === 'needs-database' ? 'not-linted' : 'syntax-error', source.up.unavailable);
    out.destructive.push({ file: source.file, line: 1, kind: 'unknown', target: source.up.unavailable });
  } else if (parsed.up && !parsed.up.ok) {
    const line = lineIn(source.up, parsed.up.line);
    partFinding(line, 'syntax-error', `the Up part does not parse: ${parsed.up.message}`);
    out.destructive.push({ file: source.file, line, kind: 'unknown', target: `the Up part does not parse: ${parsed.up.message}` });
  } else if (parsed.up) {
    const part = source.up;
    const statements = parsed.up.statements.map((s) => ({ ...s, line: s.line + part.lineOffset }));
    lintStatements(source, part, statements, db, out);
  }
  if (source.down && parsed.down && !parsed.down.ok) {
    partFinding(lineIn(source.down, parsed.down.line), 'syntax-error', `the Down part does not parse: ${parsed.down.message}`);
  }
  out.findings.sort((a, b) => a.line - b.line);
  return out;
}

function lintStatements(source: LintSource, part: SqlPart, statements: Statement[], db: DatabaseFacts | undefined, out: SourceAnalysis): void {
  // CREATE TABLE IF NOT EXISTS of a table the database already has creates nothing new.
  const state = new MigrationState((ref) => db?.relation(ref) !== undefined);
  const ctx = context(source, state, db);
  const report = (rule: Rule, v: Violation, stmt: Statement | undefined, line: number) => {
    if (rule.exemptNewRelation && v.relation && state.isNew(v.relation, v.relationKind)) return;
    if (source.ignoredRules.has(rule.id) || statementIgnores(part.commentLines, line).has(rule.id)) return;
    out.findings.push(finding(source, part.reportLine ?? line, rule, v, stmt, db));
  };
  for (const stmt of statements) {
    for (const rule of RULES) for (const v of rule.check(stmt, ctx)) report(rule, v, stmt, stmt.line);
    const changes = destructiveChangesOf(stmt, (ref) => state.isNew(ref));
    out.destructive.push(...changes.map((c) => ({ file: source.file, line: part.reportLine ?? stmt.line, ...c })));
    state.apply(stmt);
  }
  const openedAt = state.openTransactionLine;
  for (const rule of RULES) for (const v of rule.end?.(ctx) ?? []) report(rule, v, undefined, openedAt ?? statements.at(-1)?.line ?? 1);
}

/** The rules' view of the migration; reads the state as it is when a rule asks. */
function context(source: LintSource, state: MigrationState, db: DatabaseFacts | undefined): RuleContext {
  return {
    fileKind: source.kind,
    transactional: source.transactional,
    get openTransactionLine() { return state.openTransactionLine; },
    addedNotValid: (name) => state.addedNotValid(name),
    notNullChecked: (table, column) => state.notNullChecked(table, column) || (db?.relation(table)?.notNullChecked.includes(column) ?? false),
    describe: (ref, kind = 'table') => describeRelation(ref, kind, db),
    db,
  };
}

function finding(source: LintSource, line: number, rule: Rule, v: Violation, stmt: Statement | undefined, db: DatabaseFacts | undefined): LintFinding {
  const facts = v.relation ? db?.relation(v.relation) : undefined;
  const table = facts?.table ?? (v.relation && v.relationKind !== 'index' ? relationName(v.relation) : undefined);
  return {
    file: source.file,
    line,
    rule: rule.id,
    severity: rule.severity,
    message: v.message,
    safe: v.safe ?? rule.safe,
    ...(table ? { table } : {}),
    ...(facts ? { tableSize: { bytes: facts.bytes, rows: facts.rows } } : {}),
    ...(stmt ? { statement: cut(stmt.sql) } : {}),
  };
}

/** A finding about a whole part (it does not parse, or cannot be rendered). */
function wholePartFinding(source: LintSource, line: number, id: RuleId, message: string): LintFinding {
  const rule = ruleById(id);
  return { file: source.file, line, rule: id, severity: rule.severity, message, safe: rule.safe };
}

function lineIn(part: SqlPart, parserLine: number): number {
  return part.reportLine ?? parserLine + part.lineOffset;
}

function cut(sql: string): string {
  const oneLine = sql.replace(/\s+/g, ' ');
  return oneLine.length > MAX_STATEMENT ? `${oneLine.slice(0, MAX_STATEMENT - 1)}…` : oneLine;
}
