// Builds a job's dependencies from the settings: the CLI, the Lambda handlers and the Fargate task
// all go through here, so a job never reads the environment or constructs an AWS client itself.
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SNSClient } from '@aws-sdk/client-sns';
import { FanoutAlerter, SnsAlerter, StderrAlerter, type Alert, type Alerter } from './alerts.ts';
import type { Settings } from './config.ts';
import { resolveTarget, type DbSessionOptions, type DbTarget } from './db.ts';
import type { Logger } from './logger.ts';
import type { MigrateDeps } from './migrate/job.ts';
import { historyTables } from './migrate/files.ts';

export interface AwsClients {
  sns?: () => SNSClient;
  secrets?: () => SecretsManagerClient;
}

function lazy<T>(make: () => T): () => T {
  let v: T | undefined;
  return () => (v ??= make());
}

export interface Runtime {
  settings: Settings;
  logger: Logger;
  alerter: Alerter;
  session: DbSessionOptions;
  target(): Promise<DbTarget>;
  migrateDeps(): Promise<MigrateDeps>;
  /** The id used in alerts and the storage layout. */
  databaseId(target?: DbTarget): string;
  /** Send an alert with the environment and database filled in. */
  alert(a: Omit<Alert, 'environment' | 'database'> & { database?: string }): Promise<void>;
}

export function buildRuntime(settings: Settings, logger: Logger, clients: AwsClients = {}): Runtime {
  const sns = clients.sns ?? lazy(() => new SNSClient({}));
  const secrets = clients.secrets ?? lazy(() => new SecretsManagerClient({}));
  const destinations: Alerter[] = [];
  if (settings.snsTopicArn) destinations.push(new SnsAlerter(sns(), settings.snsTopicArn));
  if (destinations.length === 0) destinations.push(new StderrAlerter());
  const alerter = new FanoutAlerter(destinations, logger);
  const session: DbSessionOptions = settings.config.database;
  let resolved: Promise<DbTarget> | undefined;
  const target = () => (resolved ??= resolveTarget(settings, { secrets }));
  let known: DbTarget | undefined;
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
    databaseId,
    async alert(a) {
      await alerter.send({ ...a, database: a.database ?? databaseId(), environment: settings.config.environment });
    },
  };
}
