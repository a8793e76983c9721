// PostgreSQL cuts identifiers at 63 bytes, with only a NOTICE.
import { walk } from '../ast.ts';
import type { Rule, Statement } from '../types.ts';

const MAX_IDENTIFIER_BYTES = 63;
/** Parse-tree fields that hold a name (never a string literal or a function body). */
const NAME_FIELDS = new Set(['relname', 'colname', 'conname', 'idxname', 'newname', 'trigname', 'schemaname', 'indexname', 'subname', 'name', 'sval']);
/** A cut is made at a character boundary: a multibyte name may end a few bytes short of 63. */
const CUT_MIN_BYTES = MAX_IDENTIFIER_BYTES - 3;

export const identifierTooLong: Rule = {
  id: 'identifier-too-long',
  severity: 'warning',
  why: 'PostgreSQL silently truncates identifiers to 63 bytes: the object gets another name than the one written, and two long names can collide.',
  safe: 'Names of at most 63 bytes (node-pg-migrate derives index names from the columns: pass { name } to pgm.createIndex).',
  exemptNewRelation: false,
  check(stmt) {
    return [...longIdentifiers(stmt)].map((name) => ({ message: `identifier ${name} is ${Buffer.byteLength(name, 'utf8')} bytes long: PostgreSQL truncates it to ${MAX_IDENTIFIER_BYTES}` }));
  },
};

/**
 * The parser has already cut the names in the tree (PostgreSQL's scanner does), so a name at the limit
 * is looked up in the statement's text: written longer there, it was cut.
 */
function longIdentifiers(stmt: Statement): Set<string> {
  const found = new Set<string>();
  for (const { key, value } of walk(stmt.node)) {
    if (!NAME_FIELDS.has(key) || typeof value !== 'string') continue;
    // A String node holds names, but also literals and function bodies: only name-shaped ones count.
    if (key === 'sval' && !/^[\p{L}_][\p{L}\p{N}_$]*$/u.test(value)) continue;
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes < CUT_MIN_BYTES || bytes > MAX_IDENTIFIER_BYTES) continue;
    const written = writtenLonger(stmt.sql, value);
    if (written) found.add(written);
  }
  return found;
}

function writtenLonger(sql: string, cut: string): string | undefined {
  const escaped = cut.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const quoted = new RegExp(`"(${escaped}[^"]+)"`).exec(sql);
  if (quoted) return quoted[1];
  const bare = new RegExp(`(?<![\\p{L}\\p{N}_$])(${escaped}[\\p{L}\\p{N}_$]+)`, 'iu').exec(sql);
  return bare?.[1];
}
