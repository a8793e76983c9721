// Builds a job's dependencies from the settings: the CLI, the Lambda handlers and the Fargate task
// all go through here, so a job never reads the environment or constructs an AWS client itself.
// Only types of the jobs are imported, and storage is opened through an opener the caller passes:
// each handler's bundle holds what it uses (the migrate function no S3 SDK).
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SNSClient } from '@aws-sdk/client-sns';
import { defaultSecretsClient, defaultSnsClient, type ClientFactory } from './aws/clients.ts';
import type { Rds } from './aws/rds.ts';
import { FanoutAlerter, SnsAlerter, StderrAlerter, type Alerter } from './alerts/alerter.ts';
import { SlackAlerter, resolveSlackWebhook } from './alerts/slack.ts';
import { rowCountsFor, type BackupDefaults, type BackupJobDeps } from './backup/deps.ts';
import type { CleanupDeps } from './cleanup/job.ts';
import { managedConfigOf, type FileConfig, type Settings } from './config.ts';
import { resolveTarget, type DbSessionOptions, type DbTarget } from './db.ts';
import { ConfigError } from './errors.ts';
import type { HealthDeps } from './health/types.ts';
import type { Logger } from './logger.ts';
import { historyTables } from './migrate/history.ts';
import type { MigrateJobDeps } from './migrate/job.ts';
import type { SafetyBackup } from './migrate/safety-point.ts';
import type { BaseBackupDeps } from './physical/basebackup.ts';
import { findPgBinDir } from './pgtools/binaries.ts';
import type { JobReporting } from './run-job.ts';
import type { Storage } from './storage/types.ts';

/** Opens `s3://...` or `file://...` (storage/index.ts `openStorage`). */
export type StorageOpener = (url: string, options: { s3Endpoint?: string; region?: string }) => Storage;

/** How `migrate up` takes its safety point's backup (migrate.backupBefore); passed by the callers that can. */
export interface MigrateBackup {
  /** A full backup with this runtime's backup dependencies (storage, pg_dump): the CLI passes backup/backup.ts `runBackup`. */
  runBackup?: (deps: BackupJobDeps) => Promise<{ id: string }>;
  /** Another way to take it (the migrate function: the backup function); wins over runBackup. */
  takeBackup?: SafetyBackup;
}

/** The migrate job's own alert tells of a failed safety backup (nothing was applied): the backup inside it pages nobody. */
const quietAlerter: Alerter = { send: async () => {} };

export interface RuntimeOptions {
  sns?: ClientFactory<SNSClient>;
  secrets?: ClientFactory<SecretsManagerClient>;
  /**
   * RDS (managed PITR, its cleanup, the restore-window check). Passed by the callers that run those
   * (the CLI and its task); the functions do not, so their bundles carry no RDS SDK.
   */
  rds?: ClientFactory<Rds>;
  /** Passed only by callers whose jobs use storage. */
  openStorage?: StorageOpener;
  /** Aborted when the process is asked to stop (the CLI's SIGTERM/SIGINT); handed to the jobs that honour it. */
  signal?: AbortSignal;
}

