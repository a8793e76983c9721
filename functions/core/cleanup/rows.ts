// Expired rows, deleted in small batches: each batch is its own short transaction under the
// session's lock_timeout, so cleanup never holds long locks or bloats one huge transaction.
// Identifiers come validated from the config and are checked against the catalog before any
// DELETE; SQL only ever contains quoted names that the catalog returned.
import type pg from 'pg';
import type { CleanupRule } from '../config.ts';
import { quoteIdent } from '../db.ts';
import { ConfigError, errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';

export interface ResolvedRule {
  rule: CleanupRule;
  schema: string;
  table: string;
  column: string;
  /** schema.table, for messages. */
  display: string;
  /** "schema"."table", for SQL. */
  sql: string;
  /** How a batch picks its rows: the primary key, or (tableoid,) ctid when there is none. */
  key: { kind: 'pk'; columns: string[] } | { kind: 'ctid' } | { kind: 'tableoid-ctid' };
}

export interface RowRuleResult {
  rule: string;
  table: string;
  /** Rows deleted; in a dry run, rows that would be deleted. */
  deleted: number;
  /** false when the run stopped at its deadline or failed: the next run continues. */
  complete: boolean;
  batches: number;
  durationMs: number;
  /** Set when this rule failed (the others still ran). */
  error?: string;
}

export interface ResolvedFunction {
  name: string;
  /** schema.name(), for messages. */
  display: string;
  sql: string;
}

export interface FunctionResult {
  name: string;
  called: boolean;
  /** What the function returned (e.g. cleanup_expired_data's row count). */
  result?: unknown;
  durationMs?: number;
  error?: string;
}

export interface VacuumResult {
  table: string;
  done: boolean;
  durationMs?: number;
  error?: string;
}

export interface RunOptions {
  dryRun: boolean;
  /** ms timestamp (Date.now() scale): no new batch starts after it. */
  deadline?: number;
  logger?: Logger;
}

const TIME_TYPES = new Set(['timestamp with time zone', 'timestamp without time zone', 'date']);

const pastDeadline = (deadline?: number) => deadline !== undefined && Date.now() >= deadline;

/**
 * Check every rule against the catalog and resolve how to delete in batches. Throws one
 * ConfigError (exit 2) naming every bad rule: a missing table or column will not appear by
 * retrying, the config (or the schema) has to change.
 */
export async function resolveRules(client: pg.ClientBase, rules: readonly CleanupRule[], options: { dryRun: boolean } = { dryRun: false }): Promise<ResolvedRule[]> {
  const issues: string[] = [];
  const out: ResolvedRule[] = [];
  for (const [i, rule] of rules.entries()) {
    const where = `cleanup.rules.${i} ("${rule.name}")`;
    const name = rule.schema ? `${quoteIdent(rule.schema)}.${quoteIdent(rule.table)}` : quoteIdent(rule.table);
    const shown = rule.schema ? `${rule.schema}.${rule.table}` : rule.table;
    const rel = await client.query<{ oid: number; nspname: string; relname: string; relkind: string; can_select: boolean; can_delete: boolean }>(
      `SELECT c.oid, n.nspname, c.relname, c.relkind::text AS relkind,
              has_table_privilege(c.oid, 'SELECT') AS can_select, has_table_privilege(c.oid, 'DELETE') AS can_delete
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.oid = to_regclass($1)`, [name]);
    const r = rel.rows[0];
    if (!r) {
      issues.push(`${where}: table ${shown} does not exist${rule.schema ? '' : ' (in the search_path)'}${rule.table !== rule.table.toLowerCase() ? '; names are case-sensitive' : ''}`);
      continue;
    }
    const display = `${r.nspname}.${r.relname}`;
    if (r.relkind !== 'r' && r.relkind !== 'p') {
      issues.push(`${where}: ${display} is not a table (relkind ${r.relkind})`);
      continue;
    }
    if (!r.can_select || (!options.dryRun && !r.can_delete)) {
      issues.push(`${where}: the connected role may not ${r.can_select ? 'DELETE from' : 'SELECT from'} ${display}`);
      continue;
    }
    const col = await client.query<{ base: string }>(
      `SELECT (CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END)::regtype::text AS base
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
        WHERE a.attrelid = $1 AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped`, [r.oid, rule.timestampColumn]);
    const c = col.rows[0];
    if (!c) {
      issues.push(`${where}: column ${rule.timestampColumn} does not exist in ${display}`);
      continue;
    }
    if (!TIME_TYPES.has(c.base)) {
      issues.push(`${where}: column ${display}.${rule.timestampColumn} is ${c.base}, not a timestamp or date`);
      continue;
    }
    const pk = await client.query<{ attname: string }>(
      `SELECT a.attname
         FROM pg_index i
         CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = $1 AND i.indisprimary
        ORDER BY k.ord`, [r.oid]);
    const key: ResolvedRule['key'] = pk.rows.length > 0
      ? { kind: 'pk', columns: pk.rows.map((p) => p.attname) }
      // ctids repeat across partitions, so a partitioned table without a key needs tableoid too.
      : r.relkind === 'p' ? { kind: 'tableoid-ctid' } : { kind: 'ctid' };
    out.push({ rule, schema: r.nspname, table: r.relname, column: rule.timestampColumn, display, sql: `${quoteIdent(r.nspname)}.${quoteIdent(r.relname)}`, key });
  }
  if (issues.length > 0) throw new ConfigError('cleanup rules do not match the database', issues);
  return out;
}

/** One batch: $1 the cutoff, $2 the batch size. The outer predicate re-checks rows a concurrent update touched. */
export function batchDeleteSql(r: ResolvedRule): string {
  const col = quoteIdent(r.column);
  const expired = `${col} < $1::timestamptz`;
  switch (r.key.kind) {
    case 'ctid':
      return `DELETE FROM ${r.sql} WHERE ctid = ANY(ARRAY(SELECT ctid FROM ${r.sql} WHERE ${expired} LIMIT $2)) AND ${expired}`;
    case 'tableoid-ctid':
      return `DELETE FROM ${r.sql} WHERE (tableoid, ctid) IN (SELECT tableoid, ctid FROM ${r.sql} WHERE ${expired} LIMIT $2) AND ${expired}`;
    case 'pk': {
      const cols = r.key.columns.map(quoteIdent).join(', ');
      return `DELETE FROM ${r.sql} WHERE (${cols}) IN (SELECT ${cols} FROM ${r.sql} WHERE ${expired} LIMIT $2) AND ${expired}`;
    }
  }
}

function describeDbError(err: unknown, r: ResolvedRule, lockTimeout?: string): string {
  const code = (err as { code?: string }).code;
  if (code === '55P03') return `could not lock ${r.display} within lock_timeout${lockTimeout ? ` (${lockTimeout})` : ''}: another transaction holds a conflicting lock; the next run continues`;
  if (code === '57014') return `a batch on ${r.display} was cancelled by statement_timeout; lower batchSize or add an index on ${r.column}`;
  return `${r.display}: ${errorMessage(err)}`;
}

/**
 * Delete (or, in a dry run, count) the expired rows of every rule. The cutoff is fixed once per
 * rule, so the count a dry run reports is exactly what a run at that moment deletes. A failing
 * rule is reported in its result and the others still run.
 */
export async function deleteExpiredRows(client: pg.ClientBase, rules: readonly ResolvedRule[], options: RunOptions): Promise<RowRuleResult[]> {
  const log = options.logger;
  const lockTimeout = (await client.query<{ v: string }>("SELECT current_setting('lock_timeout') AS v")).rows[0]?.v;
  const results: RowRuleResult[] = [];
  for (const r of rules) {
    const started = performance.now();
    const res: RowRuleResult = { rule: r.rule.name, table: r.display, deleted: 0, complete: false, batches: 0, durationMs: 0 };
    results.push(res);
    try {
      // Fractional days are allowed (0.5 = 12 hours), hence no make_interval(days => int).
      // As text, so the microseconds survive the round trip.
      const cutoff = (await client.query<{ cutoff: string }>("SELECT (now() - $1::float8 * interval '1 day')::text AS cutoff", [r.rule.olderThanDays])).rows[0]!.cutoff;
      if (options.dryRun) {
        const n = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${r.sql} WHERE ${quoteIdent(r.column)} < $1::timestamptz`, [cutoff]);
        res.deleted = Number(n.rows[0]?.n ?? 0);
        res.complete = true;
        log?.info(`dry run: ${res.deleted} row(s) of ${r.display} would be deleted`, { rule: r.rule.name, cutoff });
      } else {
        const sql = batchDeleteSql(r);
        for (;;) {
          if (pastDeadline(options.deadline)) {
            log?.warn(`stopping ${r.display} at the deadline; the next run continues`, { rule: r.rule.name, deleted: res.deleted });
            break;
          }
          // Autocommit: each batch commits on its own and releases its locks at once.
          const d = await client.query(sql, [cutoff, r.rule.batchSize]);
          res.batches++;
          res.deleted += d.rowCount ?? 0;
          if ((d.rowCount ?? 0) < r.rule.batchSize) {
            res.complete = true;
            break;
          }
        }
        log?.info(`deleted ${res.deleted} row(s) of ${r.display}`, { rule: r.rule.name, batches: res.batches, complete: res.complete, cutoff });
      }
    } catch (err) {
      res.error = describeDbError(err, r, lockTimeout);
      log?.error(`cleanup rule "${r.rule.name}" failed: ${res.error}`, { deleted: res.deleted });
    }
    res.durationMs = Math.round(performance.now() - started);
  }
  return results;
}

/** Check that every function exists and takes no arguments; throws one ConfigError naming every bad name. */
export async function resolveFunctions(client: pg.ClientBase, names: readonly string[]): Promise<ResolvedFunction[]> {
  const issues: string[] = [];
  const out: ResolvedFunction[] = [];
  for (const [i, name] of names.entries()) {
    const r = await client.query<{ nspname: string; proname: string; prokind: string }>(
      `SELECT n.nspname, p.proname, p.prokind::text AS prokind
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE p.oid = to_regprocedure($1)`, [`${quoteIdent(name)}()`]);
    const f = r.rows[0];
    if (!f) {
      issues.push(`cleanup.callFunctions.${i}: function ${name}() does not exist (with no arguments, in the search_path)`);
      continue;
    }
    const qualified = `${quoteIdent(f.nspname)}.${quoteIdent(f.proname)}()`;
    if (f.prokind !== 'f' && f.prokind !== 'p') {
      issues.push(`cleanup.callFunctions.${i}: ${f.nspname}.${f.proname} is an aggregate or window function`);
      continue;
    }
    out.push({ name, display: `${f.nspname}.${f.proname}()`, sql: f.prokind === 'p' ? `CALL ${qualified}` : `SELECT ${qualified} AS result` });
  }
  if (issues.length > 0) throw new ConfigError('cleanup functions do not match the database', issues);
  return out;
}

/** Call each function in its own statement; not in a dry run, not after the deadline. */
export async function callFunctions(client: pg.ClientBase, fns: readonly ResolvedFunction[], options: RunOptions): Promise<FunctionResult[]> {
  const results: FunctionResult[] = [];
  for (const f of fns) {
    if (options.dryRun || pastDeadline(options.deadline)) {
      results.push({ name: f.name, called: false });
      continue;
    }
    const started = performance.now();
    try {
      const r = await client.query<{ result?: unknown }>(f.sql);
      results.push({ name: f.name, called: true, result: r.rows[0]?.result ?? null, durationMs: Math.round(performance.now() - started) });
      options.logger?.info(`called ${f.display}`, { result: r.rows[0]?.result });
    } catch (err) {
      const error = `${f.display}: ${errorMessage(err)}`;
      results.push({ name: f.name, called: false, error, durationMs: Math.round(performance.now() - started) });
      options.logger?.error(`cleanup function failed: ${error}`);
    }
  }
  return results;
}

/** VACUUM (ANALYZE) each rule's table once. VACUUM cannot run in a transaction: one statement each, autocommit. */
export async function vacuumAnalyze(client: pg.ClientBase, rules: readonly ResolvedRule[], options: RunOptions): Promise<VacuumResult[]> {
  const results: VacuumResult[] = [];
  const tables = new Map(rules.map((r) => [r.display, r.sql]));
  for (const [table, sql] of tables) {
    if (options.dryRun || pastDeadline(options.deadline)) {
      results.push({ table, done: false });
      continue;
    }
    const started = performance.now();
    try {
      await client.query(`VACUUM (ANALYZE) ${sql}`);
      results.push({ table, done: true, durationMs: Math.round(performance.now() - started) });
    } catch (err) {
      const error = (err as { code?: string }).code === '55P03' ? `could not lock ${table} within lock_timeout` : `${table}: ${errorMessage(err)}`;
      results.push({ table, done: false, error, durationMs: Math.round(performance.now() - started) });
      options.logger?.error(`VACUUM (ANALYZE) failed: ${error}`);
    }
  }
  return results;
}
