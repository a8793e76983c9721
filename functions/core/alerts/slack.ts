// Slack incoming webhooks: one Block Kit rendering of the alert shape (used by the CLI and the
// notify-slack function), a bounded POST (timeout, one 429 retry), and a webhook URL that is
// registered as a secret and never printed.
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { ClientFactory } from '../aws/clients.ts';
import type { Alert, Alerter, Severity } from './alerter.ts';
import { isDashboardUrl } from './dashboard.ts';
import { ConfigError, PgopsError, errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { redactFields, redactString, registerSecret } from '../redact.ts';

export interface SlackMessage {
  text: string;
  blocks: Array<Record<string, unknown>>;
}

const EMOJI: Record<Severity, string> = { critical: ':red_circle:', warning: ':large_orange_circle:', info: ':large_blue_circle:', resolved: ':large_green_circle:' };
const CHECK_EMOJI: Record<string, string> = { critical: ':red_circle:', warning: ':large_orange_circle:', unknown: ':white_circle:', ok: ':large_green_circle:', info: ':large_blue_circle:' };

/** Slack mrkdwn needs only &, < and > escaped. */
export function escapeMrkdwn(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function cut(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

function scalar(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

interface CheckLine { name?: unknown; status?: unknown; summary?: unknown; was?: unknown }

/** Block Kit: header (severity, environment, database, job), summary, fields, checks, runbook, dashboard link, context (time, run id). */
export function renderSlackMessage(input: Alert, options: { runId?: string; now?: () => Date } = {}): SlackMessage {
  const a = redactFields({ ...input, time: input.time ?? (options.now ?? (() => new Date()))().toISOString() });
  const details = (a.details ?? {});
  const runId = scalar(details.runId) ?? options.runId;
  const sev = a.severity.toUpperCase();
  const header = cut(`${EMOJI[a.severity]} ${sev} · ${a.environment} · ${a.database} · ${a.job}`, 150);
  const blocks: Array<Record<string, unknown>> = [
    { type: 'header', text: { type: 'plain_text', text: header, emoji: true } },
    { type: 'section', text: { type: 'mrkdwn', text: cut(escapeMrkdwn(a.summary), 2900) } },
  ];
  const fields: string[] = [
    `*Severity*\n${sev}`,
    `*Environment*\n${escapeMrkdwn(a.environment)}`,
    `*Database*\n${escapeMrkdwn(a.database)}`,
    `*Job*\n${escapeMrkdwn(a.job)}`,
  ];
  for (const [k, v] of Object.entries(details)) {
    if (fields.length >= 10) break; // Block Kit allows 10 fields per section
    const s = scalar(v);
    if (s === undefined || k === 'runId') continue;
    fields.push(`*${escapeMrkdwn(k)}*\n${cut(escapeMrkdwn(s), 500)}`);
  }
  blocks.push({ type: 'section', fields: fields.map((text) => ({ type: 'mrkdwn', text })) });
  const checks = Array.isArray(details.checks) ? (details.checks as CheckLine[]) : [];
  if (checks.length > 0) {
    const lines = checks.slice(0, 15).map((c) => {
      const status = scalar(c.status) ?? '';
      const was = typeof c.was === 'string' ? ` (was ${c.was})` : '';
      return `${CHECK_EMOJI[status] ?? '•'} *${escapeMrkdwn(scalar(c.name) ?? '?')}* ${status.toUpperCase()}${was}: ${cut(escapeMrkdwn(scalar(c.summary) ?? ''), 300)}`;
    });
    if (checks.length > 15) lines.push(`… and ${checks.length - 15} more`);
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: cut(lines.join('\n'), 2900) } });
  }
  if (a.runbook) {
    const rb = /^https?:\/\//.test(a.runbook) ? `<${a.runbook}|Runbook>` : escapeMrkdwn(a.runbook);
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: `*Runbook:* ${cut(rb, 2800)}` } });
  }
  // Only a link of our own shape: it goes into <url|label> unescaped.
  if (isDashboardUrl(a.dashboard)) {
    const name = a.dashboard.slice(a.dashboard.lastIndexOf('/') + 1);
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: `*Dashboard:* <${a.dashboard}|${name}>` } });
  }
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: escapeMrkdwn(`${a.time}${runId ? ` · run ${runId}` : ''} · pgops`) }] });
  const text = cut(`[${sev}] pgops ${a.job} ${a.environment}/${a.database}: ${a.summary}`, 3000);
  return { text, blocks };
}

export interface SlackPostOptions {
  /** Default 5 s; the whole request, body included. */
  timeoutMs?: number;
  fetch?: typeof fetch;
  /** Longest Retry-After we honour (once); default 30 s. */
  maxRetryAfterMs?: number;
  sleep?: (ms: number) => Promise<void>;
  logger?: Logger;
}

/** A Slack delivery failure; its message never contains the webhook URL. */
export class SlackError extends PgopsError {}

function retryAfterMs(header: string | null, now: number): number {
  if (!header) return 1000;
  const secs = Number(header);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const at = Date.parse(header);
  return Number.isNaN(at) ? 1000 : Math.max(0, at - now);
}

interface SlackAnswer { status: number; retryAfter: string | null; text: string }