export interface Runtime {
  settings: Settings;
  logger: Logger;
  alerter: Alerter;
  session: DbSessionOptions;
  target(): Promise<DbTarget>;
  /** The id used in alerts and the storage layout. */
  databaseId(target?: DbTarget): string;
  /** Where a job run by this runtime reports its failure (run-job.ts). */
  reporting(): JobReporting;
  /** The PostgreSQL client tools, found once (settings.pgBinDir, else looked for). */
  binDir(): string;
  /** The configured storage; a ConfigError (exit 2) when none is configured. */
  storage(): Storage;
  /** The configured storage, or undefined when none is configured. */
  optionalStorage(): Storage | undefined;
  /** With `backup`, `migrate up` can take migrate.backupBefore's backup (from storage when configured). */
  migrateDeps(backup?: MigrateBackup): Promise<MigrateJobDeps>;
  /** Dependencies of the backup, verify and restore jobs. */
  backupDeps(extra?: Partial<BackupJobDeps>): Promise<BackupJobDeps>;
  /** The job's abort signal (SIGTERM/SIGINT), for jobs that stop cleanly on it; asking marks the run interruptible. */
  signal(): AbortSignal | undefined;
  /** Dependencies of the base backup job: the backup's, plus the `physical` config section. */
  physicalDeps(extra?: Partial<BaseBackupDeps>): Promise<BaseBackupDeps>;
  /** Dependencies of the cleanup job; storage only when configured (retention is skipped without). */
  cleanupDeps(extra?: Partial<CleanupDeps>): Promise<CleanupDeps>;
  /** Dependencies of the health job; storage only when configured. */
  healthDeps(extra?: Partial<HealthDeps>): Promise<HealthDeps>;
  /** The RDS client (managed PITR), whether or not config names an RDS source. */
  rdsClient(): ClientFactory<Rds>;
  /** A ConfigError when `requested` names another database than the one this runtime serves. */
  checkServes(requested: string | undefined, job: string): void;
  /** True once a job that stops on `options.signal` (backup, verify, restore) was given it. */
  interruptible(): boolean;
}

/** SNS and Slack when configured; with neither, stderr (DESIGN.md). */
export function buildAlerter(settings: Settings, logger: Logger, options: RuntimeOptions = {}): Alerter {
  const destinations: Alerter[] = [];
  if (settings.snsTopicArn) destinations.push(new SnsAlerter(options.sns ?? defaultSnsClient, settings.snsTopicArn));
  if (settings.slackWebhookUrl || settings.slackWebhookSecretId) {
    const secrets = options.secrets ?? defaultSecretsClient;
    destinations.push(new SlackAlerter({ webhookUrl: settings.slackWebhookUrl ?? (() => resolveSlackWebhook(settings, secrets)), logger }));
  }
  if (destinations.length === 0) destinations.push(new StderrAlerter());
  return new FanoutAlerter(destinations, logger, { region: settings.region });
}

const once = <T>(make: () => T): (() => T) => {
  let made: { value: T } | undefined;
  return () => (made ??= { value: make() }).value;
};

function storageOf(settings: Settings, open: StorageOpener | undefined): { storage(): Storage; optionalStorage(): Storage | undefined } {
  const opened = once(() => {
    if (!open) throw new ConfigError('invalid configuration', ['storage is not available to this job']);
    return open(settings.storage!, { s3Endpoint: settings.s3Endpoint });
  });
  return {
    storage: () => {
      if (!settings.storage) throw new ConfigError('invalid configuration', ['no storage: set --storage / PGOPS_STORAGE (s3://bucket/prefix or file:///absolute/path)']);
      return opened();
    },
    optionalStorage: () => (settings.storage ? opened() : undefined),
  };
}

/** How `migrate up` backs up: as the caller says, else to the configured storage; none without storage (a ConfigError in `up`, safety-point.ts). */
function safetyBackupOf(backup: MigrateBackup, settings: Settings, backupDeps: () => Promise<BackupJobDeps>): SafetyBackup | undefined {
  if (backup.takeBackup) return backup.takeBackup;
  const { runBackup } = backup;
  if (!runBackup || !settings.storage) return undefined;
  return async () => runBackup(await backupDeps());
}

/** Only a database configured as RDS/Aurora (managed.*) gets the RDS parts of health and cleanup. */
function managedRdsOf(config: FileConfig, options: RuntimeOptions): { rds?: ClientFactory<Rds> } {
  const managed = managedConfigOf(config);
  return (managed.rdsInstance || managed.auroraCluster) && options.rds ? { rds: options.rds } : {};
}

/** The copy of the backups the `replica` health check reads (health.replicaStorage), in its own region. */
function replicaOf(config: FileConfig, settings: Settings, open: StorageOpener | undefined): { replicaStorage?: Storage } {
  const url = config.health.replicaStorage;
  if (!url || !open) return {};
  const region = config.health.replicaRegion;
  return { replicaStorage: open(url, { s3Endpoint: settings.s3Endpoint, ...(region ? { region } : {}) }) };
}

