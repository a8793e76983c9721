// The migration linter: reads each file's SQL, parses it with PostgreSQL's own parser, reads what
// the database knows of the tables it touches (when connected), and runs the rules.
import type { DropStmt } from 'libpg-query';
import type pg from 'pg';
import type { Logger } from '../../logger.ts';
import { droppedRelations, as, calledFunctions, walk } from './ast.ts';
import { readDatabaseFactsOrNone } from './database.ts';
import type { DestructiveChange } from './destructive.ts';
import { analyzeSource, type ParsedSource } from './engine.ts';
import { parseSql } from './parser.ts';
import { readLintSource } from './sources.ts';
import type { DatabaseFacts, LintReport, RelationRef, Statement } from './types.ts';

export interface LintTarget {
  path: string;
  /** The file as findings name it. */
  file: string;
}

export interface LintOptions {
  /** A connected session: findings then name table sizes, and volatility comes from the catalog. */
  client?: pg.Client;
  logger: Logger;
}

export interface LintResult {
  report: LintReport;
  /** Drops, renames, type changes and truncations, whatever the ignore comments say. */
  destructive: DestructiveChange[];
}

export async function lintMigrationFiles(targets: LintTarget[], options: LintOptions): Promise<LintResult> {
  const parsed: ParsedSource[] = [];
  // One at a time: a .js migration is imported to render its SQL.
  for (const t of targets) parsed.push(await parseSource(t));
  const db = options.client ? await factsFor(options.client, parsed, options.logger) : undefined;
  const analyses = parsed.map((p) => analyzeSource(p, db));
  return {
    report: { files: targets.length, findings: analyses.flatMap((a) => a.findings) },
    destructive: analyses.flatMap((a) => a.destructive),
  };
}

/**
 * The destructive changes of migrations (for `migrate.backupBefore: "destructive"`): drops, renames,
 * type changes, truncation, and `unknown` where the SQL cannot be known. Needs no database.
 */
export async function findDestructiveChanges(targets: LintTarget[], logger: Logger): Promise<DestructiveChange[]> {
  return (await lintMigrationFiles(targets, { logger })).destructive;
}

async function parseSource(target: LintTarget): Promise<ParsedSource> {
  const source = await readLintSource(target.path, target.file);
  const up = 'sql' in source.up ? await parseSql(source.up.sql) : undefined;
  const down = source.down ? await parseSql(source.down.sql) : undefined;
  return { source, up, down };
}

async function factsFor(client: pg.Client, parsed: ParsedSource[], logger: Logger): Promise<DatabaseFacts | undefined> {
  const statements = parsed.flatMap((p) => (p.up?.ok ? p.up.statements : []));
  return readDatabaseFactsOrNone(client, referencedRelations(statements), statements.flatMap((s) => calledFunctions(s.node)), logger);
}

/** Every table or index a statement names (RangeVars, and the objects of a DROP). */
function referencedRelations(statements: Array<Pick<Statement, 'node'>>): RelationRef[] {
  const refs: RelationRef[] = [];
  for (const s of statements) {
    for (const { value } of walk(s.node)) {
      const rv = value as { relname?: unknown; schemaname?: unknown } | null;
      if (rv && typeof rv === 'object' && typeof rv.relname === 'string') refs.push(typeof rv.schemaname === 'string' ? { schema: rv.schemaname, name: rv.relname } : { name: rv.relname });
    }
    const drop = as<DropStmt>(s.node, 'DropStmt');
    if (drop) refs.push(...droppedRelations(drop));
  }
  return refs;
}
