// Everything that leaves the process (logs, alerts, errors, JSON output) goes through here.
// Credentials are masked where they can be credentials, not wherever their letters occur: a password
// that is an ordinary word (`users`) must not turn `001_create_users` into `001_create_***`.
// - Patterns catch credentials we were never told about (URL user-info, password=..., PASSWORD '...',
//   Slack webhook paths); they apply to every output.
// - Known secret values (registered at runtime) are masked in messages (errors, driver and tool
//   output, log lines, alerts) wherever they stand as a whole token, since those may echo anything.
// - A command's result document (redact) holds names and SQL, not messages: a known secret that looks
//   like a name is masked there only as a whole value or inside the patterns' credential contexts.

const knownSecrets = new Set<string>();
const tokenPatterns = new Map<string, RegExp>();

/** Register a secret value so it is masked wherever it is a credential. Short values are ignored (too many false hits). */
export function registerSecret(value: string | undefined | null): void {
  if (typeof value !== 'string' || value.length < 4) return;
  knownSecrets.add(value);
  // Also the URL-encoded form, as it appears inside connection strings.
  const encoded = encodeURIComponent(value);
  if (encoded !== value) knownSecrets.add(encoded);
}

const SECRET_KEY = /pass(word)?|secret|token|webhook|credential|authorization|api[-_]?key|private[-_]?key/i;
const WORD_CHAR = /[\p{L}\p{N}_$]/u;
/** A secret that could also be a name (an identifier, a word): masked in result documents only as a credential. */
const NAME_LIKE = /^[\p{L}\p{N}_$]+$/u;

const PATTERNS: Array<[RegExp, string]> = [
  // scheme://user:password@host -> scheme://user:***@host
  [/\b([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*):[^@/\s]*@/gi, '$1:***@'],
  // password=... in libpq keyword strings and query strings
  [/\b(password|passwd|pwd)=([^\s&;]+)/gi, '$1=***'],
  // "password": "..." in JSON echoed as text
  [/("(?:password|passwd|pwd|secret)"\s*:\s*)"(?:[^"\\]|\\.)*"/gi, '$1"***"'],
  // CREATE/ALTER ROLE ... PASSWORD '...' in SQL echoed by an error or shown by a dry run
  [/\b(PASSWORD\s+)'(?:[^']|'')*'/gi, "$1'***'"],
  // Slack incoming webhooks
  [/https:\/\/hooks\.slack(-gov)?\.com\/[^\s"'<>]+/gi, 'https://hooks.slack.com/***'],
];

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The secret as a whole token: not glued to letters, digits or `_` on a side where it has one itself. */
function tokenPattern(secret: string): RegExp {
  let re = tokenPatterns.get(secret);
  if (!re) {
    const before = WORD_CHAR.test(secret[0]!) ? '(?<![\\p{L}\\p{N}_$])' : '';
    const after = WORD_CHAR.test(secret.at(-1)!) ? '(?![\\p{L}\\p{N}_$])' : '';
    re = new RegExp(`${before}${escapeRegExp(secret)}${after}`, 'gu');
    tokenPatterns.set(secret, re);
  }
  return re;
}

/** Longest first, so a secret containing another is masked whole. */
function secretsLongestFirst(): string[] {
  return [...knownSecrets].sort((a, b) => b.length - a.length);
}

function applyPatterns(input: string): string {
  let out = input;
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/** A message (error, driver or tool output, log line): patterns, and every known secret standing as a token. */
export function redactString(input: string): string {
  let out = input;
  for (const secret of secretsLongestFirst()) {
    if (out.includes(secret)) out = out.replace(tokenPattern(secret), '***');
  }
  return applyPatterns(out);
}

/** A value of a result document (a name, SQL): patterns; a known secret only where it cannot be a name. */
function redactOutputString(input: string): string {
  if (knownSecrets.has(input)) return '***';
  let out = input;
  for (const secret of secretsLongestFirst()) {
    if (!NAME_LIKE.test(secret) && out.includes(secret)) out = out.replace(tokenPattern(secret), '***');
  }
  return applyPatterns(out);
}

function redactDeep<T>(value: T, text: (s: string) => string, depth: number): T {
  if (depth > 20) return '[too deep]' as unknown as T;
  if (typeof value === 'string') return text(value) as unknown as T;
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return redactString(value.message) as unknown as T;
  if (Array.isArray(value)) return (value as unknown[]).map((v) => redactDeep(v, text, depth + 1)) as unknown as T;
  if (value instanceof Date) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    out[key] = SECRET_KEY.test(key) && v !== undefined && v !== null && typeof v !== 'boolean' && typeof v !== 'number' ? '***' : redactDeep(v, text, depth + 1);
  }
  return out as T;
}

/**
 * A command's result document (`--json`, and the text printed from it): deep copy with credentials
 * masked and values under secret-looking keys masked; names and SQL otherwise intact.
 */
export function redact<T>(value: T): T {
  return redactDeep(value, redactOutputString, 0);
}

/** Log fields and alerts (messages that may echo a driver or tool): every string as redactString, secret keys masked. */
export function redactFields<T>(value: T): T {
  return redactDeep(value, redactString, 0);
}

/** The safe display form of a connection: postgres://user:***@host:5432/db */
export function displayConnection(c: { user?: string | undefined; host?: string | undefined; port?: number | undefined; database?: string | undefined }): string {
  const user = c.user ? `${encodeURIComponent(c.user)}:***@` : '';
  return `postgres://${user}${c.host ?? 'localhost'}:${c.port ?? 5432}/${c.database ?? ''}`;
}
