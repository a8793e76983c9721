import { describe, expect, it } from 'vitest';
import { createTextLogger } from '../../../../functions/core/logger.ts';
import { displayConnection, redact, redactString, registerSecret } from '../../../../functions/core/redact.ts';
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