/** The RDS instance or Aurora cluster the database is (managed.*), for cleanup's copies. */
function managedSourceOf(config: FileConfig): { managedSource?: string } {
  const managed = managedConfigOf(config);
  const source = managed.rdsInstance ?? managed.auroraCluster;
  return source ? { managedSource: source } : {};
}

function rdsClientOf(options: RuntimeOptions): ClientFactory<Rds> {
  if (!options.rds) throw new ConfigError('this runtime has no RDS client: managed point-in-time recovery runs from the pgops CLI or its Fargate task');
  return options.rds;
}

/** What a backup uses when its options do not say; the scheduled backup asks for its row counts itself (rowCountsFor). */
function backupDefaultsOf(config: FileConfig): BackupDefaults {
  return { compression: config.backup.compression, rowCounts: rowCountsFor(config.backup.rowCounts, 'on-demand') };
}

export function buildRuntime(settings: Settings, logger: Logger, options: RuntimeOptions = {}): Runtime {
  const alerter = buildAlerter(settings, logger, options);
  const config: FileConfig = settings.config;
  const session: DbSessionOptions = config.database;
  const resolve = once(() => resolveTarget(settings, { secrets: options.secrets ?? defaultSecretsClient }));
  let known: DbTarget | undefined;
  const target = async () => (known = await resolve());
  const databaseId = (t?: DbTarget) => settings.databaseId ?? (t ?? known)?.database ?? 'unknown';
  let signalHandedOut = false;
  const common = async () => {
    const t = await target();
    return { target: t, session, logger, alerter, databaseId: databaseId(t), environment: config.environment };
  };
  const rt: Runtime = {
    settings, logger, alerter, session, target, databaseId,
    ...storageOf(settings, options.openStorage), rdsClient: () => rdsClientOf(options),
    reporting: () => ({ alerter, logger, databaseId: () => databaseId(), environment: config.environment }),
    binDir: once(() => findPgBinDir({ configured: settings.pgBinDir })),
    migrateDeps: async (backup = {}) => {
      // The deploy waits for this backup: row counts from the statistics, not a second full read.
      const takeBackup = safetyBackupOf(backup, settings, () => rt.backupDeps({ alerter: quietAlerter, backupDefaults: { ...backupDefaultsOf(config), rowCounts: 'estimate' } }));
      return {
        ...(await common()),
        dir: settings.migrationsDir,
        tables: historyTables(config.migrate.migrationsSchema, config.migrate.migrationsTable),
        lockWaitSeconds: config.migrate.lockWaitSeconds,
        lint: config.migrate.lint, backupBefore: config.migrate.backupBefore,
        ...(takeBackup ? { takeBackup } : {}),
      };
    },
    backupDeps: async (extra = {}) => {
      const deps: BackupJobDeps = {
        ...(await common()),
        storage: rt.storage(),
        binDir: rt.binDir(),
        migrationsTable: { schema: config.migrate.migrationsSchema, table: config.migrate.migrationsTable },
        backupDefaults: backupDefaultsOf(config),
        signal: options.signal,
        ...extra,
      };
      signalHandedOut ||= deps.signal !== undefined;
      return deps;
    },
    signal: () => {
      signalHandedOut ||= options.signal !== undefined;
      return options.signal;
    },
    physicalDeps: async (extra = {}) => ({ ...(await rt.backupDeps({ signal: extra.signal ?? options.signal })), physical: config.physical, ...extra }),
    interruptible: () => signalHandedOut,
    cleanupDeps: async (extra = {}) => ({ ...(await common()), storage: rt.optionalStorage(), config, ...managedRdsOf(config, options), ...managedSourceOf(config), ...extra }),
    healthDeps: async (extra = {}) => {
      const { alerter: _alerter, ...deps } = await common();
      return { ...deps, storage: rt.optionalStorage(), ...replicaOf(config, settings, options.openStorage), config, migrationsDir: settings.migrationsDir, ...managedRdsOf(config, options), ...extra };
    },
    checkServes: (requested, job) => {
      const served = settings.databaseId ?? known?.database;
      if (requested && served && requested !== served) throw new ConfigError(`this ${job} function serves database "${served}", not "${requested}"`);
    },
  };
  return rt;
}
