import { describe, expect, it } from 'vitest';
import { createTextLogger } from '../../../../functions/core/logger.ts';
import { displayConnection, redact, redactFields, redactString, registerSecret } from '../../../../functions/core/redact.ts';
import { StderrAlerter, alertSubject } from '../../../../functions/core/alerts/alerter.ts';

describe('redaction', () => {
  it('masks the password inside any URL', () => {
    expect(redactString('connect postgres://app:s3cr3t%21@db:5432/app failed')).toBe('connect postgres://app:***@db:5432/app failed');
    expect(redactString('postgresql://u:p@h/d?sslmode=require')).toBe('postgresql://u:***@h/d?sslmode=require');
  });

  it('masks password= keywords, SQL PASSWORD literals and Slack webhooks', () => {
    expect(redactString('host=h password=abc123 dbname=d')).toBe('host=h password=*** dbname=d');
    expect(redactString("CREATE ROLE app LOGIN PASSWORD 'it''s secret'")).toBe("CREATE ROLE app LOGIN PASSWORD '***'");
    expect(redactString('posting to https://hooks.slack.com/services/T000/B000/XXXX')).toBe('posting to https://hooks.slack.com/***');
  });

  it('masks registered secret values wherever they appear, encoded or not', () => {
    registerSecret('pa ss/word!');
    expect(redactString('the value pa ss/word! and pa%20ss%2Fword!')).toBe('the value *** and ***');
  });

  it('masks a password that is an ordinary word where it is a credential, and leaves names and SQL intact', () => {
    registerSecret('users');
    // messages (errors, driver and tool output) mask it as a whole token, never inside a name
    expect(redactString('migrating up 001_create_users.sql')).toBe('migrating up 001_create_users.sql');
    expect(redactString('relation "users" does not exist; password users rejected')).toBe('relation "***" does not exist; password *** rejected');
    expect(redactString('could not connect with postgres://app:users@db/app or host=db password=users')).toBe('could not connect with postgres://app:***@db/app or host=db password=***');
    // result documents keep names and SQL; the credential contexts are still masked
    const doc = { pending: [{ name: '001_create_users' }, { name: '003_create_password_reset_tokens' }], sql: 'CREATE TABLE users (id int);\nALTER ROLE app PASSWORD \'users\';' };
    expect(redact(doc)).toEqual({ ...doc, sql: "CREATE TABLE users (id int);\nALTER ROLE app PASSWORD '***';" });
    expect(redact({ url: 'postgres://app:users@db/app', value: 'users', note: '{"password": "users"}' })).toEqual({ url: 'postgres://app:***@db/app', value: '***', note: '{"password": "***"}' });
    // log fields and alerts are messages
    expect(redactFields({ error: 'role "users" failed', table: 'public.users_archive' })).toEqual({ error: 'role "***" failed', table: 'public.users_archive' });
  });

  it('masks a secret that cannot be a name (a webhook URL, a password with punctuation) anywhere, result documents included', () => {
    registerSecret('http://127.0.0.1:9/services/T0/B0/abc');
    registerSecret('p@ss:w0rd!');
    expect(redact({ summary: 'posting to http://127.0.0.1:9/services/T0/B0/abc failed', v: 'x p@ss:w0rd! y' })).toEqual({ summary: 'posting to *** failed', v: 'x *** y' });
    expect(redactString('echo p@ss:w0rd!')).toBe('echo ***');
  });

  it('masks values under secret-looking keys in structures', () => {
    expect(redact({ user: 'app', password: 'x1', nested: { webhookUrl: 'https://example.com/x', count: 3 } }))
      .toEqual({ user: 'app', password: '***', nested: { webhookUrl: '***', count: 3 } });
  });

  it('prints connections as postgres://user:***@host:port/db', () => {
    expect(displayConnection({ user: 'app', host: 'db.internal', port: 5432, database: 'auth' })).toBe('postgres://app:***@db.internal:5432/auth');
  });

  it('the text logger and the stderr alerter never write a registered secret', async () => {
    registerSecret('TopSecretValue42');
    const out: string[] = [];
    const log = createTextLogger({ write: (l) => out.push(l) });
    log.info('connecting with TopSecretValue42', { url: 'postgres://a:TopSecretValue42@h/d', password: 'TopSecretValue42' });
    log.error(new Error('boom TopSecretValue42').message);
    await new StderrAlerter((l) => out.push(l)).send({ severity: 'critical', job: 'x', database: 'd', environment: 'e', summary: 'failed with TopSecretValue42' });
    expect(out.join('')).not.toContain('TopSecretValue42');
    expect(out).toHaveLength(3);
  });

  it('keeps SNS subjects within 100 printable ASCII characters', () => {
    const s = alertSubject({ severity: 'warning', job: 'health', database: 'auth', environment: 'prod', summary: `ünïcode ${'x'.repeat(200)}` });
    expect(s.length).toBe(100);
    expect(s).toMatch(/^[\x20-\x7e]+$/);
    expect(s.endsWith('...')).toBe(true);
  });
});
