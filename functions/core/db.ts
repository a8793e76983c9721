// Database access: where to connect (a URL or a Secrets Manager secret in the RDS JSON shape),
// TLS, timeouts, application_name=pgops, and errors an operator can act on.
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { ClientFactory } from './aws/clients.ts';
import pg from 'pg';
import * as z from 'zod';
import { SSL_MODES, type FileConfig, type Settings, type SslMode } from './config.ts';
import { ConfigError, ConnectionError, errorMessage } from './errors.ts';
import { displayConnection, redactString, registerSecret } from './redact.ts';

export interface DbTarget {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
  sslMode: SslMode;
  caFile?: string;
  /** postgres://user:***@host:port/db: the only form ever shown. */
  display: string;
}

// An RDS-managed master secret holds only username and password: host, port and dbname may come
// from the settings instead (SecretEndpoint).
const rdsSecretSchema = z.object({
  host: z.string().min(1).optional(),
  port: z.union([z.number().int(), z.string().regex(/^\d+$/)]).optional(),
  username: z.string().min(1),
  password: z.string(),
  dbname: z.string().min(1).optional(),
});

/** How a secret-based connection is completed: TLS, and where to connect when the secret does not say. */
export interface SecretTargetOptions {
  sslMode?: SslMode;
  caFile?: string;
  /** PGOPS_DATABASE_HOST / _PORT / _NAME: each overrides the secret's value (e.g. to go through RDS Proxy). */
  host?: string;
  port?: number;
  database?: string;
}

/** A percent-encoded part of the URL; a bad encoding names the part, never its value. */
function decodePart(value: string, what: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw new ConfigError('invalid configuration', [`--database-url / DATABASE_URL: the ${what} is not valid percent-encoding: encode % as %25`]);
  }
}

export function parseDatabaseUrl(url: string, overrides: { sslMode?: SslMode; caFile?: string } = {}): DbTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ConfigError('invalid configuration', ['--database-url / DATABASE_URL: not a valid URL']);
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new ConfigError('invalid configuration', ['--database-url / DATABASE_URL: must start with postgres://']);
  }
  registerSecret(u.password);
  const password = u.password ? decodePart(u.password, 'password') : undefined;
  registerSecret(password);
  const params = u.searchParams;
  const sslParam = params.get('sslmode');
  if (sslParam === 'allow') {
    throw new ConfigError('invalid configuration', ['--database-url / DATABASE_URL: sslmode=allow is not supported (it tries a plain connection first and never verifies the server): use prefer, require, verify-ca or verify-full']);
  }
  if (sslParam !== null && !(SSL_MODES as readonly string[]).includes(sslParam)) {
    throw new ConfigError('invalid configuration', [`--database-url / DATABASE_URL: sslmode must be one of ${SSL_MODES.join(', ')}`]);
  }
  const host = params.get('host') ?? (u.hostname ? decodePart(u.hostname, 'host').replace(/^\[|\]$/g, '') : 'localhost');
  const port = Number(params.get('port') ?? (u.port || 5432));
  const user = u.username ? decodePart(u.username, 'user name') : (params.get('user') ?? 'postgres');
  const database = decodePart(u.pathname.replace(/^\//, ''), 'database name') || user;
  const target: DbTarget = {
    host,
    port,
    user,
    password,
    database,
    // libpq's default, for our sessions and pg_dump's alike: TLS when the server offers it, unverified.
    sslMode: (sslParam as SslMode | null) ?? overrides.sslMode ?? 'prefer',
    caFile: params.get('sslrootcert') ?? overrides.caFile,
    display: '',
  };
  target.display = displayConnection(target);
  return target;
}

export async function targetFromSecret(secretId: string, client: SecretsManagerClient, overrides: SecretTargetOptions = {}): Promise<DbTarget> {
  let raw: string | undefined;
  try {
    const { GetSecretValueCommand } = await import('@aws-sdk/client-secrets-manager');
    const res = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
    raw = res.SecretString;
  } catch (err) {
    throw new ConnectionError(`could not read database secret ${secretId}: ${errorMessage(err)}`, { cause: err });
  }
  return targetFromSecretJson(raw ?? '', `database secret ${secretId}`, overrides);
}

/**
 * The RDS JSON shape (host, port, username, password, dbname), from Secrets Manager or injected by
 * ECS; host, port and dbname may come from `overrides` instead (an RDS-managed secret has none).
 */
export function targetFromSecretJson(raw: string, source: string, overrides: SecretTargetOptions = {}): DbTarget {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new ConfigError(`${source} is not JSON in the RDS shape (username, password, and host, port, dbname unless configured)`);
  }
  const parsed = rdsSecretSchema.safeParse(json);
  if (!parsed.success) {
    // Name the fields, never the values.
    const fields = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ConfigError(`${source} is not in the RDS shape`, fields);
  }
  const s = parsed.data;
  registerSecret(s.password);
  const host = overrides.host ?? s.host;
  const database = overrides.database ?? s.dbname;
  if (host === undefined || database === undefined) throw new ConfigError(`${source} does not say where to connect`, missingEndpoint({ host, database }));
  const target: DbTarget = {
    host,
    port: overrides.port ?? Number(s.port ?? 5432),
    user: s.username,
    password: s.password,
    database,
    // RDS enforces TLS; its CA is not in Node's store, so verify only when a bundle is given.
    sslMode: overrides.sslMode ?? (overrides.caFile ? 'verify-full' : 'require'),
    caFile: overrides.caFile,
    display: '',
  };
  target.display = displayConnection(target);
  return target;
}

