// The real PostgreSQL parser (libpg-query: PostgreSQL 17's grammar compiled to WASM, which reads
// the SQL of PostgreSQL 15 to 17), loaded once on first use, and statements located by line.
import type { Node, RawStmt } from 'libpg-query';
import { MigrationError, errorMessage } from '../../errors.ts';

/** The parser could not be loaded (a bundle without its .wasm file, say): nothing can be linted. */
export class LintParserError extends MigrationError {}

export interface ParsedStatement {
  node: Node;
  /** 1-based line of the statement's first token within the parsed text. */
  line: number;
  sql: string;
}

export type ParseOutcome =
  | { ok: true; statements: ParsedStatement[] }
  | { ok: false; line: number; message: string };

type ParseSync = (sql: string) => { stmts?: RawStmt[] };

let loading: Promise<ParseSync> | undefined;

/** libpg-query instantiates its WASM module when imported; this waits for it (once per process). */
export function loadParser(): Promise<ParseSync> {
  loading ??= (async () => {
    try {
      const mod = await import('libpg-query');
      await mod.loadModule();
      return mod.parseSync as ParseSync;
    } catch (err) {
      loading = undefined;
      throw new LintParserError(`the PostgreSQL parser (libpg-query) could not be loaded: ${errorMessage(err)}`, { cause: err });
    }
  })();
  return loading;
}

/** Parse a script; a syntax error is an answer (line and message), not an exception. */
export async function parseSql(sql: string): Promise<ParseOutcome> {
  const parse = await loadParser();
  if (sql.trim() === '' || onlyComments(sql)) return { ok: true, statements: [] };
  let stmts: RawStmt[];
  try {
    stmts = parse(sql).stmts ?? [];
  } catch (err) {
    const cursor = (err as { sqlDetails?: { cursorPosition?: number } }).sqlDetails?.cursorPosition;
    return { ok: false, line: cursor === undefined ? 1 : lineAtCodePoint(sql, cursor), message: errorMessage(err) };
  }
  return { ok: true, statements: locate(sql, stmts) };
}

/** The parser speaks UTF-8 byte offsets; lines are counted in the same bytes. */
function locate(sql: string, stmts: RawStmt[]): ParsedStatement[] {
  const bytes = Buffer.from(sql, 'utf8');
  const newlines: number[] = [];
  for (let i = 0; i < bytes.length; i++) if (bytes[i] === 0x0a) newlines.push(i);
  const out: ParsedStatement[] = [];
  for (const raw of stmts) {
    if (!raw.stmt) continue;
    const start = raw.stmt_location ?? 0;
    const end = raw.stmt_len ? start + raw.stmt_len : bytes.length;
    const text = bytes.subarray(start, end).toString('utf8');
    const lead = leadingTrivia(text);
    const first = start + Buffer.byteLength(text.slice(0, lead), 'utf8');
    out.push({ node: raw.stmt, line: countBelow(newlines, first) + 1, sql: text.slice(lead).trim() });
  }
  return out;
}

/** How many sorted offsets are below `offset` (binary search). */
function countBelow(sorted: number[], offset: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** PostgreSQL reports an error position in characters (code points). */
function lineAtCodePoint(sql: string, position: number): number {
  const before = Array.from(sql).slice(0, position).join('');
  return before.split('\n').length;
}

/** Length of the whitespace and comments before a statement's first token. */
export function leadingTrivia(text: string): number {
  let i = 0;
  for (;;) {
    while (i < text.length && /\s/.test(text[i]!)) i++;
    if (text.startsWith('--', i)) {
      const eol = text.indexOf('\n', i);
      i = eol < 0 ? text.length : eol + 1;
    } else if (text.startsWith('/*', i)) {
      i = endOfBlockComment(text, i);
    } else {
      return i;
    }
  }
}

/** Block comments nest in PostgreSQL. */
function endOfBlockComment(text: string, at: number): number {
  let depth = 0;
  let i = at;
  while (i < text.length) {
    if (text.startsWith('/*', i)) { depth++; i += 2; }
    else if (text.startsWith('*/', i)) { depth--; i += 2; if (depth === 0) return i; }
    else i++;
  }
  return text.length;
}

function onlyComments(sql: string): boolean {
  return leadingTrivia(sql) >= sql.length;
}
