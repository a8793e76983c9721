// Everything that leaves the process (logs, alerts, errors, JSON output) goes through here.
// Two layers: exact secret values registered at runtime (passwords, webhook URLs) and patterns
// that catch secrets we were never told about (credentials inside URLs, Slack webhook paths).

const knownSecrets = new Set<string>();

/** Register a secret value so it is masked wherever it appears. Short values are ignored (too many false hits). */
export function registerSecret(value: string | undefined | null): void {
  if (typeof value !== 'string' || value.length < 4) return;
  knownSecrets.add(value);
  // Also the URL-encoded form, as it appears inside connection strings.
  const encoded = encodeURIComponent(value);
  if (encoded !== value) knownSecrets.add(encoded);
}

const SECRET_KEY = /pass(word)?|secret|token|webhook|credential|authorization|api[-_]?key|private[-_]?key/i;

const PATTERNS: Array<[RegExp, string]> = [
  // scheme://user:password@host -> scheme://user:***@host
  [/\b([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*):[^@/\s]*@/gi, '$1:***@'],
  // password=... in libpq keyword strings and query strings
  [/\b(password|passwd|pwd)=([^\s&;]+)/gi, '$1=***'],
  // CREATE/ALTER ROLE ... PASSWORD '...' in SQL echoed by an error
  [/\b(PASSWORD\s+)'(?:[^']|'')*'/gi, "$1'***'"],
  // Slack incoming webhooks
  [/https:\/\/hooks\.slack(-gov)?\.com\/[^\s"'<>]+/gi, 'https://hooks.slack.com/***'],
];

export function redactString(input: string): string {
  let out = input;
  // Longest first, so a secret containing another is masked whole.
  for (const secret of [...knownSecrets].sort((a, b) => b.length - a.length)) {
    if (out.includes(secret)) out = out.split(secret).join('***');
  }
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/** Deep copy with every string redacted and values under secret-looking keys masked. */
export function redact<T>(value: T, depth = 0): T {
  if (depth > 20) return '[too deep]' as unknown as T;
  if (typeof value === 'string') return redactString(value) as unknown as T;
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return redactString(value.message) as unknown as T;
  if (Array.isArray(value)) return (value as unknown[]).map((v) => redact(v, depth + 1)) as unknown as T;
  if (value instanceof Date) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    out[key] = SECRET_KEY.test(key) && v !== undefined && v !== null && typeof v !== 'boolean' && typeof v !== 'number' ? '***' : redact(v, depth + 1);
  }
  return out as T;
}

/** The safe display form of a connection: postgres://user:***@host:5432/db */
export function displayConnection(c: { user?: string | undefined; host?: string | undefined; port?: number | undefined; database?: string | undefined }): string {
  const user = c.user ? `${encodeURIComponent(c.user)}:***@` : '';
  return `postgres://${user}${c.host ?? 'localhost'}:${c.port ?? 5432}/${c.database ?? ''}`;
}
