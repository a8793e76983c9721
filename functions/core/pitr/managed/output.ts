// The output step of a managed PITR: --target-db or --export (pitr/outputs.ts, the self-managed
// PITR's own) read from the restored copy's endpoint with the source's credentials. A copy holds
// the master password of its restore time: when it refuses the current one, the master password
// is set to the secret's (ModifyDBInstance/Cluster) and the step goes on. No credential is printed.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resetMasterPassword } from '../../aws/rds.ts';
import { ConnectionError, errorMessage, ConfigError } from '../../errors.ts';
import { withClient, withDatabase, type DbTarget } from '../../db.ts';
import { PitrError } from '../errors.ts';
import { produceLogicalOutput, type OutputDeps, type OutputResult } from '../outputs.ts';
import { describeCopy, type ManagedPitrState } from './state.ts';
import { waitForRestore, type WaitDeps, type WaitOptions } from './wait.ts';

export interface ManagedOutputDeps extends WaitDeps {
  output: OutputDeps;
  /** Bounds the wait for a master password reset. */
  wait: WaitOptions;
}

/** The copy's database `database`, reached as the source's user with the source's password and TLS settings. */
export function copyTarget(connection: DbTarget, endpoint: { host: string; port: number }, database: string): DbTarget {
  return withDatabase({ ...connection, host: endpoint.host, port: endpoint.port }, database);
}

const PASSWORD_RETRIES = 5;

type Reach = 'ok' | 'auth';

async function tryConnect(deps: ManagedOutputDeps, target: DbTarget, copy: string): Promise<Reach> {
  try {
    await withClient(target, deps.output.session, async (c) => { await c.query('SELECT 1'); }, { applicationName: 'pgops-pitr' });
    return 'ok';
  } catch (err) {
    const code = (err instanceof ConnectionError ? (err.cause as { code?: string } | undefined)?.code : undefined);
    if (code === '28P01') return 'auth';
    throw new PitrError(`could not connect to the restored ${copy}: ${errorMessage(err)}`, { cause: err });
  }
}

/** Connect to the copy; on a refused password, give the copy the secret's (master user only) and try again. */
async function reachCopy(deps: ManagedOutputDeps, state: ManagedPitrState, connection: DbTarget, target: DbTarget): Promise<ManagedPitrState> {
  const copy = describeCopy(state);
  if ((await tryConnect(deps, target, copy)) === 'ok') return state;
  const master = state.restored.masterUsername;
  if (master !== undefined && master !== connection.user) {
    throw new PitrError(`the restored ${describeCopy(state)} refused the password of ${connection.user}, who is not its master user (${master}): the copy holds that role's password of the restore time; connect with the master user's secret`);
  }
  if (!connection.password) throw new PitrError(`the restored ${describeCopy(state)} asks for a password and the connection has none`);
  deps.logger.info(`the restored ${describeCopy(state)} holds the master password of its restore time: setting it to the secret's`);
  const r = state.restored;
  await resetMasterPassword(deps.rds, r.cluster ? { cluster: r.cluster } : { instance: r.instance }, connection.password);
  let next: ManagedPitrState = { ...state, passwordReset: true };
  next = await waitForRestore(deps, next, deps.wait);
  // RDS may apply the new password a moment after it reports the copy available again.
  for (let attempt = 1; attempt <= PASSWORD_RETRIES; attempt++) {
    if ((await tryConnect(deps, target, copy)) === 'ok') return next;
    await deps.sleep(deps.wait.pollMs, deps.signal);
  }
  throw new PitrError(`the restored ${describeCopy(state)} still refuses the secret's password after its master password was set (${PASSWORD_RETRIES} tries)`);
}

/** Produce the run's output from the available copy; done already is done. */
export async function produceManagedOutput(deps: ManagedOutputDeps, state: ManagedPitrState): Promise<ManagedPitrState> {
  if (state.phase === 'output-produced' || state.result) return state;
  const endpoint = state.endpoint;
  if (!endpoint) throw new PitrError(`the restored ${describeCopy(state)} is not available yet (run the wait step first)`);
  if (!deps.output.target) throw new ConfigError('invalid configuration', ['a managed PITR reads the copy with the source\'s credentials: set --database-url / DATABASE_URL or PGOPS_DATABASE_SECRET_ID (the source database\'s secret)']);
  const connection = await deps.output.target();
  const sourceDb = state.output.sourceDb ?? connection.database;
  const reached = await reachCopy(deps, state, connection, copyTarget(connection, endpoint, sourceDb));
  const workDir = await mkdtemp(join(deps.output.tmpDir ?? tmpdir(), 'pgops-pitr-rds-'));
  try {
    const result: OutputResult = await produceLogicalOutput(deps.output, state.output, {
      target: (database) => copyTarget(connection, endpoint, database),
      workDir,
      provenance: { target: state.target, rds: { source: state.source, restored: { instance: state.restored.instance, ...(state.restored.cluster ? { cluster: state.restored.cluster } : {}) } } },
    });
    return { ...reached, phase: 'output-produced', result: { ...result } };
  } finally {
    await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
  }
}
