import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FanoutAlerter, type Alert } from '../../../../../functions/core/alerts/alerter.ts';
import { createTextLogger } from '../../../../../functions/core/logger.ts';
import { redactString } from '../../../../../functions/core/redact.ts';
import { parseWebhookSecret, renderSlackMessage, resolveSlackWebhook, SlackAlerter, SlackError } from '../../../../../functions/core/alerts/slack.ts';

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;
let server: Server;
let base = '';
let handle: Handler = (_q, res) => res.end('ok');
const bodies: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => { bodies.push(body); handle(req, res, body); });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  bodies.length = 0;
  handle = (_q, res) => res.end('ok');
});

const ALERT: Alert = {
  severity: 'critical', job: 'health', database: 'app', environment: 'prod',
  summary: 'backup-age critical: no backup of "app" <in> s3://b & more',
  details: { runId: 'r-42', overall: 'critical', checks: [{ name: 'backup-age', status: 'critical', summary: 'no backup' }, { name: 'bloat', status: 'warning', summary: 'ratio 0.3' }] },
  time: '2026-11-22T05:00:00.000Z',
};

describe('Block Kit rendering', () => {
  it('has a header with severity, environment, database and job; fields; the checks; context with time and run id; a text fallback', () => {
    const m = renderSlackMessage(ALERT);
    expect(m.text).toBe('[CRITICAL] pgops health prod/app: backup-age critical: no backup of "app" <in> s3://b & more');
    expect(m.blocks[0]).toEqual({ type: 'header', text: { type: 'plain_text', text: ':red_circle: CRITICAL · prod · app · health', emoji: true } });
    expect(m.blocks[1]).toEqual({ type: 'section', text: { type: 'mrkdwn', text: 'backup-age critical: no backup of "app" &lt;in&gt; s3://b &amp; more' } });
    const fields = (m.blocks[2] as { fields: Array<{ text: string }> }).fields.map((f) => f.text);
    expect(fields).toEqual(['*Severity*\nCRITICAL', '*Environment*\nprod', '*Database*\napp', '*Job*\nhealth', '*overall*\ncritical']);
    expect((m.blocks[3] as { text: { text: string } }).text.text).toBe(':red_circle: *backup-age* CRITICAL: no backup\n:large_orange_circle: *bloat* WARNING: ratio 0.3');
    expect(m.blocks.at(-1)).toEqual({ type: 'context', elements: [{ type: 'mrkdwn', text: '2026-11-22T05:00:00.000Z · run r-42 · pgops' }] });
  });

  it('keeps within Block Kit limits and redacts secrets', () => {
    const m = renderSlackMessage({ ...ALERT, summary: `x${'y'.repeat(5000)} postgres://u:hunter22@h/d`, environment: 'e'.repeat(200), details: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])) });
    expect((m.blocks[0] as { text: { text: string } }).text.text.length).toBeLessThanOrEqual(150);
    expect((m.blocks[2] as { fields: unknown[] }).fields).toHaveLength(10);
    expect(JSON.stringify(m)).not.toContain('hunter22');
    expect(renderSlackMessage({ ...ALERT, severity: 'resolved', summary: 'pw postgres://u:hunter22@h/d' }).text).toBe('[RESOLVED] pgops health prod/app: pw postgres://u:***@h/d');
  });
});

