// What the linter reads of a migration file: the SQL `migrate up` runs (the Up part of a .sql file,
// the SQL node-pg-migrate generates for a .js file's `up`), whether it runs in a transaction,
// the Down part (checked for syntax only), and where each line came from.
import { readFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { MigrationBuilder } from 'node-pg-migrate';
import { MigrationError, errorMessage } from '../../errors.ts';
import { parseSqlMigration, renderMigrationSql, sha256, type MigrationFile } from '../files.ts';
import { fileIgnores } from './ignore.ts';

export interface SqlPart {
  sql: string;
  /** Lines of the file before the part: a parser line plus this is a file line. */
  lineOffset: number;
  /** The lines ignore comments are read from (the file's, or the generated SQL's). */
  commentLines: readonly string[];
  /** Every finding of a .js migration is reported on this line (its `up`): the SQL has no lines in the file. */
  reportLine?: number;
}

export interface LintSource {
  /** The file as reported (a path relative to where pgops runs, or the file name). */
  file: string;
  kind: 'sql' | 'js';
  transactional: boolean;
  ignoredRules: Set<string>;
  /** The SQL `migrate up` runs, or why it cannot be known without running the migration. */
  up: SqlPart | { unavailable: string; reason: 'needs-database' | 'broken' };
  /** Checked for syntax only: a rollback is destructive by nature. */
  down?: SqlPart;
}

/** A .js migration asked the database something while building its SQL. */
class NeedsDatabaseError extends MigrationError {}

export async function readLintSource(path: string, file: string): Promise<LintSource> {
  const content = readFileSync(path, 'utf8');
  const ignoredRules = fileIgnores(content);
  if (extname(path).toLowerCase() === '.sql') return { file, kind: 'sql', ignoredRules, ...sqlParts(content) };
  return { file, kind: 'js', ignoredRules, ...(await jsParts(path, content)) };
}

function sqlParts(content: string): Pick<LintSource, 'transactional' | 'up' | 'down'> {
  const parsed = parseSqlMigration(content);
  const lines = content.split('\n');
  // Each part is a slice of the file that starts at its marker (the first one): indexOf finds it.
  const part = (sql: string): SqlPart => ({ sql, lineOffset: lineCount(content.slice(0, content.indexOf(sql))), commentLines: lines });
  return {
    transactional: !parsed.noTransaction,
    up: part(parsed.up),
    ...(parsed.down !== undefined ? { down: part(parsed.down) } : {}),
  };
}

function lineCount(text: string): number {
  let n = 0;
  for (const c of text) if (c === '\n') n++;
  return n;
}

async function jsParts(path: string, content: string): Promise<Pick<LintSource, 'transactional' | 'up' | 'down'>> {
  const file: MigrationFile = { name: basename(path, extname(path)), file: basename(path), path, checksum: sha256(content) };
  const reportLine = upLine(content);
  let up: LintSource['up'];
  let transactional = true;
  try {
    const rendered = await render(file, 'up');
    transactional = rendered.transactional;
    up = { sql: rendered.sql, lineOffset: 0, commentLines: rendered.sql.split('\n'), reportLine };
  } catch (err) {
    up = { unavailable: errorMessage(err), reason: err instanceof NeedsDatabaseError ? 'needs-database' : 'broken' };
  }
  // No down, or an up node-pg-migrate cannot reverse: nothing to check.
  const down = await render(file, 'down').then((r) => ({ sql: r.sql, lineOffset: 0, commentLines: r.sql.split('\n'), reportLine }), () => undefined);
  return { transactional, up, ...(down ? { down } : {}) };
}

/** The SQL node-pg-migrate generates, the way `migrate up --dry-run` renders it, without a database. */
async function render(file: MigrationFile, direction: 'up' | 'down'): Promise<{ sql: string; transactional: boolean }> {
  const refuse = () => Promise.reject(new NeedsDatabaseError(`migration ${file.file} queries the database (pgm.db) while building its SQL, so its SQL cannot be known without running it`));
  let builder: MigrationBuilder | undefined;
  const sql = await renderMigrationSql(file, direction, () => {
    builder = new MigrationBuilder({ query: refuse, select: refuse }, undefined, false, { debug() {}, info() {}, warn() {}, error() {} });
    return builder;
  });
  return { sql, transactional: builder?.isUsingTransaction() ?? true };
}

/** The line that defines `up` (export const up, exports.up, function up); 1 when none is found. */
function upLine(content: string): number {
  const at = content.split('\n').findIndex((l) => /(?:\bfunction\s+up\b|\bup\s*(?:=|:|\())/.test(l) && !/^\s*(?:\/\/|\*|\/\*)/.test(l));
  return at < 0 ? 1 : at + 1;
}
