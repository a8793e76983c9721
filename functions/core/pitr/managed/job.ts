// The managed point-in-time recovery job (`pgops pitr --rds-instance ID | --aurora-cluster ID`):
// plan against the source's restore window before anything is created; start the restore; wait
// for the copy; produce the self-managed PITR's --target-db or --export output from it; delete the
// copy (unless --keep), on success, on failure and on SIGTERM. Each step is steps.ts/output.ts's.
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import type { Alerter } from '../../alerts/alerter.ts';
import type { Rds } from '../../aws/rds.ts';
import type { ClientFactory } from '../../aws/clients.ts';
import { checkDatabaseId } from '../../catalog/layout.ts';
import type { ManagedConfig } from '../../config.ts';
import { DEFAULT_SESSION, type DbSessionOptions, type DbTarget } from '../../db.ts';
import { asPgopsError, ConfigError, errorMessage, type AlertLevel } from '../../errors.ts';
import type { Logger } from '../../logger.ts';
import { redactString } from '../../redact.ts';
import { interruptionOr, runJob } from '../../run-job.ts';
import { FileStorage } from '../../storage/file.ts';
import type { Storage } from '../../storage/types.ts';
import { PitrError } from '../errors.ts';
import { describeOutput } from '../job.ts';
import { checkOutput, type OutputDeps, type OutputFlags, type OutputResult } from '../outputs.ts';
import type { TargetFlags } from '../targets.ts';
import { produceManagedOutput } from './output.ts';
import { planManagedPitr } from './plan.ts';
import { parseManagedRequest } from './request.ts';
import { readSource } from './source.ts';
import { deleteRestored, startRestore, type StepDeps } from './steps.ts';
import { describeCopy, type ManagedPitrState } from './state.ts';
import { realSleep, waitForRestore, type RestoreProgress, type Sleep, type WaitDeps } from './wait.ts';

export interface ManagedPitrDeps {
  rds: ClientFactory<Rds>;
  /** The `managed` config section, defaults filled (config.ts managedConfigOf). */
  config: ManagedConfig;
  /** Needed by --export only. */
  storage?: Storage;
  logger: Logger;
  alerter: Alerter;
  environment: string;
  databaseId?: string;
  /** The source database's connection (its secret): the copy is read with the same credentials; --target-db restores on its server. */
  target?: () => Promise<DbTarget>;
  session?: DbSessionOptions;
  binDir?: string;
  tmpDir?: string;
  signal?: AbortSignal;
  migrationsTable?: { schema: string; table: string };
  clock?: () => Date;
  sleep?: Sleep;
  onProgress?: (p: RestoreProgress) => void;
  /** The run's id (tagged on the copy); default random. */
  runId?: () => string;
}

export interface ManagedPitrOptions {
  rdsInstance?: string;
  auroraCluster?: string;
  target: TargetFlags & { latest?: boolean };
  output: OutputFlags;
  backup?: string;
  /** Leave the copy running (cleanup still deletes it once pgops:expires has passed). */
  keep?: boolean;
  dryRun?: boolean;
}

export interface ManagedPitrResult {
  source: ManagedPitrState['source'];
  target: ManagedPitrState['target'];
  window: ManagedPitrState['window'];
  restored: {
    instance: string;
    cluster?: string;
    instanceClass: string;
    expires: string;
    /** What was asked to be deleted (empty with --keep). */
    deleted: string[];
    kept: boolean;
    /** Where the kept copy answers (no credentials: the source's work there). */
    endpoint?: { host: string; port: number };
    passwordReset?: boolean;
  };
  output: OutputResult;
  /** From the restore call until the copy was available. */
  restoreMs: number;
  durationMs: number;
}

export interface ManagedPitrDryRun {
  dryRun: true;
  plan: {
    source: ManagedPitrState['source'];
    target: ManagedPitrState['target'];
    window: ManagedPitrState['window'];
    restored: ManagedPitrState['restored'];
    output: string;
    keep: boolean;
    /** The run's state as planned: a state machine's input for the steps. */
    state: ManagedPitrState;
  };
}

/** The output was produced but the copy could not be deleted: it bills until cleanup deletes it. */
export class CopyNotDeletedError extends PitrError {
  override readonly alert: AlertLevel = 'warning';
}

