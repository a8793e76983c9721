// What every job builder of one database starts from: its configuration, where its backups live,
// where it runs, and the settings all of its functions and its task read.
import { join } from 'node:path';
import type * as ecrAssets from 'aws-cdk-lib/aws-ecr-assets';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { ENV, type FileConfig } from '../../../functions/core/config.ts';
import { runtimeConfigFor, type DatabaseConfig, type PgopsConfig } from '../../config.ts';
import { secretReadStatements, storageUrl, type BackupLocation } from '../../permissions.ts';
import type { Alerting } from '../alerting.ts';
import { CONFIG_FILE, lambdaArchitecture, TASK_ROOT, type NetworkPlacement, type PgopsFunctionProps } from '../pgops-function.ts';

/** What the stack hands to one database's jobs. */
export interface DatabaseJobsProps {
  config: PgopsConfig;
  database: DatabaseConfig;
  repoRoot: string;
  bucket: s3.IBucket;
  bucketKey: kms.IKey;
  alerting: Alerting;
  clusterArn: string;
  /** The cluster's name: the ClusterName dimension of its AWS/ECS metrics. */
  clusterName: string;
  image: ecrAssets.DockerImageAsset;
  failureQueue: sqs.IQueue;
  scheduleDeadLetterQueue: sqs.IQueue;
  scheduleGroupName: string;
  logRetention: logs.RetentionDays;
}

export interface JobContext extends DatabaseJobsProps {
  location: BackupLocation;
  network: NetworkPlacement;
  /** The settings file of the jobs (PGOPS_CONFIG / PGOPS_CONFIG_JSON). */
  runtimeConfig: FileConfig;
  /** The PgopsFunction props every function of this database shares. */
  functionDefaults: Pick<PgopsFunctionProps, 'databaseId' | 'environmentName' | 'network' | 'architecture' | 'logRetention' | 'onFailure' | 'alarmTopic' | 'tracing'>;
}

export function jobContext(props: DatabaseJobsProps): JobContext {
  const { config, database: db } = props;
  const network: NetworkPlacement = { vpcId: db.vpcId, subnetIds: db.subnetIds, securityGroupIds: db.securityGroupIds };
  return {
    ...props,
    location: { environment: config.environment, bucket: props.bucket, key: props.bucketKey, storagePrefix: config.storagePrefix, databaseId: db.id },
    network,
    runtimeConfig: runtimeConfigFor(config, db),
    functionDefaults: {
      databaseId: db.id,
      environmentName: config.environment,
      network,
      architecture: lambdaArchitecture(config.architecture),
      logRetention: props.logRetention,
      onFailure: props.failureQueue,
      alarmTopic: props.alerting.topic,
      tracing: config.tracing,
    },
  };
}

/** What every job of this database reads; no secret value, only the secret's ARN. */
export function baseEnvironment(ctx: JobContext): Record<string, string> {
  const { config, database: db } = ctx;
  return {
    [ENV.databaseSecretId]: db.secretArn,
    [ENV.databaseId]: db.id,
    [ENV.environment]: config.environment,
    [ENV.logLevel]: config.logLevel,
    [ENV.snsTopicArn]: ctx.alerting.topic.topicArn,
    ...(db.sslMode ? { [ENV.sslMode]: db.sslMode } : {}),
    // Where to connect when the secret does not say (an RDS-managed secret holds only username and password).
    ...(db.host !== undefined ? { [ENV.databaseHost]: db.host } : {}),
    ...(db.port !== undefined ? { [ENV.databasePort]: String(db.port) } : {}),
    ...(db.dbname !== undefined ? { [ENV.databaseName]: db.dbname } : {}),
  };
}

/** A NodejsFunction's: the settings file is written beside the bundle. */
export function nodeEnvironment(ctx: JobContext): Record<string, string> {
  return { ...baseEnvironment(ctx), [ENV.config]: `${TASK_ROOT}/${CONFIG_FILE}` };
}

/**
 * The container image's (backup function, Fargate task): the image is shared by all databases, so
 * its settings travel in the environment, and only what backup, restore and verify read, to stay
 * well under Lambda's 4 KB of variables. The base-backup and WAL-receiver tasks add `physical`.
 */
export function containerEnvironment(ctx: JobContext, extra: Array<'physical'> = []): Record<string, string> {
  const r = ctx.runtimeConfig;
  const settings = { environment: r.environment, database: r.database, migrate: r.migrate, backup: r.backup, ...Object.fromEntries(extra.map((k) => [k, r[k]])) };
  return {
    ...baseEnvironment(ctx),
    [ENV.storage]: storageUrl(ctx.location),
    [ENV.configJson]: JSON.stringify(settings),
  };
}

/** PGOPS_MIGRATIONS_DIR of a bundle that ships migrations/. */
export const BUNDLED_MIGRATIONS = { [ENV.migrationsDir]: `${TASK_ROOT}/migrations` };

/** A handler of functions/<handler>/index.ts, bundled with this database's settings file. */
export function nodeCode(ctx: JobContext, handler: string, withMigrations: boolean): PgopsFunctionProps['code'] {
  return {
    node: { entry: join(ctx.repoRoot, 'functions', handler, 'index.ts'), withMigrations, configJson: JSON.stringify(ctx.runtimeConfig, null, 2) },
    repoRoot: ctx.repoRoot,
  };
}

/** What every database function may do: publish alerts and read the database secret. */
export function alertAndSecretStatements(ctx: JobContext): iam.PolicyStatement[] {
  return [...ctx.alerting.publishStatements(), ...secretReadStatements(ctx.database.secretArn, ctx.database.secretKmsKeyArn)];
}
