// The user tables of a database, their exact row counts, and pg_dump's -t/-T pattern rules
// (approximated) so a filtered backup counts only what it dumps.
import type pg from 'pg';
import { quoteIdent } from '../db.ts';
import type { TableCount } from '../catalog/manifest.ts';

interface NamePattern {
  schema?: RegExp;
  name: RegExp;
}

/** psql/pg_dump pattern rules: unquoted text folds to lower case, `*` and `?` are wildcards, `.` separates the schema. */
export function parseTablePattern(pattern: string): NamePattern {
  const parts: string[] = [''];
  let quoted = false;
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '"') {
      if (quoted && pattern[i + 1] === '"') { parts[parts.length - 1] += '"'; i++; continue; }
      quoted = !quoted;
      continue;
    }
    if (!quoted && ch === '.') { parts.push(''); continue; }
    let piece: string;
    if (!quoted && ch === '*') piece = '.*';
    else if (!quoted && ch === '?') piece = '.';
    else piece = (quoted ? ch : ch.toLowerCase()).replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
    parts[parts.length - 1] += piece;
  }
  const anchored = (s: string) => new RegExp(`^(?:${s})$`);
  const name = parts.at(-1) ?? '';
  const schema = parts.length >= 2 ? parts.at(-2) : undefined;
  return schema !== undefined ? { schema: anchored(schema), name: anchored(name) } : { name: anchored(name) };
}

function matches(p: NamePattern, t: { schema: string; name: string; visible: boolean }): boolean {
  if (!p.name.test(t.name)) return false;
  return p.schema ? p.schema.test(t.schema) : t.visible;
}

export function tableSelected(t: { schema: string; name: string; visible: boolean }, include: string[], exclude: string[]): boolean {
  if (include.length > 0 && !include.some((p) => matches(parseTablePattern(p), t))) return false;
  return !exclude.some((p) => matches(parseTablePattern(p), t));
}

/** Ordinary user tables (no partitioned parents: their leaves are counted), not extension members. */
export async function listUserTables(client: pg.Client): Promise<Array<{ schema: string; name: string; visible: boolean }>> {
  const r = await client.query<{ schema: string; name: string; visible: boolean }>(`
    SELECT n.nspname AS schema, c.relname AS name, pg_catalog.pg_table_is_visible(c.oid) AS visible
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r' AND c.relpersistence <> 't'
       AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                        WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
     ORDER BY 1, 2`);
  return r.rows;
}

const USER_NAMESPACE = "n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'";
const notExtensionMember = (catalog: string, oid: string) =>
  `NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = '${catalog}'::regclass AND d.objid = ${oid} AND d.deptype = 'e')`;

/**
 * Every kind of user object pg_dump would dump, counted (extension members excluded; the public
 * schema and plpgsql are in every new database): "is this database empty" is "are these all 0".
 */
const USER_OBJECTS = `
  SELECT 'relations' AS kind, count(*) AS n FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND ${USER_NAMESPACE} AND ${notExtensionMember('pg_catalog.pg_class', 'c.oid')}
  UNION ALL
  SELECT 'sequences', count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind = 'S' AND ${USER_NAMESPACE} AND ${notExtensionMember('pg_catalog.pg_class', 'c.oid')}
  UNION ALL
  SELECT 'functions', count(*) FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
   WHERE ${USER_NAMESPACE} AND ${notExtensionMember('pg_catalog.pg_proc', 'p.oid')}
  UNION ALL
  SELECT CASE WHEN t.typtype = 'd' THEN 'domains' ELSE 'types' END, count(*) FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
   WHERE t.typtype IN ('b', 'c', 'd', 'e', 'r') AND t.typcategory <> 'A' AND ${USER_NAMESPACE}
     AND (t.typtype <> 'c' OR (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) = 'c')
     AND ${notExtensionMember('pg_catalog.pg_type', 't.oid')}
   GROUP BY t.typtype = 'd'
  UNION ALL
  SELECT 'schemas', count(*) FROM pg_catalog.pg_namespace n
   WHERE n.nspname <> 'public' AND ${USER_NAMESPACE} AND ${notExtensionMember('pg_catalog.pg_namespace', 'n.oid')}
  UNION ALL
  SELECT 'extensions', count(*) FROM pg_catalog.pg_extension WHERE extname <> 'plpgsql'
  UNION ALL
  SELECT 'collations', count(*) FROM pg_catalog.pg_collation o JOIN pg_catalog.pg_namespace n ON n.oid = o.collnamespace
   WHERE ${USER_NAMESPACE} AND ${notExtensionMember('pg_catalog.pg_collation', 'o.oid')}
  UNION ALL
  SELECT 'operators', count(*) FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace
   WHERE ${USER_NAMESPACE} AND ${notExtensionMember('pg_catalog.pg_operator', 'o.oid')}`;

/** The user objects of the database, by kind; only kinds with at least one object. */
export async function countUserObjects(client: pg.Client): Promise<Record<string, number>> {
  const r = await client.query<{ kind: string; n: string }>(USER_OBJECTS);
  const out: Record<string, number> = {};
  for (const row of r.rows) if (Number(row.n) > 0) out[row.kind] = (out[row.kind] ?? 0) + Number(row.n);
  return out;
}

/** "2 functions, 1 types": what makes a database non-empty. */
export function describeUserObjects(counts: Record<string, number>): string {
  return Object.entries(counts).map(([kind, n]) => `${n} ${kind}`).join(', ');
}

/**
 * The planner's row estimate of each table (pg_class.reltuples, kept by VACUUM/ANALYZE): no table
 * is read. null where the table was never analyzed.
 */
export async function estimateRows(client: pg.Client, tables: Array<{ schema: string; name: string }>): Promise<TableCount[]> {
  const r = await client.query<{ schema: string; name: string; estimate: number }>(`
    SELECT n.nspname AS schema, c.relname AS name, c.reltuples::float8 AS estimate
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r'`);
  const known = new Map(r.rows.map((row) => [`${row.schema}\0${row.name}`, row.estimate]));
  return tables.map((t) => {
    const estimate = known.get(`${t.schema}\0${t.name}`);
    return { schema: t.schema, name: t.name, rows: estimate === undefined || estimate < 0 ? null : Math.round(estimate) };
  });
}

/** Exact count(*) of each table, in the client's current transaction. */
export async function countRows(client: pg.Client, tables: Array<{ schema: string; name: string }>): Promise<TableCount[]> {
  const out: TableCount[] = [];
  for (const t of tables) {
    const r = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${quoteIdent(t.schema)}.${quoteIdent(t.name)}`);
    out.push({ schema: t.schema, name: t.name, rows: Number(r.rows[0]?.n ?? 0) });
  }
  return out;
}
