// `pgops pitr --from-state JSON`: the output step of the state machine (on the database's Fargate
// task). The state machine has restored the copy and waited for it; this produces the run's
// --target-db or --export output from the copy's endpoint with the database's own secret, exactly as
// the one-process `pgops pitr --rds-instance` does. It sends no alert: the state machine notifies.
import { pathToFileURL } from 'node:url';
import { checkDatabaseId } from '../../catalog/layout.ts';
import { DEFAULT_SESSION } from '../../db.ts';
import { ConfigError, UsageError } from '../../errors.ts';
import { redactString } from '../../redact.ts';
import { runJob } from '../../run-job.ts';
import { FileStorage } from '../../storage/file.ts';
import { PitrError } from '../errors.ts';
import { checkOutput, type OutputDeps, type OutputResult } from '../outputs.ts';
import { produceManagedOutput } from './output.ts';
import { parseManagedPitrState, type ManagedPitrState } from './state.ts';
import type { ManagedPitrDeps } from './job.ts';
import { realSleep } from './wait.ts';

/** The managed job's dependencies, without what only the restore and the wait use (rds: the copy's master password reset only). */
export type FromStateDeps = Omit<ManagedPitrDeps, 'onProgress' | 'runId'>;

export interface FromStateResult {
  fromState: true;
  runId: string;
  source: ManagedPitrState['source'];
  target: ManagedPitrState['target'];
  restored: { instance: string; cluster?: string };
  output: OutputResult;
  passwordReset?: boolean;
  durationMs: number;
}

/** The --from-state document, validated: every bad field named (exit 2). */
export function parseFromState(raw: string): ManagedPitrState {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new UsageError('invalid --from-state', ['--from-state: not JSON (the state machine passes the run\'s state document)']);
  }
  const { state, issues } = parseManagedPitrState(parsed);
  if (!state) throw new UsageError('invalid --from-state', issues);
  if (!state.endpoint) throw new UsageError('invalid --from-state', ['state.endpoint: missing (the restored copy\'s host and port, once it is available)']);
  return state;
}

export function produceOutputFromState(deps: FromStateDeps, raw: string): Promise<FromStateResult> {
  const t0 = performance.now();
  let databaseId = deps.databaseId ?? 'unknown';
  return runJob({ alerter: deps.alerter, logger: deps.logger, databaseId: () => databaseId, environment: deps.environment }, {
    job: 'pitr',
    silent: true,
    wrap: (m, cause) => new PitrError(`pitr output failed: ${redactString(m)}`, { cause }),
  }, async () => {
    const state = parseFromState(raw);
    if (!deps.target) throw new ConfigError('invalid configuration', ['the output step reads the copy with the database\'s credentials: set PGOPS_DATABASE_SECRET_ID (or the injected secret)']);
    const connection = await deps.target();
    databaseId = checkDatabaseId(deps.databaseId ?? connection.database);
    if (state.output.kind === 'export' && !deps.storage) throw new ConfigError('invalid configuration', ['--export writes a logical backup to storage: set PGOPS_STORAGE']);
    const output: OutputDeps = {
      storage: deps.storage ?? new FileStorage(pathToFileURL(deps.tmpDir ?? '/tmp').href), logger: deps.logger, databaseId, environment: deps.environment,
      target: deps.target, session: deps.session ?? DEFAULT_SESSION, binDir: deps.binDir, tmpDir: deps.tmpDir, signal: deps.signal, migrationsTable: deps.migrationsTable,
    };
    await checkOutput(output, state.output);
    const rds = await deps.rds();
    const wait = { timeoutMs: deps.config.pitr.restoreTimeoutMinutes * 60_000, pollMs: deps.config.pitr.pollSeconds * 1000 };
    const done = await produceManagedOutput({
      rds, logger: deps.logger, clock: deps.clock ?? (() => new Date()), sleep: deps.sleep ?? realSleep, signal: deps.signal, output, wait,
    }, state);
    const r = done.restored;
    return {
      fromState: true, runId: done.runId, source: done.source, target: done.target,
      restored: { instance: r.instance, ...(r.cluster ? { cluster: r.cluster } : {}) },
      output: done.result as OutputResult,
      ...(done.passwordReset ? { passwordReset: true } : {}),
      durationMs: Math.round(performance.now() - t0),
    };
  });
}