describe('SlackAlerter', () => {
  it('posts the Block Kit message as JSON', async () => {
    await new SlackAlerter({ webhookUrl: `${base}/services/T1/B1/okSecret1` }).send(ALERT);
    expect(bodies).toHaveLength(1);
    expect(JSON.parse(bodies[0]!)).toEqual(renderSlackMessage(ALERT));
  });

  it('honours one 429 Retry-After, then gives up', async () => {
    let calls = 0;
    handle = (_q, res) => {
      calls++;
      if (calls === 1) { res.writeHead(429, { 'retry-after': '2' }); res.end('rate_limited'); } else res.end('ok');
    };
    const waits: number[] = [];
    await new SlackAlerter({ webhookUrl: `${base}/services/T1/B1/rl`, sleep: async (ms) => { waits.push(ms); } }).send(ALERT);
    expect(waits).toEqual([2000]);
    expect(calls).toBe(2);

    handle = (_q, res) => { res.writeHead(429, { 'retry-after': '1' }); res.end('rate_limited'); };
    await expect(new SlackAlerter({ webhookUrl: `${base}/services/T1/B1/rl`, sleep: async () => {} }).send(ALERT)).rejects.toThrow('Slack answered 429: rate_limited');
    await expect(new SlackAlerter({ webhookUrl: `${base}/services/T1/B1/rl`, maxRetryAfterMs: 500 }).send(ALERT)).rejects.toThrow(/rate limited the webhook \(retry after 1 s/);
  });

  it('a 500 or a hanging Slack fails the send with a message that never names the webhook', async () => {
    const url = `${base}/services/T1/B1/hangSecret42`;
    handle = (_q, res) => { res.writeHead(500); res.end('internal_error'); };
    const e1 = await new SlackAlerter({ webhookUrl: url }).send(ALERT).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(SlackError);
    expect((e1 as Error).message).toBe('Slack answered 500: internal_error');

    handle = () => { /* never answers */ };
    const t0 = Date.now();
    const e2 = await new SlackAlerter({ webhookUrl: url, timeoutMs: 150 }).send(ALERT).catch((e: unknown) => e);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect((e2 as Error).message).toBe('Slack did not answer within 150 ms');

    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const e3 = await new SlackAlerter({ webhookUrl: `http://127.0.0.1:${port}/services/T/B/refusedSecret` }).send(ALERT).catch((e: unknown) => e);
    expect((e3 as Error).message).toBe('could not reach Slack: ECONNREFUSED');

    // FanoutAlerter logs the failure; with Slack as the only destination it also rejects (so a
    // caller that records what it sent can retry), and neither says the URL.
    const lines: string[] = [];
    const logger = createTextLogger({ write: (l) => lines.push(l) });
    handle = (_q, res) => { res.writeHead(500); res.end(`bad ${url}`); };
    const e4 = await new FanoutAlerter([new SlackAlerter({ webhookUrl: url })], logger).send(ALERT).catch((e: unknown) => e);
    expect((e4 as Error).message).toMatch(/^Slack answered 500/);
    expect((e4 as Error).message).not.toContain('hangSecret42');
    expect(lines.join('')).toContain('could not send alert through SlackAlerter');
    expect(lines.join('')).not.toContain('hangSecret42');
    expect(redactString(`x ${url}`)).toBe('x ***');
    expect(JSON.stringify(new SlackAlerter({ webhookUrl: url }))).not.toContain('hangSecret42');
  });

  it('looks a lazy webhook up on the first send, keeps it, and retries a failed lookup', async () => {
    let lookups = 0;
    const alerter = new SlackAlerter({ webhookUrl: async () => { lookups++; if (lookups === 1) throw new Error('secret unavailable'); return `${base}/services/T/B/lazySecret`; } });
    await expect(alerter.send(ALERT)).rejects.toThrow('secret unavailable');
    await alerter.send(ALERT);
    await alerter.send(ALERT);
    expect(lookups).toBe(2);
    expect(bodies).toHaveLength(2);
    await expect(new SlackAlerter({ webhookUrl: async () => undefined }).send(ALERT)).rejects.toThrow('no Slack webhook URL configured');
  });

});

describe('webhook from a secret', () => {
  const sm = mockClient(SecretsManagerClient);
  beforeEach(() => sm.reset());

  it('accepts the URL itself or JSON { url }', async () => {
    expect(parseWebhookSecret('  https://hooks.slack.com/services/T/B/plainSecret9 \n', 's')).toBe('https://hooks.slack.com/services/T/B/plainSecret9');
    sm.on(GetSecretValueCommand, { SecretId: 'pgops/slack' }).resolves({ SecretString: JSON.stringify({ url: 'https://hooks.slack.com/services/T/B/jsonSecret77' }) });
    const url = await resolveSlackWebhook({ slackWebhookSecretId: 'pgops/slack' }, () => new SecretsManagerClient({ region: 'eu-west-1' }));
    expect(url).toBe('https://hooks.slack.com/services/T/B/jsonSecret77');
    expect(redactString(`got ${url}`)).toBe('got ***');
    expect(await resolveSlackWebhook({})).toBeUndefined();
  });

  it('a malformed secret is named, its value never shown', () => {
    expect(() => parseWebhookSecret('{"webhook":"notAUrlSecret55"}', 'pgops/slack')).toThrow(/^Slack webhook secret pgops\/slack holds neither a URL nor JSON/);
    try { parseWebhookSecret('{"webhook":"notAUrlSecret55"}', 'pgops/slack'); } catch (e) { expect((e as Error).message).not.toContain('notAUrlSecret55'); }
  });
});
