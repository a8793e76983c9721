// A dump's table of contents (`pg_restore --list --verbose`) and the choice of what `restore --table`
// restores: the named tables with every entry that hangs on them (data, sequences, defaults, indexes,
// constraints, triggers, comments, grants, policies), found through the TOC's `depends on` lines.
import { UsageError } from '../errors.ts';
import { parseTablePattern } from './tables.ts';

export interface TocEntry {
  id: number;
  /** The entry's line as pg_restore printed it (a -L list file repeats it). */
  line: string;
  type: string;
  /** `-` for entries outside a schema. */
  schema: string;
  name: string;
  dependsOn: number[];
}

// TOC entry types with spaces; anything else is one word.
const MULTIWORD = [
  'MATERIALIZED VIEW DATA', 'PUBLICATION TABLES IN SCHEMA', 'TEXT SEARCH CONFIGURATION', 'TEXT SEARCH DICTIONARY',
  'TEXT SEARCH PARSER', 'TEXT SEARCH TEMPLATE', 'FOREIGN DATA WRAPPER', 'SEQUENCE OWNED BY', 'MATERIALIZED VIEW',
  'PUBLICATION TABLE', 'CHECK CONSTRAINT', 'OPERATOR CLASS', 'OPERATOR FAMILY', 'DEFAULT ACL', 'EVENT TRIGGER',
  'FOREIGN TABLE', 'ACCESS METHOD', 'SEQUENCE SET', 'USER MAPPING', 'FK CONSTRAINT', 'LARGE OBJECT', 'ROW SECURITY',
  'TABLE DATA', 'BLOB METADATA', 'TABLE ATTACH', 'INDEX ATTACH', 'SECURITY LABEL', 'SHELL TYPE',
];

/** Entries that belong to a table: restored with it when they depend on it. */
const ATTACHED = new Set([
  'TABLE DATA', 'SEQUENCE', 'SEQUENCE OWNED BY', 'SEQUENCE SET', 'DEFAULT', 'INDEX', 'INDEX ATTACH', 'CONSTRAINT',
  'CHECK CONSTRAINT', 'FK CONSTRAINT', 'TRIGGER', 'RULE', 'COMMENT', 'ACL', 'SECURITY LABEL', 'POLICY', 'ROW SECURITY', 'STATISTICS',
]);

/** What a table's entries may need that is not a table: created with it in a new or empty target. */
const PREREQUISITE = new Set(['SCHEMA', 'EXTENSION', 'FUNCTION', 'PROCEDURE', 'AGGREGATE', 'TYPE', 'SHELL TYPE', 'DOMAIN', 'COLLATION', 'SEQUENCE']);

/** Parse `pg_restore --list [--verbose]`: `<id>; <catalog oid> <oid> <TYPE> <schema> <name> <owner>`, then `;\tdepends on: ...`. */
export function parseToc(listing: string): TocEntry[] {
  const entries: TocEntry[] = [];
  const lines = listing.split('\n');
  // Schema names may contain spaces: the SCHEMA entries name them, so a longest-prefix match finds them.
  const schemas = ['-', 'public', ...lines.map((l) => /^\d+; \d+ \d+ SCHEMA - (.+) \S*$/.exec(l.trim())?.[1]).filter((s): s is string => !!s)]
    .sort((a, b) => b.length - a.length);
  for (const raw of lines) {
    const deps = /^;\s*depends on:\s*(.*)$/.exec(raw.trim());
    if (deps) {
      const last = entries.at(-1);
      if (last) last.dependsOn.push(...deps[1]!.split(/\s+/).filter(Boolean).map(Number));
      continue;
    }
    const m = /^(\d+); \d+ \d+ (.+)$/.exec(raw.replace(/\r$/, ''));
    if (!m) continue;
    const rest = m[2]!;
    const type = MULTIWORD.find((t) => rest.startsWith(`${t} `)) ?? rest.split(' ')[0]!;
    const after = rest.slice(type.length + 1);
    const schema = schemas.find((s) => after.startsWith(`${s} `)) ?? after.split(' ')[0]!;
    // The owner is the last word (empty for entries without one).
    const name = after.slice(schema.length + 1).replace(/ [^ ]*$/, '');
    entries.push({ id: Number(m[1]), line: raw.trim(), type, schema, name, dependsOn: [] });
  }
  return entries;
}

export interface TableRef {
  schema: string;
  name: string;
}

const qualified = (t: TableRef) => `${t.schema}.${t.name}`;

