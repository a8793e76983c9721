import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSettings, parseFileConfig } from '../../../../functions/core/config.ts';
import { ConfigError } from '../../../../functions/core/errors.ts';

function configFile(body: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgops-cfg-'));
  const file = join(dir, 'pgops.json');
  writeFileSync(file, typeof body === 'string' ? body : JSON.stringify(body));
  return file;
}

function issuesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).exitCode).toBe(2);
    return (err as ConfigError).issues;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('fills every documented default when no file is given', () => {
    const s = loadSettings({}, { DATABASE_URL: 'postgres://u:p@h:5432/d' }, '/repo');
    expect(s.migrationsDir).toBe('/repo/migrations');
    expect(s.config).toMatchObject({
      environment: 'default',
      database: { lockTimeoutMs: 5000, statementTimeoutMs: 0 },
      migrate: { lockWaitSeconds: 60 },
      backup: { inlineMaxBytes: 10 * 1024 ** 3 },
      health: { maxBackupAgeHours: 26, minBackupSizeRatio: 0.5, maxRestoreTestAgeDays: 8, longRunningQuerySeconds: 300, deadTupleRatioWarn: 0.2, maxDailyGrowthRatio: 0.1, alertRepeatHours: 24 },
      retention: { keepLast: 7, keepDaily: 7, keepWeekly: 4, keepMonthly: 12 },
      cleanup: { rules: [], callFunctions: [], vacuumAnalyze: false },
    });
  });

  it('lets flags override the environment', () => {
    const s = loadSettings({ databaseUrl: 'postgres://a@flag/db', dir: '/m', storage: 'file:///tmp/x' }, { DATABASE_URL: 'postgres://a@env/db', PGOPS_STORAGE: 's3://b/p' });
    expect(s.databaseUrl).toBe('postgres://a@flag/db');
    expect(s.storage).toBe('file:///tmp/x');
    expect(s.migrationsDir).toBe('/m');
  });

  it('takes --database-id over PGOPS_DATABASE_ID, and names the flag when it is unusable', () => {
    expect(loadSettings({ databaseId: 'auth_prod' }, { PGOPS_DATABASE_ID: 'env_id' }).databaseId).toBe('auth_prod');
    expect(loadSettings({}, { PGOPS_DATABASE_ID: 'env_id' }).databaseId).toBe('env_id');
    expect(issuesOf(() => loadSettings({ databaseId: 'my db' }, {}))).toEqual(['--database-id / PGOPS_DATABASE_ID: letters, digits, dot, dash and underscore only']);
  });

  it('refuses PGOPS_DATABASE_SSLMODE=allow, saying it is not supported', () => {
    expect(issuesOf(() => loadSettings({}, { PGOPS_DATABASE_SSLMODE: 'allow' }))).toEqual(['PGOPS_DATABASE_SSLMODE: one of disable, prefer, require, verify-ca, verify-full (allow is not supported)']);
  });

  it('names a URL part that is not valid percent-encoding, never its value', () => {
    const issues = issuesOf(() => loadSettings({ databaseUrl: 'postgres://u:50%off@db/app%zz' }, {}));
    expect(issues).toEqual([
      '--database-url / DATABASE_URL: the password is not valid percent-encoding: encode % as %25',
      '--database-url / DATABASE_URL: the database name is not valid percent-encoding: encode % as %25',
    ]);
    expect(issues.join('\n')).not.toContain('50%off');
  });

  it('names every bad field at once, across the environment and the file', () => {
    const file = configFile({ environment: '', database: { lockTimeoutMs: 'soon' }, cleanup: { rules: [{ name: 'x', table: 'events; drop table x', timestampColumn: 'at', olderThanDays: 'thirty' }] }, typo: 1 });
    const issues = issuesOf(() => loadSettings({ config: file }, { DATABASE_URL: 'mysql://x', PGOPS_SNS_TOPIC_ARN: 'topic', PGOPS_LOG_LEVEL: 'loud' }));
    const text = issues.join('\n');
    expect(text).toContain('--database-url / DATABASE_URL');
    expect(text).toContain('PGOPS_SNS_TOPIC_ARN');
    expect(text).toContain('PGOPS_LOG_LEVEL');
    expect(text).toContain('config: environment');
    expect(text).toContain('config: database.lockTimeoutMs');
    expect(text).toContain('config: cleanup.rules.0.table');
    expect(text).toContain('config: cleanup.rules.0.olderThanDays');
    expect(text).toMatch(/typo/);
  });

  it('reports a missing or malformed config file by path', () => {
    expect(issuesOf(() => loadSettings({ config: '/nonexistent/pgops.json' }, {})).join()).toMatch(/\/nonexistent\/pgops\.json: not found/);
    expect(issuesOf(() => loadSettings({ config: configFile('{ nope') }, {})).join()).toMatch(/not valid JSON/);
  });

  it('refuses both a URL and a secret id', () => {
    expect(issuesOf(() => loadSettings({}, { DATABASE_URL: 'postgres://h/d', PGOPS_DATABASE_SECRET_ID: 's' })).join()).toMatch(/both set/);
  });

  it('never echoes a value, so a malformed URL with a password is not printed', () => {
    try {
      loadSettings({}, { DATABASE_URL: 'postgre://user:hunter2secret@h/d' });
    } catch (err) {
      expect((err as Error).message).not.toContain('hunter2secret');
      return;
    }
    throw new Error('expected a ConfigError');
  });

  it('accepts a valid cleanup rule and applies its batch default', () => {
    const r = parseFileConfig({ cleanup: { rules: [{ name: 'tokens', table: 'refresh_tokens', timestampColumn: 'expires_at', olderThanDays: 1 }] } });
    expect(r.issues).toEqual([]);
    expect(r.config?.cleanup.rules[0]).toMatchObject({ batchSize: 5000, olderThanDays: 1 });
  });
});

