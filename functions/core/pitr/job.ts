// The point-in-time recovery job (`pgops pitr`): plan (base backup, WAL continuity) before anything
// is created; fetch, verify and unpack the base backup into a scratch cluster; recover to the target
// and promote; produce the one output; always stop and remove the scratch cluster.
import type { Alerter } from '../alerts/alerter.ts';
import { checkDatabaseId } from '../catalog/layout.ts';
import { scanPhysicalBackups, type PhysicalManifest } from '../catalog/physical.ts';
import { ENV } from '../config.ts';
import { DEFAULT_SESSION, type DbSessionOptions, type DbTarget } from '../db.ts';
import { ConfigError, errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { findPgBinDir } from '../pgtools/binaries.ts';
import { redactString } from '../redact.ts';
import { interruptionOr, runJob, throwIfInterrupted } from '../run-job.ts';
import type { Storage } from '../storage/types.ts';
import { readWalInventory } from '../wal/inventory.ts';
import { DEFAULT_WAL_SEGMENT_SIZE, parseLsn } from '../wal/lsn.ts';
import { PitrError } from './errors.ts';
import { checkOutput, parseOutputFlags, produceOutput, type OutputDeps, type OutputFlags, type OutputResult, type OutputSpec } from './outputs.ts';
import { planRecovery, type BaseBackup, type PlanDocument, type RecoveryPlan } from './plan.ts';
import { checkRestoreCommand, LogFollower, readRecoveredTo, startServer, stopServer, waitForPromotion, type RecoveredTo } from './recovery.ts';
import { configureRecovery, createScratch, removeScratch, serverUser, type ScratchCluster } from './scratch.ts';
import { sweepStaleScratch } from '../backup/scratch.ts';
import { parseTargetFlags, recoveryTargetSettings, targetDocument, type TargetFlags } from './targets.ts';
import { unpackBaseBackup } from './unpack.ts';

/** The server binaries recovery runs (a client-only installation cannot recover). */
export const SERVER_TOOLS = ['pg_ctl', 'postgres'] as const;

const DEFAULT_RECOVERY_TIMEOUT_MS = 6 * 60 * 60 * 1000;

/** How the scratch server runs `pgops wal fetch` (restore_command): the argv of this pgops. */
export interface WalFetchCommand {
  /** e.g. [process.execPath, the CLI script]; the server's user must be able to run it. */
  argv: string[];
  /** PGOPS_S3_ENDPOINT for the fetches. */
  s3Endpoint?: string;
}

export interface PitrProgress {
  phase: 'base backup' | 'recovery';
  bytes: number;
  total?: number;
  elapsedMs: number;
}

export interface PitrDeps {
  storage: Storage;
  logger: Logger;
  alerter: Alerter;
  environment: string;
  /** The database's folder in storage; default: the connection's database name. */
  databaseId?: string;
  /** The connection (resolved only when needed): --target-db restores on its server; the default --source-db. */
  target?: () => Promise<DbTarget>;
  session?: DbSessionOptions;
  /** pg_dump and pg_restore (the outputs); default: looked for. */
  binDir?: string;
  /** Where pg_ctl and postgres are (checked); default: looked for. */
  serverBinDir?: string;
  tmpDir?: string;
  signal?: AbortSignal;
  walFetch: WalFetchCommand;
  /** The OS user the server runs as when we are root (default postgres). */
  serverUser?: string;
  /** The role the job connects to the scratch cluster as (default: the connection's user, else postgres). */
  scratchRole?: string;
  recoveryTimeoutMs?: number;
  onProgress?: (p: PitrProgress) => void;
  /** Called while the recovered scratch cluster runs, before the output is produced. */
  onRecovered?: (scratch: ScratchCluster) => Promise<void> | void;
  migrationsTable?: { schema: string; table: string };
}

export interface PitrOptions {
  target: TargetFlags;
  output: OutputFlags;
  /** --backup: this base backup instead of the newest that ends before the target. */
  backup?: string;
  dryRun?: boolean;
}

export interface PitrResult {
  backupId: string;
  target: PlanDocument['target'];
  recoveredTo: RecoveredTo;
  /** WAL segments restored from the archive. */
  walSegments: number;
  output: OutputResult;
  durationMs: number;
}

export interface PitrDryRun {
  dryRun: true;
  plan: PlanDocument & { output: string };
}

interface Run {
  databaseId: string;
  plan?: RecoveryPlan;
  t0: number;
}

/** Recover to the target and produce the output; throws (after one alert) when anything fails. */
export function runPitr(deps: PitrDeps, options: PitrOptions): Promise<PitrResult | PitrDryRun> {
  const run: Run = { databaseId: deps.databaseId ?? 'unknown', t0: performance.now() };
  return runJob({ alerter: deps.alerter, logger: deps.logger, databaseId: () => run.databaseId, environment: deps.environment }, {
    job: 'pitr',
    silent: options.dryRun,
    wrap: (m, cause) => new PitrError(`pitr failed: ${redactString(m)}`, { cause }),
    details: (e) => ({ backupId: run.plan?.backup.id, target: run.plan?.document.target, storage: deps.storage.url, error: e.message }),
  }, async () => {
    const spec = parseTargetFlags(options.target);
    const out = parseOutputFlags(options.output);
    run.databaseId = checkDatabaseId(deps.databaseId ?? (await requireTarget(deps)).database);
    await checkOutput(outputDeps(deps, run.databaseId), out);
    run.plan = await makePlan(deps, run.databaseId, spec, options.backup);
    const plan = run.plan;
    deps.logger.info(`recovery plan: base backup ${plan.backup.id}, WAL ${plan.document.wal.firstSegment}..${plan.document.wal.lastSegment} (${plan.document.wal.segments} segments, all archived)`, { timeline: plan.timeline });
    if (options.dryRun) return { dryRun: true as const, plan: { ...plan.document, output: describeOutput(out) } };
    return recover(deps, run as Required<Run>, out);
  });
}

/** The connection, to default the database id from: without one, say both ways to give it. */
async function requireTarget(deps: PitrDeps): Promise<DbTarget> {
  const why = `no database id: set --database-id / ${ENV.databaseId}, or a connection (--database-url / ${ENV.databaseUrl}) whose database names it`;
  if (!deps.target) throw new ConfigError('invalid configuration', [why]);
  return deps.target().catch((err: unknown) => {
    throw err instanceof ConfigError ? new ConfigError('invalid configuration', [why], { cause: err }) : err;
  });
}

function outputDeps(deps: PitrDeps, databaseId: string): OutputDeps {
  return {
    storage: deps.storage, logger: deps.logger, databaseId, environment: deps.environment, target: deps.target,
    session: deps.session ?? DEFAULT_SESSION, binDir: deps.binDir, tmpDir: deps.tmpDir, signal: deps.signal, migrationsTable: deps.migrationsTable,
  };
}

export function describeOutput(out: OutputSpec): string {
  if (out.kind === 'data-dir') return `the recovered data directory at ${out.dir}`;
  const source = out.sourceDb ? `database ${out.sourceDb}` : 'database (the connection\'s)';
  if (out.kind === 'export') return `a logical backup of the recovered ${source} in storage`;
  return `the recovered ${source} restored into ${out.database}${out.create ? ' (created)' : out.clean ? ' (replacing its contents)' : ''}${out.tables.length > 0 ? `, tables ${out.tables.join(', ')}` : ''}`;
}

/** A base backup as recovery sees it, from its (catalog-validated) manifest. */
export function baseBackupOf(m: PhysicalManifest): BaseBackup {
  return {
    id: m.id, timeline: m.timeline, startLsn: parseLsn(m.startLsn), stopLsn: parseLsn(m.stopLsn), stoppedAt: new Date(m.stoppedAt),
    walSegmentSize: m.walSegmentSize, key: m.key, sha256: m.sha256, bytes: m.bytes, compression: m.compression,
  };
}

async function makePlan(deps: PitrDeps, databaseId: string, spec: ReturnType<typeof parseTargetFlags>, backupId: string | undefined): Promise<RecoveryPlan> {
  const scan = await scanPhysicalBackups(deps.storage, databaseId, deps.logger);
  const backups = scan.backups.map((b) => baseBackupOf(b.manifest));
  const sized = backups.find((b) => b.id === backupId) ?? backups[0];
  const inventory = await readWalInventory(deps.storage, databaseId, { segmentSize: sized?.walSegmentSize ?? DEFAULT_WAL_SEGMENT_SIZE });
  return planRecovery({ spec, backups, inventory, backupId, databaseId });
}

async function recover(deps: PitrDeps, run: Required<Run>, out: OutputSpec): Promise<PitrResult> {
  const { plan } = run;
  const serverBinDir = findPgBinDir({ configured: deps.serverBinDir, tools: SERVER_TOOLS });
  // What a killed (kill -9) pitr left here: its scratch cluster, still running, once a day old.
  await sweepStaleScratch(deps.tmpDir, deps.logger);
  const scratch = await createScratch({ tmpDir: deps.tmpDir, user: await serverUser(deps.serverUser) });
  try {
    await fetchBaseBackup(deps, plan.backup, scratch);
    const command = restoreCommand(deps, run.databaseId);
    await configureRecovery(scratch, { restore_command: command, ...recoveryTargetSettings(plan.spec, plan.timeline) });
    await checkRestoreCommand(scratch, command, plan.document.wal.firstSegment);
    throwIfInterrupted('pitr', deps.signal);
    const recovered = await recoverScratch(deps, plan, scratch, serverBinDir);
    const target = targetDocument(plan.spec, plan.timeline);
    const output = await produceOutput(outputDeps(deps, run.databaseId), out, {
      scratch, serverBinDir, user: recovered.role, timeline: recovered.recoveredTo.timeline,
      provenance: { target, baseBackup: plan.backup.id, recoveredTo: recovered.recoveredTo },
    });
    const durationMs = Math.round(performance.now() - run.t0);
    deps.logger.info(`recovered to ${recovered.recoveredTo.lsn}${recovered.recoveredTo.time ? ` (last transaction ${recovered.recoveredTo.time})` : ''}`, { durationMs });
    return { backupId: plan.backup.id, target, recoveredTo: recovered.recoveredTo, walSegments: recovered.walSegments, output, durationMs };
  } catch (err) {
    throw interruptionOr('pitr', deps.signal, err);
  } finally {
    await stopServer(scratch, serverBinDir, 'immediate').catch((e) => deps.logger.warn('could not stop the scratch cluster', { error: errorMessage(e) }));
    await removeScratch(scratch).catch((e) => deps.logger.warn(`could not remove the scratch directory ${scratch.root}`, { error: errorMessage(e) }));
  }
}

/** Fetch, hash and unpack the base backup; refused (nothing started) unless it matches its manifest. */
async function fetchBaseBackup(deps: PitrDeps, backup: BaseBackup, scratch: ScratchCluster): Promise<void> {
  const t0 = performance.now();
  deps.logger.info(`fetching base backup ${backup.id}`, { key: backup.key, bytes: backup.bytes });
  const report = (bytes: number) => deps.onProgress?.({ phase: 'base backup', bytes, total: backup.bytes, elapsedMs: Math.round(performance.now() - t0) });
  const got = await unpackBaseBackup(deps.storage, backup.key, backup.compression, scratch.dataDir, { owner: scratch.user, onBytes: report, signal: deps.signal }).catch((err: unknown) => {
    throw interruptionOr('pitr', deps.signal, new PitrError(`could not fetch and unpack base backup ${backup.id} from ${deps.storage.url}: ${redactString(errorMessage(err))}`, { cause: err }));
  });
  const problems: string[] = [];
  if (got.bytes !== backup.bytes) problems.push(`the stored object has ${got.bytes} bytes, the manifest says ${backup.bytes}`);
  if (got.sha256 !== backup.sha256) problems.push(`the stored object hashes to ${got.sha256}, the manifest says ${backup.sha256}`);
  if (problems.length > 0) throw new PitrError(`refusing base backup ${backup.id}: it does not match its manifest (${problems.join('; ')})`);
}

const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** restore_command: `pgops wal fetch %f %p` with the archive's location; never a password (storage URLs carry none). */
export function restoreCommand(deps: Pick<PitrDeps, 'storage' | 'walFetch'>, databaseId: string): string {
  const env: Array<[string, string]> = [[ENV.storage, deps.storage.url], [ENV.databaseId, databaseId]];
  if (deps.walFetch.s3Endpoint) env.push([ENV.s3Endpoint, deps.walFetch.s3Endpoint]);
  // PostgreSQL expands % escapes in the command: a literal % is written %%.
  const words = [...env.map(([k, v]) => `${k}=${shellQuote(v)}`), ...deps.walFetch.argv.map(shellQuote)].map((w) => w.replace(/%/g, '%%'));
  return [...words, '--quiet', 'wal', 'fetch', '%f', '%p'].join(' ');
}

interface Recovered {
  recoveredTo: RecoveredTo;
  walSegments: number;
  role: string;
}

async function recoverScratch(deps: PitrDeps, plan: RecoveryPlan, scratch: ScratchCluster, serverBinDir: string): Promise<Recovered> {
  const t0 = performance.now();
  const segmentSize = plan.backup.walSegmentSize;
  deps.logger.info(`recovering to ${plan.document.target.type}${plan.document.target.value ? ` ${plan.document.target.value}` : ''} on timeline ${plan.timeline}`);
  await startServer(scratch, serverBinDir);
  const log = new LogFollower(scratch.logFile);
  const scan = await waitForPromotion(scratch, log, {
    timeoutMs: deps.recoveryTimeoutMs ?? DEFAULT_RECOVERY_TIMEOUT_MS,
    signal: deps.signal,
    onRestored: (n) => deps.onProgress?.({ phase: 'recovery', bytes: n * segmentSize, total: plan.segments.length * segmentSize, elapsedMs: Math.round(performance.now() - t0) }),
  });
  const role = await scratchRole(deps);
  const recoveredTo = await readRecoveredTo(scratch, role, scan);
  await deps.onRecovered?.(scratch);
  return { recoveredTo, walSegments: scan.restored.filter((n) => !n.endsWith('.history')).length, role };
}

async function scratchRole(deps: PitrDeps): Promise<string> {
  if (deps.scratchRole) return deps.scratchRole;
  const target = await deps.target?.().catch(() => undefined);
  return target?.user ?? 'postgres';
}
