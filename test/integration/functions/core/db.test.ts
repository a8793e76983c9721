// sslmode follows libpq for pgops' own sessions: prefer = TLS when the server offers it (no
// certificate check), plain only when the server refuses TLS; require refuses a plain server.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_SESSION, connect, parseDatabaseUrl, withClient, type DbTarget } from '../../../../functions/core/db.ts';
import { ConnectionError } from '../../../../functions/core/errors.ts';
import { runCli } from '../../../helpers/cli.ts';
import { useTestCluster, type TestCluster } from '../../../helpers/postgres.ts';

/**
 * A self-signed certificate the server can read. The cluster helper creates its directory only when it
 * starts, so the files live beside it (a hook to write files into the cluster dir would be tidier).
 */
function selfSignedCertificate(): { dir: string; cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'pgops-tls-'));
  const cert = join(dir, 'server.crt');
  const key = join(dir, 'server.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  chmodSync(key, 0o600);
  if (process.getuid?.() === 0) {
    // The server runs as postgres (initdb refuses root): it must own the key and reach the directory.
    const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    for (const p of [dir, cert, key]) chownSync(p, uid, gid);
  }
  return { dir, cert, key };
}

const tls = selfSignedCertificate();
afterAll(() => rmSync(tls.dir, { recursive: true, force: true }));
const tlsCluster = useTestCluster({ settings: { ssl: 'on', ssl_cert_file: tls.cert, ssl_key_file: tls.key } });
const plainCluster = useTestCluster();
const hostnosslCluster = useTestCluster({ settings: { ssl: 'on', ssl_cert_file: tls.cert, ssl_key_file: tls.key } });

/** Only plain TCP sessions are allowed (hostnossl): the server refuses TLS through pg_hba.conf. */
async function allowPlainTcpOnly(cluster: TestCluster): Promise<void> {
  const hba = join(cluster.pg.dataDir, 'pg_hba.conf');
  writeFileSync(hba, 'local all all trust\nhostnossl all all 127.0.0.1/32 scram-sha-256\n');
  await cluster.query('SELECT pg_reload_conf()');
}

function target(cluster: TestCluster, sslmode?: string): DbTarget {
  return parseDatabaseUrl(`${cluster.url()}${sslmode ? `?sslmode=${sslmode}` : ''}`);
}

async function sessionUsesTls(t: DbTarget): Promise<boolean> {
  return withClient(t, DEFAULT_SESSION, async (c) => {
    const r = await c.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    return r.rows[0]!.ssl;
  });
}

describe('sslmode for pgops sessions', () => {
  it('prefer is the default and gets TLS from a server that offers it, without checking its self-signed certificate', async () => {
    expect(target(tlsCluster).sslMode).toBe('prefer');
    expect(await sessionUsesTls(target(tlsCluster))).toBe(true);
    expect(await sessionUsesTls(target(tlsCluster, 'prefer'))).toBe(true);
  });

  it('prefer connects plain to a server without TLS', async () => {
    expect(await sessionUsesTls(target(plainCluster))).toBe(false);
  });

  it('prefer connects plain when pg_hba.conf refuses encrypted sessions, as libpq does; require fails', async () => {
    await allowPlainTcpOnly(hostnosslCluster);
    expect(await sessionUsesTls(target(hostnosslCluster))).toBe(false);
    await expect(connect(target(hostnosslCluster, 'require'))).rejects.toThrow(/no pg_hba\.conf entry/);
  });

  it('require gets TLS, disable does not', async () => {
    expect(await sessionUsesTls(target(tlsCluster, 'require'))).toBe(true);
    expect(await sessionUsesTls(target(tlsCluster, 'disable'))).toBe(false);
  });

  it('verify-full refuses the self-signed certificate', async () => {
    await expect(connect(target(tlsCluster, 'verify-full'))).rejects.toBeInstanceOf(ConnectionError);
  });

  it('require against a server without TLS fails with a clear message', async () => {
    const err = await connect(target(plainCluster, 'require')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as Error).message).toMatch(/^could not connect to postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/postgres: the server does not accept TLS connections, and sslmode=require requires TLS \(enable ssl on the server, or use sslmode=prefer to allow a plain connection\)$/);
  });

  it('allow is refused clearly', () => {
    expect(() => target(plainCluster, 'allow')).toThrow(/sslmode=allow is not supported .*use prefer, require, verify-ca or verify-full/);
  });

  it('the CLI: migrate status runs over TLS by default against a TLS server, and says why require fails against a plain one', async () => {
    const ok = await runCli(['migrate', 'status', '--json'], { DATABASE_URL: tlsCluster.url() });
    expect(ok.code, ok.stderr).toBe(0);
    const plain = await runCli(['migrate', 'status'], { DATABASE_URL: `${plainCluster.url()}?sslmode=require` });
    expect(plain.code).toBe(1);
    expect(plain.stderr).toMatch(/the server does not accept TLS connections, and sslmode=require requires TLS/);
  });
});