describe('config for containers', () => {
  it('reads the config inline from PGOPS_CONFIG_JSON, validated like the file', () => {
    const s = loadSettings({}, { PGOPS_CONFIG_JSON: JSON.stringify({ environment: 'prod', retention: { keepLast: 3 } }) });
    expect(s.config.environment).toBe('prod');
    expect(s.config.retention.keepLast).toBe(3);
    expect(issuesOf(() => loadSettings({}, { PGOPS_CONFIG_JSON: '{"retention":{"keepLast":"x"}}' })).join()).toMatch(/PGOPS_CONFIG_JSON: retention\.keepLast/);
    expect(issuesOf(() => loadSettings({}, { PGOPS_CONFIG_JSON: '{nope' })).join()).toMatch(/PGOPS_CONFIG_JSON: not valid JSON/);
  });

  it('takes an injected RDS-shaped secret, and refuses two database sources', async () => {
    const { resolveTarget } = await import('../../../../functions/core/db.ts');
    const json = JSON.stringify({ host: 'db.internal', port: 5432, username: 'app', password: 'Inj3cted-Secret', dbname: 'auth' });
    const s = loadSettings({}, { PGOPS_DATABASE_SECRET_JSON: json });
    const t = await resolveTarget(s);
    expect(t).toMatchObject({ host: 'db.internal', user: 'app', database: 'auth', sslMode: 'require' });
    expect(t.display).toBe('postgres://app:***@db.internal:5432/auth');
    expect(issuesOf(() => loadSettings({}, { PGOPS_DATABASE_SECRET_JSON: json, PGOPS_DATABASE_SECRET_ID: 'x' })).join()).toMatch(/PGOPS_DATABASE_SECRET_ID and PGOPS_DATABASE_SECRET_JSON are both set: use one/);
    await expect(resolveTarget(loadSettings({}, { PGOPS_DATABASE_SECRET_JSON: '{"host":"h"}' }))).rejects.toThrow(/PGOPS_DATABASE_SECRET_JSON is not in the RDS shape/);
  });
});
