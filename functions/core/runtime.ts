// Builds a job's dependencies from the settings: the CLI, the Lambda handlers and the Fargate task
// all go through here, so a job never reads the environment or constructs an AWS client itself.
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SNSClient } from '@aws-sdk/client-sns';
import { defaultSecretsClient, defaultSnsClient, type ClientFactory } from './aws/clients.ts';
import { FanoutAlerter, SnsAlerter, StderrAlerter, type Alert, type Alerter } from './alerts/alerter.ts';
import { SlackAlerter, resolveSlackWebhook } from './alerts/slack.ts';
import type { Settings } from './config.ts';
import { resolveTarget, type DbSessionOptions, type DbTarget } from './db.ts';
import type { Logger } from './logger.ts';
import type { MigrateDeps } from './migrate/job.ts';
import { historyTables } from './migrate/history.ts';
import { ConfigError } from './errors.ts';
import { openStorage } from './storage/index.ts';
import type { Storage } from './storage/types.ts';
import type { BackupJobDeps } from './backup/deps.ts';
import type { CleanupDeps } from './cleanup/job.ts';

export interface AwsClients {
  sns?: ClientFactory<SNSClient>;
  secrets?: ClientFactory<SecretsManagerClient>;
}

export interface Runtime {
  settings: Settings;
  logger: Logger;
  alerter: Alerter;
  session: DbSessionOptions;
  target(): Promise<DbTarget>;
  migrateDeps(): Promise<MigrateDeps>;
  /** The configured storage; a ConfigError (exit 2) when none is configured. */
  storage(): Storage;
  /** Dependencies of the backup, verify and restore jobs. */
  backupDeps(extra?: Partial<BackupJobDeps>): Promise<BackupJobDeps>;
  /** Dependencies of the cleanup job; storage only when configured (retention is skipped without). */
  cleanupDeps(extra?: Partial<CleanupDeps>): Promise<CleanupDeps>;
  /** The id used in alerts and the storage layout. */
  databaseId(target?: DbTarget): string;
  /** Send an alert with the environment and database filled in. */
  alert(a: Omit<Alert, 'environment' | 'database'> & { database?: string }): Promise<void>;
}

export function buildRuntime(settings: Settings, logger: Logger, clients: AwsClients = {}): Runtime {
  const sns = clients.sns ?? defaultSnsClient;
  const secrets = clients.secrets ?? defaultSecretsClient;
  const destinations: Alerter[] = [];
  if (settings.snsTopicArn) destinations.push(new SnsAlerter(sns, settings.snsTopicArn));
  if (settings.slackWebhookUrl || settings.slackWebhookSecretId) {
    destinations.push(new SlackAlerter({ webhookUrl: settings.slackWebhookUrl ?? (() => resolveSlackWebhook(settings, secrets)), logger }));
  }
  if (destinations.length === 0) destinations.push(new StderrAlerter());
  const alerter = new FanoutAlerter(destinations, logger);
  const session: DbSessionOptions = settings.config.database;
  let resolved: Promise<DbTarget> | undefined;
  const target = () => (resolved ??= resolveTarget(settings, { secrets }));
  let known: DbTarget | undefined;
  let storage: Storage | undefined;
  const getStorage = (): Storage => {
    if (!settings.storage) throw new ConfigError('invalid configuration', ['no storage: set --storage / PGOPS_STORAGE (s3://bucket/prefix or file:///absolute/path)']);
    return (storage ??= openStorage(settings.storage, { s3Endpoint: settings.s3Endpoint }));
  };
  const databaseId = (t?: DbTarget) => settings.databaseId ?? (t ?? known)?.database ?? 'unknown';
  return {
    settings,
    logger,
    alerter,
    session,
    target: async () => (known = await target()),
    async migrateDeps() {
      return {
        target: (known = await target()),
        session,
        dir: settings.migrationsDir,
        tables: historyTables(settings.config.migrate.migrationsSchema, settings.config.migrate.migrationsTable),
        lockWaitSeconds: settings.config.migrate.lockWaitSeconds,
        logger,
      };
    },
    storage: getStorage,
    async backupDeps(extra = {}) {
      const t = (known = await target());
      return {
        target: t,
        storage: getStorage(),
        logger,
        alerter,
        databaseId: databaseId(t),
        environment: settings.config.environment,
        session,
        migrationsTable: { schema: settings.config.migrate.migrationsSchema, table: settings.config.migrate.migrationsTable },
        ...extra,
      };
    },
    async cleanupDeps(extra = {}) {
      const t = (known = await target());
      return {
        target: t,
        session,
        storage: settings.storage ? getStorage() : undefined,
        logger,
        alerter,
        databaseId: databaseId(t),
        environment: settings.config.environment,
        config: settings.config,
        ...extra,
      };
    },
    databaseId,
    async alert(a) {
      // Never let a broken alert destination replace the job's own error.
      await alerter.send({ ...a, database: a.database ?? databaseId(), environment: settings.config.environment }).catch(() => {});
    },
  };
}