const DELETE_ATTEMPTS = 10;

interface Run {
  databaseId: string;
  state?: ManagedPitrState;
  t0: number;
}

export function runManagedPitr(deps: ManagedPitrDeps, options: ManagedPitrOptions): Promise<ManagedPitrResult | ManagedPitrDryRun> {
  const run: Run = { databaseId: deps.databaseId ?? 'unknown', t0: performance.now() };
  return runJob({ alerter: deps.alerter, logger: deps.logger, databaseId: () => run.databaseId, environment: deps.environment }, {
    job: 'pitr',
    silent: options.dryRun,
    wrap: (m, cause) => new PitrError(`pitr failed: ${redactString(m)}`, { cause }),
    details: (e) => ({ source: run.state?.source, target: run.state?.target, restored: run.state?.restored.instance, phase: run.state?.phase, error: e.message }),
  }, async () => {
    const request = parseManagedRequest({ rdsInstance: options.rdsInstance, auroraCluster: options.auroraCluster, target: options.target, output: options.output, backup: options.backup });
    const connection = await requireConnection(deps);
    run.databaseId = checkDatabaseId(deps.databaseId ?? connection.database);
    const outDeps = outputDeps(deps, run.databaseId, request.output.kind === 'export');
    await checkOutput(outDeps, request.output);
    const rds = await deps.rds();
    const source = await readSource(rds, request.source);
    const clock = deps.clock ?? (() => new Date());
    run.state = planManagedPitr({
      source, target: request.target, output: request.output, config: deps.config, now: clock(), keep: !!options.keep,
      runId: (deps.runId ?? newRunId)(), environment: deps.environment,
    });
    const s = run.state;
    deps.logger.info(`plan: restore ${source.id} to ${s.target.type === 'time' ? s.target.value : 'the latest restorable time'} into ${describeCopy(s)} (${s.restored.instanceClass}), window ${s.window.earliest} .. ${s.window.latest}`);
    if (options.dryRun) return dryRunOf(s, describeOutput(request.output));
    return restoreProduceDelete(deps, rds, run as Required<Run>, outDeps);
  });
}

const newRunId = (): string => randomBytes(6).toString('hex');

async function requireConnection(deps: ManagedPitrDeps): Promise<DbTarget> {
  const why = 'a managed PITR reads the restored copy with the source database\'s credentials: set --database-url / DATABASE_URL or PGOPS_DATABASE_SECRET_ID (its secret)';
  if (!deps.target) throw new ConfigError('invalid configuration', [why]);
  return deps.target();
}

function outputDeps(deps: ManagedPitrDeps, databaseId: string, exporting: boolean): OutputDeps {
  if (exporting && !deps.storage) throw new ConfigError('invalid configuration', ['--export writes a logical backup to storage: set --storage / PGOPS_STORAGE']);
  // --target-db never touches storage (its dump goes through a private local folder): a placeholder.
  const storage = deps.storage ?? new FileStorage(pathToFileURL(deps.tmpDir ?? '/tmp').href);
  return {
    storage, logger: deps.logger, databaseId, environment: deps.environment, target: deps.target, session: deps.session ?? DEFAULT_SESSION,
    binDir: deps.binDir, tmpDir: deps.tmpDir, signal: deps.signal, migrationsTable: deps.migrationsTable,
  };
}

function dryRunOf(s: ManagedPitrState, output: string): ManagedPitrDryRun {
  return { dryRun: true, plan: { source: s.source, target: s.target, window: s.window, restored: s.restored, output, keep: s.keep, state: s } };
}

function waitDeps(deps: ManagedPitrDeps, rds: Rds): WaitDeps {
  return { rds, logger: deps.logger, clock: deps.clock ?? (() => new Date()), sleep: deps.sleep ?? realSleep, signal: deps.signal, onProgress: deps.onProgress };
}