async function postOnce(url: string, body: string, o: Required<Pick<SlackPostOptions, 'timeoutMs'>> & SlackPostOptions): Promise<SlackAnswer> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), o.timeoutMs);
  try {
    const res = await (o.fetch ?? fetch)(url, { method: 'POST', headers: { 'content-type': 'application/json; charset=utf-8' }, body, signal: controller.signal });
    // Read the body under the same timer: a server may send headers and then hang.
    const text = await res.text();
    return { status: res.status, retryAfter: res.headers.get('retry-after'), text };
  } catch (err) {
    if (controller.signal.aborted) throw new SlackError(`Slack did not answer within ${o.timeoutMs} ms`);
    // fetch's own message may name the address; keep only the cause's code.
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new SlackError(`could not reach Slack: ${redactString(cause?.code ?? cause?.message ?? errorMessage(err)).replace(url, '***')}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

export async function postToSlack(webhookUrl: string, message: SlackMessage, options: SlackPostOptions = {}): Promise<void> {
  const o = { ...options, timeoutMs: options.timeoutMs ?? 5000 };
  const body = JSON.stringify(message);
  let res = await postOnce(webhookUrl, body, o);
  if (res.status === 429) {
    const wait = retryAfterMs(res.retryAfter, Date.now());
    const max = options.maxRetryAfterMs ?? 30_000;
    if (wait > max) throw new SlackError(`Slack rate limited the webhook (retry after ${Math.round(wait / 1000)} s, more than we wait)`);
    options.logger?.warn('Slack rate limited the webhook; retrying once', { retryAfterMs: wait });
    await (options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms))))(wait);
    res = await postOnce(webhookUrl, body, o);
  }
  if (res.status < 200 || res.status >= 300) {
    const text = redactString(res.text.slice(0, 200)).replace(/\s+/g, ' ').trim();
    throw new SlackError(`Slack answered ${res.status}${text ? `: ${text}` : ''}`);
  }
}

export interface SlackAlerterOptions extends SlackPostOptions {
  /** The URL, or a lookup run on the first send (a Secrets Manager secret) and then kept. */
  webhookUrl: string | (() => Promise<string | undefined>);
  /** Shown in the message context when the alert carries none (details.runId). */
  runId?: string;
  now?: () => Date;
}

/** Posts each alert to a Slack incoming webhook. Throws on failure: FanoutAlerter logs it. */
export class SlackAlerter implements Alerter {
  #url: Promise<string | undefined> | undefined;
  readonly #lookup: () => Promise<string | undefined>;
  readonly #options: SlackAlerterOptions;
  constructor(options: SlackAlerterOptions) {
    const given = options.webhookUrl;
    if (typeof given === 'string') {
      registerSecret(given);
      this.#url = Promise.resolve(given);
    }
    this.#lookup = typeof given === 'string' ? () => Promise.resolve(given) : given;
    this.#options = { ...options, webhookUrl: '***' };
  }
  async send(alert: Alert): Promise<void> {
    const pending = (this.#url ??= this.#lookup());
    let url: string | undefined;
    try {
      url = await pending;
    } catch (err) {
      this.#url = undefined; // look it up again next time
      throw err;
    }
    if (!url) throw new SlackError('no Slack webhook URL configured');
    await postToSlack(url, renderSlackMessage(alert, { runId: this.#options.runId, now: this.#options.now }), this.#options);
  }
  toJSON(): Record<string, unknown> {
    return { type: 'SlackAlerter' };
  }
}

/**
 * The webhook URL held in a secret: either the URL itself or JSON `{ "url": ... }`.
 * Registered as a secret before anything could echo it.
 */
export function parseWebhookSecret(value: string | undefined, secretId: string): string {
  const raw = (value ?? '').trim();
  let url = raw;
  if (raw.startsWith('{')) {
    try {
      const json = JSON.parse(raw) as { url?: unknown };
      url = typeof json.url === 'string' ? json.url.trim() : '';
    } catch {
      url = '';
    }
  }
  registerSecret(raw);
  registerSecret(url);
  if (!/^https?:\/\/[^\s]+$/.test(url)) throw new ConfigError(`Slack webhook secret ${secretId} holds neither a URL nor JSON { "url": "https://hooks.slack.com/..." }`);
  return url;
}

/** PGOPS_SLACK_WEBHOOK_URL, else the secret PGOPS_SLACK_WEBHOOK_SECRET_ID, else none. */
export async function resolveSlackWebhook(settings: { slackWebhookUrl?: string; slackWebhookSecretId?: string }, secrets?: ClientFactory<SecretsManagerClient>): Promise<string | undefined> {
  if (settings.slackWebhookUrl) {
    registerSecret(settings.slackWebhookUrl);
    return settings.slackWebhookUrl;
  }
  const id = settings.slackWebhookSecretId;
  if (!id) return undefined;
  if (!secrets) throw new ConfigError('PGOPS_SLACK_WEBHOOK_SECRET_ID is set but no Secrets Manager client is available');
  let value: string | undefined;
  try {
    const { GetSecretValueCommand } = await import('@aws-sdk/client-secrets-manager');
    value = (await (await secrets()).send(new GetSecretValueCommand({ SecretId: id }))).SecretString;
  } catch (err) {
    throw new SlackError(`could not read the Slack webhook secret ${id}: ${redactString(errorMessage(err))}`, { cause: err });
  }
  return parseWebhookSecret(value, id);
}
