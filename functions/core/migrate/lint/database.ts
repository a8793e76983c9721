// What the linter knows from the connected database (beyond squawk): each table's size and estimated
// rows, its column types and validated NOT NULL checks, and which functions are volatile. Read once,
// before the rules run, from the catalog only.
import type pg from 'pg';
import { quoteIdent } from '../../db.ts';
import { errorMessage } from '../../errors.ts';
import { formatBytes } from '../../format.ts';
import type { Logger } from '../../logger.ts';
import { redactString } from '../../redact.ts';
import { relationKey, relationName } from './ast.ts';
import type { DatabaseFacts, RelationFacts, RelationRef } from './types.ts';

const RELATIONS_SQL = `
SELECT r.name,
       t.oid::regclass::text AS table_name,
       t.relkind::text AS kind,
       pg_total_relation_size(t.oid) AS bytes,
       t.reltuples AS rows,
       (SELECT coalesce(json_object_agg(a.attname, format_type(a.atttypid, a.atttypmod)), '{}'::json)
          FROM pg_attribute a WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
       ARRAY(SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k
              WHERE k.conrelid = t.oid AND k.contype = 'c' AND k.convalidated) AS checks
  FROM unnest($1::text[]) AS r(name)
  JOIN pg_class c ON c.oid = to_regclass(r.name)
  LEFT JOIN pg_index i ON i.indexrelid = c.oid
  JOIN pg_class t ON t.oid = coalesce(i.indrelid, c.oid)`;

const FUNCTIONS_SQL = `
SELECT p.proname AS name, bool_or(p.provolatile = 'v') AS volatile
  FROM pg_proc p WHERE p.proname = ANY($1::text[]) GROUP BY p.proname`;

interface RelationRow { name: string; table_name: string; kind: string; bytes: string; rows: number; columns: Record<string, string>; checks: string[] }

/** The facts of the named relations and functions. */
export async function readDatabaseFacts(client: pg.Client, relations: RelationRef[], functions: string[]): Promise<DatabaseFacts> {
  const byQuoted = new Map(relations.map((r) => [r.schema ? `${quoteIdent(r.schema)}.${quoteIdent(r.name)}` : quoteIdent(r.name), relationKey(r)]));
  const facts = new Map<string, RelationFacts>();
  if (byQuoted.size > 0) {
    const r = await client.query<RelationRow>(RELATIONS_SQL, [[...byQuoted.keys()]]);
    for (const row of r.rows) {
      facts.set(byQuoted.get(row.name)!, {
        table: row.table_name,
        kind: row.kind,
        bytes: Number(row.bytes),
        rows: row.rows < 0 ? null : Math.round(row.rows),
        columns: row.columns,
        notNullChecked: row.checks.flatMap((def) => notNullColumn(def) ?? []),
      });
    }
  }
  const volatile = new Map<string, boolean>();
  if (functions.length > 0) {
    const r = await client.query<{ name: string; volatile: boolean }>(FUNCTIONS_SQL, [[...new Set(functions)]]);
    for (const row of r.rows) volatile.set(row.name, row.volatile);
  }
  return { relation: (ref) => facts.get(relationKey(ref)), isVolatile: (fn) => volatile.get(fn) };
}

/** Facts when the catalog answers; without them (a lock wait ran out, say) the lint goes on, naming no sizes. */
export async function readDatabaseFactsOrNone(client: pg.Client, relations: RelationRef[], functions: string[], logger: Logger): Promise<DatabaseFacts | undefined> {
  try {
    return await readDatabaseFacts(client, relations, functions);
  } catch (err) {
    logger.warn(`lint: could not read table sizes from the database, linting without them: ${redactString(errorMessage(err))}`);
    return undefined;
  }
}

/** `CHECK ((email IS NOT NULL))` -> email. */
function notNullColumn(definition: string): string | undefined {
  const m = /^CHECK \(+"?([^"()]+?)"?\)* IS NOT NULL\)+$/.exec(definition);
  return m?.[1];
}

/** `orders (38.0 GiB, 210M rows)`; an index stands for its table; without a database the name alone. */
export function describeRelation(ref: RelationRef, kind: 'table' | 'index', db: DatabaseFacts | undefined): string {
  const facts = db?.relation(ref);
  if (facts) return `${facts.table} (${formatBytes(facts.bytes)}, ${formatRows(facts.rows)})`;
  if (kind === 'index') return 'its table';
  return db ? `${relationName(ref)} (not in the database yet)` : relationName(ref);
}

const COMPACT = new Intl.NumberFormat('en', { notation: 'compact', maximumFractionDigits: 1 });

export function formatRows(rows: number | null): string {
  return rows === null ? 'never analyzed' : `${COMPACT.format(rows)} rows`;
}
