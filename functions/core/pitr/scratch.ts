// The scratch cluster's directory: a private `pgops-pitr-*` folder holding the data directory, the
// unix socket, the server log and an hba file that trusts local connections (the folder is 0700
// and there is no TCP listener, so only its owner and root reach the socket). Recovery settings go
// into postgresql.auto.conf in one marked block, taken out again when the data directory is handed
// over (--data-dir), with the file as the base backup had it.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PgopsError } from '../errors.ts';
import type { Owner } from './unpack.ts';

const run = promisify(execFile);

/** The unprivileged user that runs the server when pgops runs as root (initdb and postgres refuse root). */
export interface ServerUser extends Owner {
  name: string;
}

export interface ScratchCluster {
  root: string;
  dataDir: string;
  /** The unix socket's directory (the root: private). */
  socketDir: string;
  logFile: string;
  /** Names the socket file only: nothing listens on TCP. */
  port: number;
  /** Set when running as root: the server runs as this user and owns every file. */
  user?: ServerUser;
  /** postgresql.auto.conf as the base backup had it (undefined: it had none). */
  originalAutoConf?: string;
}

/** The user the server runs as: `postgres` when we are root, else ourselves (undefined). */
export async function serverUser(name = 'postgres'): Promise<ServerUser | undefined> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  try {
    const uid = Number((await run('id', ['-u', name])).stdout.trim());
    const gid = Number((await run('id', ['-g', name])).stdout.trim());
    return { name, uid, gid };
  } catch (err) {
    throw new PgopsError(`running as root, but there is no "${name}" user to run the scratch PostgreSQL as (the server refuses root): create it, or run pgops as an unprivileged user`, { cause: err });
  }
}

/** A fresh private `<tmp>/pgops-pitr-XXXXXX` with an empty data directory, owned by the server's user. */
export async function createScratch(o: { tmpDir?: string; user?: ServerUser; random?: () => number }): Promise<ScratchCluster> {
  const root = await mkdtemp(join(o.tmpDir ?? tmpdir(), 'pgops-pitr-'));
  const dataDir = join(root, 'data');
  await mkdir(dataDir, { mode: 0o700 });
  await chmod(root, 0o700);
  if (o.user) for (const p of [root, dataDir]) await chown(p, o.user.uid, o.user.gid);
  const random = o.random ?? Math.random;
  return { root, dataDir, socketDir: root, logFile: join(root, 'postgres.log'), port: 20000 + Math.floor(random() * 40000), user: o.user };
}

const BEGIN = '# pgops pitr: recovery settings (removed when the data directory is handed over)';
const END = '# pgops pitr: end';

/** A postgresql.conf string literal: quotes doubled, backslashes escaped (the parser reads escapes). */
export function confValue(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** The settings every scratch server runs with, whatever the source's configuration says. */
export function scratchSettings(s: ScratchCluster): Record<string, string> {
  return {
    recovery_target_action: 'promote',
    archive_mode: 'off',
    // No TCP listener at all: only the unix socket in the private directory.
    listen_addresses: '',
    unix_socket_directories: s.socketDir,
    unix_socket_permissions: '0700',
    port: String(s.port),
    hba_file: join(s.root, 'pg_hba.conf'),
    hot_standby: 'off',
    // A throwaway cluster: nothing to keep across a crash (a handed-over data directory is synced first).
    fsync: 'off',
    synchronous_commit: 'off',
    max_connections: '10',
    ssl: 'off',
    primary_conninfo: '',
    primary_slot_name: '',
    synchronous_standby_names: '',
    external_pid_file: '',
    logging_collector: 'off',
    log_destination: 'stderr',
    cluster_name: 'pgops-pitr',
  };
}

async function writeOwned(path: string, content: string, user: ServerUser | undefined): Promise<void> {
  await writeFile(path, content, { mode: 0o600 });
  if (user) await chown(path, user.uid, user.gid);
}

/** Write the recovery block (after the base backup's own settings, so it wins), the hba file and recovery.signal. */
export async function configureRecovery(s: ScratchCluster, recovery: Record<string, string>): Promise<void> {
  const autoConf = join(s.dataDir, 'postgresql.auto.conf');
  s.originalAutoConf = existsSync(autoConf) ? await readFile(autoConf, 'utf8') : undefined;
  const settings = { ...scratchSettings(s), ...recovery };
  const block = [BEGIN, ...Object.entries(settings).map(([k, v]) => `${k} = ${confValue(v)}`), END, ''].join('\n');
  const before = s.originalAutoConf ?? '';
  await writeOwned(autoConf, `${before}${before === '' || before.endsWith('\n') ? '' : '\n'}${block}`, s.user);
  await writeOwned(join(s.root, 'pg_hba.conf'), 'local all all trust\n', s.user);
  await writeOwned(join(s.dataDir, 'recovery.signal'), '', s.user);
  // A standby's signal file in the base backup would keep the server in standby: recovery must end.
  await rm(join(s.dataDir, 'standby.signal'), { force: true });
}

/** Put postgresql.auto.conf back as the base backup had it: the data directory starts with its own settings. */
export async function restoreOwnSettings(s: ScratchCluster): Promise<void> {
  const autoConf = join(s.dataDir, 'postgresql.auto.conf');
  if (s.originalAutoConf === undefined) await rm(autoConf, { force: true });
  else await writeOwned(autoConf, s.originalAutoConf, s.user);
}

/** fsync every file and directory of the data directory: it ran with fsync off, and is handed over. */
export async function syncTree(path: string): Promise<void> {
  const st = await stat(path);
  if (st.isDirectory()) for (const name of await readdir(path)) await syncTree(join(path, name));
  if (st.isDirectory() || st.isFile()) await syncPath(path);
}

/** fsync one file or directory (a directory: its entries, e.g. a rename into it). */
export async function syncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function removeScratch(s: ScratchCluster): Promise<void> {
  await rm(s.root, { recursive: true, force: true });
}