/** What neither the secret nor the settings give, each with where to set it. */
function missingEndpoint(found: { host?: string; database?: string }): string[] {
  const hint = 'an RDS-managed secret holds only username and password';
  return [
    ...(found.host === undefined ? [`host: not in the secret (${hint}): set PGOPS_DATABASE_HOST (CDK: databases[].host)`] : []),
    ...(found.database === undefined ? [`dbname: not in the secret (${hint}): set PGOPS_DATABASE_NAME (CDK: databases[].dbname)`] : []),
  ];
}

/** Resolve where to connect from the settings; `secrets` is only needed for a secret id. */
export async function resolveTarget(settings: Settings, deps: { secrets?: ClientFactory<SecretsManagerClient> } = {}): Promise<DbTarget> {
  if (settings.databaseUrl) return parseDatabaseUrl(settings.databaseUrl, { sslMode: settings.sslMode, caFile: settings.caFile });
  const completion: SecretTargetOptions = {
    sslMode: settings.sslMode, caFile: settings.caFile, host: settings.databaseHost, port: settings.databasePort, database: settings.databaseName,
  };
  if (settings.databaseSecretJson) return targetFromSecretJson(settings.databaseSecretJson, 'PGOPS_DATABASE_SECRET_JSON', completion);
  if (settings.databaseSecretId) {
    if (!deps.secrets) throw new ConfigError('PGOPS_DATABASE_SECRET_ID is set but no Secrets Manager client is available');
    return targetFromSecret(settings.databaseSecretId, await deps.secrets(), completion);
  }
  throw new ConfigError('invalid configuration', ['no database: set --database-url / DATABASE_URL, PGOPS_DATABASE_SECRET_ID or PGOPS_DATABASE_SECRET_JSON']);
}

export function withDatabase(target: DbTarget, database: string): DbTarget {
  const t = { ...target, database };
  t.display = displayConnection(t);
  return t;
}

/** The first attempt's TLS options; `prefer` falls back to plain in `openSession`, as libpq does. */
function sslOptions(target: DbTarget): false | ConnectionOptions {
  const ca = target.caFile ? readCa(target.caFile) : undefined;
  switch (target.sslMode) {
    case 'disable':
      return false;
    case 'prefer': // like libpq: encrypted, but no certificate check
    case 'require':
      return { rejectUnauthorized: false };
    case 'verify-ca':
      return { rejectUnauthorized: true, ca, checkServerIdentity: () => undefined };
    case 'verify-full':
      return { rejectUnauthorized: true, ca };
  }
}

function readCa(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError('invalid configuration', [`CA bundle ${file}: ${errorMessage(err)}`]);
  }
}

export type DbSessionOptions = Pick<FileConfig['database'], 'lockTimeoutMs' | 'statementTimeoutMs' | 'connectTimeoutMs'>;

export const DEFAULT_SESSION: DbSessionOptions = { lockTimeoutMs: 5000, statementTimeoutMs: 0, connectTimeoutMs: 10_000 };

