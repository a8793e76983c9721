// The example config shipped at the repository root must stay loadable, and its cleanup rules
// must point at tables and columns the example migrations actually create.
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadSettings, parseFileConfig, type FileConfig } from '../../functions/core/config.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CONFIG_FILE = join(ROOT, 'pgops.example.json');
const MIGRATIONS = join(ROOT, 'migrations');

function loadExample(): FileConfig {
  const r = parseFileConfig(JSON.parse(readFileSync(CONFIG_FILE, 'utf8')), 'pgops.example.json');
  expect(r.issues).toEqual([]);
  return r.config!;
}

/** The up sections of every example migration, joined. */
function migrationsUpSql(): string {
  return readdirSync(MIGRATIONS)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((f) => readFileSync(join(MIGRATIONS, f), 'utf8').split(/^\s*--\s*Down Migration/im)[0]!)
    .join('\n');
}

/** Column names of a CREATE TABLE in the example migrations (first word of each definition line). */
function createdColumns(sql: string, table: string): string[] {
  const m = new RegExp(`CREATE TABLE ${table} \\(([\\s\\S]*?)\\n\\);`).exec(sql);
  if (!m) return [];
  return m[1]!.split('\n').map((l) => /^\s*([a-z_][a-z0-9_]*)\s/.exec(l)?.[1]).filter((c): c is string => c !== undefined);
}

describe('pgops.example.json', () => {
  it('validates against the config file schema', () => {
    const config = loadExample();
    expect(config.environment).toBe('staging');
    expect(config.retention).toEqual({ keepLast: 7, keepDaily: 7, keepWeekly: 4, keepMonthly: 12 });
  });

  it('loads through the --config path the CLI uses', () => {
    const settings = loadSettings({ config: 'pgops.example.json' }, {}, ROOT);
    expect(settings.configFile).toBe(CONFIG_FILE);
    expect(settings.config.environment).toBe('staging');
    expect(settings.config.cleanup.rules).toHaveLength(4);
  });

  it('deletes expired tokens and sessions after a day and audit logs after a year', () => {
    const rules = loadExample().cleanup.rules.map((r) => ({ table: r.table, column: r.timestampColumn, days: r.olderThanDays }));
    expect(rules).toEqual([
      { table: 'refresh_tokens', column: 'expires_at', days: 1 },
      { table: 'password_reset_tokens', column: 'expires_at', days: 1 },
      { table: 'user_sessions', column: 'expires_at', days: 1 },
      { table: 'audit_logs', column: 'created_at', days: 365 },
    ]);
  });

  it('fills defaults for what it leaves out, such as the batch size', () => {
    const config = loadExample();
    for (const rule of config.cleanup.rules) expect(rule.batchSize).toBe(5000);
    expect(config.cleanup.rules.map((r) => r.name)).toEqual([
      'expired refresh tokens', 'expired password reset tokens', 'expired sessions', 'audit logs past retention',
    ]);
    expect(config.health.maxBackupAgeHours).toBe(26);
  });

  it('calls the cleanup function the example migrations define', () => {
    const config = loadExample();
    expect(config.cleanup.callFunctions).toEqual(['cleanup_expired_data']);
    expect(migrationsUpSql()).toMatch(/CREATE FUNCTION cleanup_expired_data\(\)/);
  });

  it('targets only tables and timestamp columns the example migrations create', () => {
    const sql = migrationsUpSql();
    for (const rule of loadExample().cleanup.rules) {
      expect(createdColumns(sql, rule.table), `${rule.table}.${rule.timestampColumn}`).toContain(rule.timestampColumn);
    }
  });
});