async function restoreProduceDelete(deps: ManagedPitrDeps, rds: Rds, run: Required<Run>, outDeps: OutputDeps): Promise<ManagedPitrResult> {
  const wd = waitDeps(deps, rds);
  const wait = { timeoutMs: deps.config.pitr.restoreTimeoutMinutes * 60_000, pollMs: deps.config.pitr.pollSeconds * 1000 };
  let failure: unknown;
  let restoreMs = 0;
  try {
    run.state = await startRestore(wd, run.state);
    const t0 = wd.clock().getTime();
    run.state = await waitForRestore(wd, run.state, wait);
    restoreMs = wd.clock().getTime() - t0;
    run.state = await produceManagedOutput({ ...wd, output: outDeps, wait }, run.state);
  } catch (err) {
    failure = interruptionOr('pitr', deps.signal, err);
  }
  const removal = run.state.keep ? { deleted: [] } : await removeCopy(wd, run.state, wait.pollMs);
  if (failure !== undefined) throw withCopyNote(failure, run.state, removal);
  if (removal.error) {
    throw new CopyNotDeletedError(`the output was produced (${describeResult(run.state.result as OutputResult)}), but ${copyNote(run.state, removal)}`);
  }
  return resultOf(run, restoreMs, removal.deleted);
}

interface Removal {
  deleted: string[];
  error?: string;
}

/** Delete the copy; never throws (its error is reported with the run's outcome). Aurora's cluster may need a second call. */
async function removeCopy(deps: StepDeps & { sleep: Sleep }, state: ManagedPitrState, pollMs: number): Promise<Removal> {
  const deleted: string[] = [];
  try {
    for (let attempt = 1; attempt <= DELETE_ATTEMPTS; attempt++) {
      const outcome = await deleteRestored(deps, state);
      deleted.push(...outcome.deleted);
      if (outcome.done) return { deleted };
      await deps.sleep(pollMs);
    }
    return { deleted, error: `the restored cluster ${state.restored.cluster} still refused deletion after ${DELETE_ATTEMPTS} attempts` };
  } catch (err) {
    return { deleted, error: redactString(errorMessage(err)) };
  }
}

function copyNote(state: ManagedPitrState, removal: Removal): string {
  if (state.keep) return `the restored ${describeCopy(state)} is kept (--keep) until ${state.restored.expires}, when cleanup deletes it`;
  if (!removal.error) return removal.deleted.length > 0 ? `the restored ${describeCopy(state)} is being deleted` : `no restored copy was left`;
  const cli = state.restored.cluster
    ? `aws rds delete-db-instance --db-instance-identifier ${state.restored.instance} && aws rds delete-db-cluster --db-cluster-identifier ${state.restored.cluster} --skip-final-snapshot`
    : `aws rds delete-db-instance --db-instance-identifier ${state.restored.instance} --skip-final-snapshot --delete-automated-backups`;
  return `the restored ${describeCopy(state)} could not be deleted (${removal.error}): it bills until cleanup deletes it after ${state.restored.expires}, or delete it now: ${cli}`;
}

/** The run's own error, with what became of the copy appended (same class, same exit code). */
function withCopyNote(failure: unknown, state: ManagedPitrState, removal: Removal): unknown {
  if (state.phase === 'planned' && removal.deleted.length === 0 && !removal.error) return failure;
  const e = asPgopsError(failure, (m, cause) => new PitrError(redactString(m), { cause }));
  e.message = `${e.message}; ${copyNote(state, removal)}`;
  return e;
}

function describeResult(o: OutputResult): string {
  if (o.type === 'target-db') return `database ${o.sourceDb} restored into ${o.database}`;
  if (o.type === 'export') return `logical backup ${o.backupId}`;
  return `data directory ${o.path}`;
}

function resultOf(run: Required<Run>, restoreMs: number, deleted: string[]): ManagedPitrResult {
  const s = run.state;
  const r = s.restored;
  return {
    source: s.source, target: s.target, window: s.window,
    restored: {
      instance: r.instance, ...(r.cluster ? { cluster: r.cluster } : {}), instanceClass: r.instanceClass, expires: r.expires, deleted, kept: s.keep,
      ...(s.keep && s.endpoint ? { endpoint: s.endpoint } : {}),
      ...(s.passwordReset ? { passwordReset: true } : {}),
    },
    output: s.result as OutputResult,
    restoreMs,
    durationMs: Math.round(performance.now() - run.t0),
  };
}