/** The tables a dump holds: TABLE entries, or TABLE DATA for a data-only dump. */
export function tocTables(entries: TocEntry[]): TableRef[] {
  const seen = new Map<string, TableRef>();
  for (const e of entries) {
    if (e.type === 'TABLE' || e.type === 'TABLE DATA') seen.set(qualified(e), { schema: e.schema, name: e.name });
  }
  return [...seen.values()].sort((a, b) => qualified(a).localeCompare(qualified(b)));
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** Up to five tables whose name is close to `pattern` (its last part, unquoted and folded). */
export function closeMatches(pattern: string, tables: TableRef[]): string[] {
  const wanted = (pattern.split('.').at(-1) ?? pattern).replace(/"/g, '').toLowerCase();
  return tables
    .map((t) => ({ t, d: t.name.toLowerCase().includes(wanted) || wanted.includes(t.name.toLowerCase()) ? 0 : editDistance(wanted, t.name.toLowerCase()) }))
    .filter((x) => x.d <= Math.max(2, Math.floor(wanted.length / 3)))
    .sort((a, b) => a.d - b.d)
    .slice(0, 5)
    .map((x) => qualified(x.t));
}

const hasWildcard = (pattern: string) => /[*?]/.test(pattern.replace(/"(?:[^"]|"")*"/g, ''));

/**
 * The dump's tables named by `patterns`, matched the way pg_dump matches -t (unquoted names fold
 * to lower case, quotes keep case and dots, `schema.table`), except that a bare name looks in every
 * schema. A name matching nothing, or a bare name found in two schemas, is a usage error naming
 * the close matches: refused before the target is touched.
 */
export function matchTables(patterns: string[], tables: TableRef[], backupId: string): TableRef[] {
  const chosen = new Map<string, TableRef>();
  const issues: string[] = [];
  for (const pattern of patterns) {
    const p = parseTablePattern(pattern);
    const hits = tables.filter((t) => p.name.test(t.name) && (!p.schema || p.schema.test(t.schema)));
    if (hits.length === 0) {
      const close = closeMatches(pattern, tables);
      issues.push(`--table ${pattern}: no such table in backup ${backupId}${close.length > 0 ? ` (close matches: ${close.join(', ')})` : ''}`);
    } else if (!p.schema && !hasWildcard(pattern) && new Set(hits.map((t) => t.schema)).size > 1) {
      issues.push(`--table ${pattern} is ambiguous: ${hits.map(qualified).join(', ')} (qualify it with its schema)`);
    } else {
      for (const t of hits) chosen.set(qualified(t), t);
    }
  }
  if (issues.length > 0) throw new UsageError('nothing was restored', issues);
  return [...chosen.values()];
}

export interface TableSelection {
  /** The entries to restore, in the dump's order (a pg_restore -L list). */
  entries: TocEntry[];
  /** Entries that hang on a chosen table but also on something not restored (an FK to another table). */
  skipped: Array<{ entry: TocEntry; reason: string }>;
}

const describe = (e: TocEntry) => `${e.type} ${e.schema === '-' ? '' : `${e.schema} `}${e.name}`;

/** Grow `chosen` with the attached entries that depend on something in it, until nothing changes. */
function attachedClosure(entries: TocEntry[], chosen: Set<number>): Set<number> {
  const attached = new Set<number>();
  for (let grew = true; grew;) {
    grew = false;
    for (const e of entries) {
      if (attached.has(e.id) || chosen.has(e.id) || !ATTACHED.has(e.type)) continue;
      if (e.dependsOn.some((d) => chosen.has(d) || attached.has(d))) { attached.add(e.id); grew = true; }
    }
  }
  return attached;
}

/**
 * The entries restoring `tables`: each table and what hangs on it. Into a `new` (or empty) target
 * the schemas, functions and types they need come along, and an entry that also needs a table not
 * restored (a foreign key between a restored table and another) is skipped and said so: that table
 * is not there. Into an `existing` target (--clean) the rest of the database is assumed present:
 * nothing is skipped, so foreign keys pointing at a restored table are dropped and re-made around it
 * (and checked again: rows that no longer match fail the restore, in its one transaction).
 */
export function selectTableEntries(entries: TocEntry[], tables: TableRef[], options: { target: 'new' | 'existing' }): TableSelection {
  const byId = new Map(entries.map((e) => [e.id, e]));
  const wanted = new Set(tables.map(qualified));
  const roots = new Set(entries.filter((e) => (e.type === 'TABLE' || e.type === 'TABLE DATA') && wanted.has(qualified(e))).map((e) => e.id));
  const attached = attachedClosure(entries, roots);
  const skipped: TableSelection['skipped'] = [];
  // Drop what needs an entry that is neither restored nor a prerequisite; repeat, as a comment may hang on a dropped constraint.
  for (let dropped = options.target === 'new'; dropped;) {
    dropped = false;
    for (const id of attached) {
      const e = byId.get(id)!;
      const missing = e.dependsOn.map((d) => byId.get(d)).filter((d): d is TocEntry => !!d && !roots.has(d.id) && !attached.has(d.id) && !PREREQUISITE.has(d.type));
      if (missing.length === 0) continue;
      attached.delete(id);
      dropped = true;
      skipped.push({ entry: e, reason: `needs ${missing.map(describe).join(', ')}, which is not restored` });
    }
  }
  const chosen = new Set([...roots, ...attached]);
  if (options.target === 'new') addPrerequisites(byId, chosen);
  return { entries: entries.filter((e) => chosen.has(e.id)), skipped };
}

/** Add to `chosen` the schemas, functions and types its entries need, transitively. */
function addPrerequisites(byId: Map<number, TocEntry>, chosen: Set<number>): void {
  const queue = [...chosen];
  while (queue.length > 0) {
    for (const d of byId.get(queue.pop()!)?.dependsOn ?? []) {
      const dep = byId.get(d);
      if (dep && PREREQUISITE.has(dep.type) && !chosen.has(d)) { chosen.add(d); queue.push(d); }
    }
  }
}

/** One line per entry, as `pg_restore --use-list` reads it. */
export function listFile(entries: TocEntry[]): string {
  return `${entries.map((e) => e.line).join('\n')}\n`;
}

export function describeEntry(e: TocEntry): string {
  return describe(e);
}