/** Turn a driver error into one sentence naming the cause; never includes the password. */
export function describeConnectError(err: unknown, target: DbTarget, timeoutMs: number): string {
  const e = err as { code?: string; message?: string };
  const where = target.display;
  if (serverRefusedTls(err)) {
    return `could not connect to ${where}: the server does not accept TLS connections, and sslmode=${target.sslMode} requires TLS (enable ssl on the server, or use sslmode=prefer to allow a plain connection)`;
  }
  switch (e.code) {
    case 'ECONNREFUSED': return `could not connect to ${where}: connection refused (is PostgreSQL running and listening on port ${target.port}?)`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN': return `could not connect to ${where}: host ${target.host} not found`;
    case 'ETIMEDOUT': return `could not connect to ${where}: timed out`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH': return `could not connect to ${where}: host unreachable`;
    case '28P01': return `could not connect to ${where}: password authentication failed for user "${target.user}"`;
    case '28000': return `could not connect to ${where}: access denied (${redactString(e.message ?? '')})`;
    case '3D000': return `could not connect to ${where}: database "${target.database}" does not exist`;
    case '57P03': return `could not connect to ${where}: the server is starting up or shutting down`;
    default:
      if (/timeout/i.test(e.message ?? '')) return `could not connect to ${where}: timed out after ${timeoutMs} ms`;
      return `could not connect to ${where}: ${redactString(e.message ?? String(err))}`;
  }
}

/** The server answered the TLS request with "no" (node-postgres has no code for it, only this message). */
function serverRefusedTls(err: unknown): boolean {
  return err instanceof Error && err.message === 'The server does not support SSL connections';
}

/** pg_hba.conf has no entry for an encrypted session (hostnossl only): libpq's prefer then retries plain too. */
function hbaRefusedTls(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e.code === '28000' && /no pg_hba\.conf entry .*SSL (encryption|on)/.test(e.message ?? '');
}

async function connectOnce(target: DbTarget, session: DbSessionOptions, applicationName: string, ssl: false | ConnectionOptions): Promise<pg.Client> {
  const client = new pg.Client({
    host: target.host,
    port: target.port,
    user: target.user,
    password: target.password,
    database: target.database,
    ssl,
    application_name: applicationName,
    connectionTimeoutMillis: session.connectTimeoutMs,
  });
  // A backend terminated while idle must not crash the process; the next query reports it.
  client.on('error', () => {});
  try {
    await client.connect();
    return client;
  } catch (err) {
    await client.end().catch(() => {});
    throw err;
  }
}

/** libpq's sslmode semantics: `prefer` tries TLS first and connects plain only when the server refuses TLS. */
async function openSession(target: DbTarget, session: DbSessionOptions, applicationName: string): Promise<pg.Client> {
  let first: unknown;
  try {
    return await connectOnce(target, session, applicationName, sslOptions(target));
  } catch (err) {
    first = err;
  }
  if (target.sslMode === 'prefer' && (serverRefusedTls(first) || hbaRefusedTls(first))) {
    try {
      return await connectOnce(target, session, applicationName, false);
    } catch (err) {
      first = err;
    }
  }
  throw new ConnectionError(describeConnectError(first, target, session.connectTimeoutMs), { cause: first });
}

/**
 * A connected client with the session settings every pgops job relies on:
 * application_name=pgops, lock_timeout and statement_timeout.
 */
export async function connect(target: DbTarget, session: DbSessionOptions = DEFAULT_SESSION, applicationName = 'pgops'): Promise<pg.Client> {
  const client = await openSession(target, session, applicationName);
  try {
    await client.query(`SET lock_timeout = ${Math.trunc(session.lockTimeoutMs)}`);
    await client.query(`SET statement_timeout = ${Math.trunc(session.statementTimeoutMs)}`);
  } catch (err) {
    await client.end().catch(() => {});
    throw new ConnectionError(`connected to ${target.display} but could not set session options: ${errorMessage(err)}`, { cause: err });
  }
  return client;
}

/** Run `fn` with a connected client and always close it; `applicationName` names the job in pg_stat_activity. */
export async function withClient<T>(target: DbTarget, session: DbSessionOptions, fn: (client: pg.Client) => Promise<T>, options: { applicationName?: string } = {}): Promise<T> {
  const client = await connect(target, session, options.applicationName);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Quote an identifier that has already been validated (or comes from the catalog). */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
