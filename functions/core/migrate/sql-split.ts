// Splits a SQL script into statements. Only used for `-- pgops:no-transaction` migrations:
// PostgreSQL runs a multi-statement query string as one implicit transaction, where
// CREATE INDEX CONCURRENTLY is refused, so such files run one statement at a time.
// Understands '...' (with '' and E'\'' escapes), "identifiers", $tag$ bodies $tag$,
// -- line comments and nested /* block comments */.

const WORD_CHAR = /[A-Za-z0-9_]/;

function skipLineComment(sql: string, i: number): number {
  const eol = sql.indexOf('\n', i);
  return eol < 0 ? sql.length : eol + 1;
}

/** Block comments nest in PostgreSQL. */
function skipBlockComment(sql: string, i: number): number {
  let depth = 1;
  let j = i + 2;
  while (j < sql.length && depth > 0) {
    if (sql[j] === '/' && sql[j + 1] === '*') { depth++; j += 2; }
    else if (sql[j] === '*' && sql[j + 1] === '/') { depth--; j += 2; }
    else j++;
  }
  return j;
}

/** A '...' string or "identifier" starting at i; a doubled quote is an escaped one, and so is \' in E'...'. */
function skipQuoted(sql: string, i: number, backslashEscapes: boolean): number {
  const quote = sql[i];
  let j = i + 1;
  while (j < sql.length) {
    if (backslashEscapes && sql[j] === '\\') { j += 2; continue; }
    if (sql[j] === quote) {
      if (sql[j + 1] === quote) { j += 2; continue; }
      return j + 1;
    }
    j++;
  }
  return j;
}

/** E'...' (not the end of a longer word such as `type'`). */
function isEscapeString(sql: string, i: number): boolean {
  return i > 0 && /[eE]/.test(sql[i - 1]!) && (i < 2 || !WORD_CHAR.test(sql[i - 2]!));
}

/** A $tag$ body $tag$ starting at i, or undefined when the $ starts no dollar quote. */
function skipDollarQuoted(sql: string, i: number): number | undefined {
  if (i > 0 && WORD_CHAR.test(sql[i - 1]!)) return undefined;
  const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i));
  if (!m) return undefined;
  const tag = m[0];
  const close = sql.indexOf(tag, i + tag.length);
  return close < 0 ? sql.length : close + tag.length;
}

/** Where the comment, string, identifier or dollar quote starting at i ends; undefined when none starts there. */
function skipNonCode(sql: string, i: number): number | undefined {
  const c = sql[i];
  const next = sql[i + 1];
  if (c === '-' && next === '-') return skipLineComment(sql, i);
  if (c === '/' && next === '*') return skipBlockComment(sql, i);
  if (c === "'") return skipQuoted(sql, i, isEscapeString(sql, i));
  if (c === '"') return skipQuoted(sql, i, false);
  if (c === '$') return skipDollarQuoted(sql, i);
  return undefined;
}

export function splitSqlStatements(sql: string): string[] {
  const out: string[] = [];
  const push = (from: number, to: number) => {
    const stmt = sql.slice(from, to).trim();
    if (stmt.length > 0 && !isOnlyComments(stmt)) out.push(stmt);
  };
  let start = 0;
  let i = 0;
  while (i < sql.length) {
    const skipped = skipNonCode(sql, i);
    if (skipped !== undefined) {
      i = skipped;
    } else if (sql[i] === ';') {
      push(start, i);
      start = ++i;
    } else {
      i++;
    }
  }
  push(start, sql.length);
  return out;
}

function isOnlyComments(stmt: string): boolean {
  return stmt.replace(/--[^\n]*(\n|$)/g, '').replace(/\/\*[\s\S]*?\*\//g, '').trim().length === 0;
}
