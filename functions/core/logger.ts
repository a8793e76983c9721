import { redactFields, redactString } from './redact.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
export type LogFields = Record<string, unknown>;

/** What every job logs through. Every implementation redacts before writing. */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

function formatValue(v: unknown): string {
  if (typeof v === 'string') return /\s/.test(v) ? JSON.stringify(v) : v;
  if (v instanceof Error) return JSON.stringify(v.message);
  return JSON.stringify(v);
}

/**
 * Human-readable lines on a stream (stderr for the CLI, so `--json` output on stdout stays clean).
 * `write` is injectable so tests can capture every byte.
 */
export function createTextLogger(options: { level?: LogLevel; write?: (line: string) => void; prefix?: string } = {}): Logger {
  const level = options.level ?? 'info';
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const prefix = options.prefix ?? 'pgops';
  const emit = (lvl: Exclude<LogLevel, 'silent'>, message: string, fields?: LogFields): void => {
    if (ORDER[lvl] < ORDER[level]) return;
    const safe = fields ? redactFields(fields) : undefined;
    const tail = safe ? Object.entries(safe).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${formatValue(v)}`).join(' ') : '';
    const tag = lvl === 'info' ? '' : `${lvl}: `;
    write(`${prefix}: ${tag}${redactString(message)}${tail ? ` ${tail}` : ''}\n`);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
