// One scan for everything a test captured (CLI stdout/stderr, log lines, alerts, thrown errors):
// no test password, no webhook URL, no connection string with a password (DESIGN.md: "No
// password ... ever appears"). `captured()` checks after every test, and fails a test that
// captured nothing, so a fault test cannot forget to route its output through it.
import { afterEach } from 'vitest';
import { MemoryAlerter } from '../../functions/core/alerts/alerter.ts';
import { createTextLogger, type Logger, type LogLevel } from '../../functions/core/logger.ts';
import type { CliResult } from './cli.ts';

/** A URL whose user-info carries a password that is not masked (`***`). */
const URL_WITH_PASSWORD = /\b[a-z][a-z0-9+.-]*:\/\/[^\s:/?#@'"]+:([^\s@/'"]+)@/gi;
/** libpq keyword form: password=secret. */
const KEYWORD_PASSWORD = /\b(?:password|passwd|pwd)=([^\s&;'"]+)/gi;
const SLACK_WEBHOOK = /hooks\.slack(?:-gov)?\.com\/services\/[A-Za-z0-9]/i;

export interface Leak {
  source: string;
  /** What leaked (never the value itself: a failure message must not leak it either). */
  what: string;
  at: number;
}

/** Every leak in `text`; `secrets` are exact values (passwords, webhook URLs) that must not appear. */
export function findLeaks(source: string, text: string, secrets: readonly string[]): Leak[] {
  const leaks: Leak[] = [];
  secrets.forEach((secret, i) => {
    for (const form of new Set([secret, encodeURIComponent(secret)])) {
      const at = text.indexOf(form);
      if (at >= 0) leaks.push({ source, what: `secret #${i + 1} (${form === secret ? 'as is' : 'URL-encoded'})`, at });
    }
  });
  for (const m of text.matchAll(URL_WITH_PASSWORD)) if (m[1] !== '***') leaks.push({ source, what: 'a connection string with a password', at: m.index });
  for (const m of text.matchAll(KEYWORD_PASSWORD)) if (m[1] !== '***') leaks.push({ source, what: 'password=... in a keyword string', at: m.index });
  const hook = SLACK_WEBHOOK.exec(text);
  if (hook) leaks.push({ source, what: 'a Slack webhook URL', at: hook.index });
  return leaks;
}

/** The text of an error and its causes (message and stack), as a pipeline or a log would show it. */
function errorText(err: unknown, depth = 0): string {
  if (depth > 5 || err === undefined || err === null) return '';
  if (!(err instanceof Error)) return typeof err === 'string' ? err : JSON.stringify(err) ?? '';
  return `${err.name}: ${err.message}\n${err.stack ?? ''}\n${errorText(err.cause, depth + 1)}`;
}

export interface Captured {
  /** Record anything the test captured; `source` names it in a failure. */
  add(source: string, value: unknown): void;
  /** A CLI run's stdout and stderr; returns the result for chaining. */
  cli<R extends CliResult>(result: R, source?: string): R;
  /** A thrown value (message, stack, causes); returns it. */
  error<E>(err: E, source?: string): E;
  /** A logger whose lines are scanned (and returned for assertions). */
  logger(level?: LogLevel): { logger: Logger; lines: string[] };
  /** An alerter whose alerts are scanned. */
  alerter(): MemoryAlerter;
  /** One more value that must never appear (a webhook URL, another password). */
  secret(value: string): void;
  /** This test captures nothing to scan (say why): otherwise a test that captured nothing fails. */
  nothingToScan(reason: string): void;
}

interface Entry { source: string; text: () => string }

/**
 * Register the scan for every test of the file: `secrets()` is read after each test (so it may
 * name a cluster's password that exists only once the cluster has started).
 */
export function captured(secrets: () => ReadonlyArray<string | undefined>): Captured {
  let entries: Entry[] = [];
  const extra: string[] = [];
  let exempt = false;
  const add = (source: string, text: () => string) => { entries.push({ source, text }); };
  afterEach(() => {
    const current = entries;
    const wasExempt = exempt;
    entries = [];
    exempt = false;
    const values = [...secrets(), ...extra].filter((s): s is string => typeof s === 'string' && s.length >= 4);
    if (values.length === 0) throw new Error('output scan: no secret to look for (is the cluster started?)');
    if (current.length === 0 && !wasExempt) throw new Error('output scan: this test captured no output to scan (route CLI results, loggers, alerters and errors through captured())');
    const leaks = current.flatMap((e) => findLeaks(e.source, e.text(), values));
    if (leaks.length > 0) throw new Error(`output scan: secrets in captured output:\n${leaks.map((l) => `  - ${l.what} in ${l.source} at offset ${l.at}`).join('\n')}`);
  });
  return {
    add: (source, value) => add(source, () => (typeof value === 'string' ? value : value instanceof Error ? errorText(value) : JSON.stringify(value) ?? String(value))),
    cli(result, source = 'cli') {
      add(`${source} stdout`, () => result.stdout);
      add(`${source} stderr`, () => result.stderr);
      return result;
    },
    error(err, source = 'thrown error') {
      add(source, () => errorText(err));
      return err;
    },
    logger(level: LogLevel = 'debug') {
      const lines: string[] = [];
      add('logger', () => lines.join(''));
      return { logger: createTextLogger({ level, write: (l) => { lines.push(l); } }), lines };
    },
    alerter() {
      const alerter = new MemoryAlerter();
      add('alerts', () => JSON.stringify(alerter.sent));
      return alerter;
    },
    secret(value) {
      extra.push(value);
    },
    nothingToScan() {
      exempt = true;
    },
  };
}
