// Whether a column default is volatile: since PostgreSQL 11 a non-volatile default is stored once
// in the catalog, while a volatile one (random(), gen_random_uuid(), nextval()) rewrites the table.
import type { Node } from 'libpg-query';
import { calledFunctions } from './ast.ts';
import type { DatabaseFacts } from './types.ts';

/** Volatile functions of the core and common extensions, known without a database. */
const VOLATILE = new Set([
  'random', 'random_normal', 'setseed', 'gen_random_uuid', 'uuidv4', 'uuidv7', 'uuid_generate_v1', 'uuid_generate_v1mc', 'uuid_generate_v4',
  'clock_timestamp', 'timeofday', 'nextval', 'setval', 'currval', 'lastval', 'gen_random_bytes', 'txid_current', 'pg_current_xact_id',
]);

/** Stable and immutable functions often seen in defaults (now() is evaluated once: no rewrite). */
const NOT_VOLATILE = new Set([
  'now', 'transaction_timestamp', 'statement_timestamp', 'current_setting', 'lower', 'upper', 'coalesce', 'concat', 'length',
  'jsonb_build_object', 'json_build_object', 'jsonb_build_array', 'json_build_array', 'to_jsonb', 'to_json', 'array_fill',
  'make_interval', 'make_date', 'make_timestamp', 'make_timestamptz', 'date_trunc', 'timezone', 'to_timestamp', 'to_char',
  'md5', 'encode', 'decode', 'replace', 'btrim', 'trim', 'round', 'abs', 'greatest', 'least', 'int4range', 'tstzrange',
]);

export type Volatility = { volatile: true; functions: string[] } | { volatile: false } | { volatile: 'unknown'; functions: string[] };

/** The volatility of an expression, from the functions it calls (the database decides when it knows them). */
export function volatilityOf(expr: Node | undefined, db: DatabaseFacts | undefined): Volatility {
  const volatile: string[] = [];
  const unknown: string[] = [];
  for (const fn of calledFunctions(expr)) {
    const known = db?.isVolatile(fn) ?? (VOLATILE.has(fn) ? true : NOT_VOLATILE.has(fn) ? false : undefined);
    if (known === true) volatile.push(fn);
    else if (known === undefined) unknown.push(fn);
  }
  if (volatile.length > 0) return { volatile: true, functions: volatile };
  if (unknown.length > 0) return { volatile: 'unknown', functions: unknown };
  return { volatile: false };
}
