// Everything pgops runs for one database: the migrate, backup, health-check and cleanup functions
// in the database's subnets, its Fargate task definition, its schedules, its backup-age alarm, and
// each role holding exactly what its job uses.
import { join } from 'node:path';
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as ecrAssets from 'aws-cdk-lib/aws-ecr-assets';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { runtimeConfigFor, type DatabaseConfig, type PgopsConfig } from '../config.ts';
import {
  allowObjects, bucketKeyStatement, listStatement, runTaskStatements, secretReadStatements, storageUrl, type BackupLocation,
} from '../permissions.ts';
import { healthAlarmWindow } from '../schedule-window.ts';
import type { Alerting } from './alerting.ts';
import { DatabaseSchedules } from './database-schedules.ts';
import { LAMBDA_CMD } from './job-image.ts';
import { LongJobTask, TASK_CONTAINER_NAME } from './long-job-task.ts';
import { CONFIG_FILE, PgopsFunction, TASK_ROOT, type NetworkPlacement } from './pgops-function.ts';

export interface DatabaseOpsProps {
  config: PgopsConfig;
  database: DatabaseConfig;
  repoRoot: string;
  bucket: s3.IBucket;
  bucketKey: kms.IKey;
  alerting: Alerting;
  clusterArn: string;
  image: ecrAssets.DockerImageAsset;
  failureQueue: sqs.IQueue;
  scheduleDeadLetterQueue: sqs.IQueue;
  scheduleGroupName: string;
  logRetention: logs.RetentionDays;
}

export class DatabaseOps extends Construct {
  readonly migrate: PgopsFunction;
  readonly backup: PgopsFunction;
  readonly health: PgopsFunction;
  readonly cleanup: PgopsFunction;
  readonly task: LongJobTask;
  readonly schedules: DatabaseSchedules;
  readonly backupAgeAlarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: DatabaseOpsProps) {
    super(scope, id);
    const { config, database: db, alerting } = props;
    const loc: BackupLocation = { environment: config.environment, bucket: props.bucket, key: props.bucketKey, storagePrefix: config.storagePrefix, databaseId: db.id };
    const network: NetworkPlacement = { vpcId: db.vpcId, subnetIds: db.subnetIds, securityGroupIds: db.securityGroupIds };
    const architecture = config.architecture === 'arm64' ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64;
    const runtimeConfig = runtimeConfigFor(config, db);

    // What every job of this database reads; no secret value, only the secret's ARN.
    const baseEnv: Record<string, string> = {
      PGOPS_DATABASE_SECRET_ID: db.secretArn,
      PGOPS_DATABASE_ID: db.id,
      PGOPS_ENVIRONMENT: config.environment,
      PGOPS_LOG_LEVEL: config.logLevel,
      PGOPS_SNS_TOPIC_ARN: alerting.topic.topicArn,
      ...(db.sslMode ? { PGOPS_DATABASE_SSLMODE: db.sslMode } : {}),
    };
    const nodeEnv = { ...baseEnv, PGOPS_CONFIG: `${TASK_ROOT}/${CONFIG_FILE}` };
    // The image is shared by all databases: its settings travel in the environment (see job-image.ts).
    // Only what backup, restore and verify read, to stay well under Lambda's 4 KB of variables.
    const containerConfigJson = JSON.stringify({ environment: runtimeConfig.environment, database: runtimeConfig.database, migrate: runtimeConfig.migrate, backup: runtimeConfig.backup });
    const containerEnv: Record<string, string> = { ...baseEnv, PGOPS_STORAGE: storageUrl(loc), PGOPS_CONFIG_JSON: containerConfigJson };
    // The task gets the secret's value from ECS secrets (resolved by its execution role), not its id.
    const taskEnv: Record<string, string> = { ...containerEnv };
    delete taskEnv.PGOPS_DATABASE_SECRET_ID;
    const dbSecret = secretsmanager.Secret.fromSecretCompleteArn(this, 'DatabaseSecret', db.secretArn);

    const common = {
      databaseId: db.id,
      environmentName: config.environment,
      network,
      architecture,
      logRetention: props.logRetention,
      onFailure: props.failureQueue,
      alarmTopic: alerting.topic,
    };
    const nodeCode = (entry: string, withMigrations: boolean) => ({
      node: { entry: join(props.repoRoot, 'functions', entry, 'index.ts'), withMigrations, configJson: JSON.stringify(runtimeConfig, null, 2) },
      repoRoot: props.repoRoot,
    });
    const alertAndSecret = [...alerting.publishStatements(), ...secretReadStatements(db.secretArn, db.secretKmsKeyArn)];

    // --- migrate: invoked by pipelines (and optionally on deploy); reads its secret, alerts.
    this.migrate = new PgopsFunction(this, 'Migrate', {
      ...common,
      job: 'migrate',
      description: `pgops migrate (${db.id}): applies migrations/ shipped in this bundle`,
      code: nodeCode('migrate', true),
      timeout: Duration.minutes(15),
      memorySize: 512,
      retryAttempts: 0,
      environment: { ...nodeEnv, PGOPS_MIGRATIONS_DIR: `${TASK_ROOT}/migrations` },
      onError: 'A migration failed (or the function crashed): the pipeline that invoked it has failed too. Read the error in the alert or the function logs, fix the migration, and deploy again; `pgops migrate status` shows what is applied.',
    });
    alertAndSecret.forEach((s) => this.migrate.allow(s));

    // --- the Fargate task: backup (large databases), restore, verify and the restore test.
    this.task = new LongJobTask(this, 'Task', {
      family: `pgops-${config.environment}-${db.id}`,
      image: props.image,
      architecture: config.architecture,
      cpu: config.fargate.cpu,
      memoryMiB: config.fargate.memoryMiB,
      ephemeralStorageGiB: config.fargate.ephemeralStorageGiB,
      environment: taskEnv,
      secrets: { PGOPS_DATABASE_SECRET_JSON: ecs.Secret.fromSecretsManager(dbSecret) },
      logRetention: props.logRetention,
    });
    // fromSecretsManager grants GetSecretValue to the execution role; a customer-managed key needs Decrypt too.
    for (const s of secretReadStatements(db.secretArn, db.secretKmsKeyArn, 'ResolveDatabaseSecret').slice(1)) this.task.executionRole.addToPolicy(s);
    const taskRole = this.task.taskRole;
    for (const s of [...alerting.publishStatements(), listStatement(loc), bucketKeyStatement(loc, true)]) taskRole.addToPolicy(s);
    allowObjects(taskRole, 'ReadBackups', loc, ['s3:GetObject'], 'logical/*');
    // backup writes dumps and manifests, verify writes restore-test.json; a failed backup removes its partial objects.
    allowObjects(taskRole, 'WriteBackups', loc, ['s3:PutObject', 's3:AbortMultipartUpload', 's3:DeleteObject'], 'logical/*');

    // --- backup: inline below backup.inlineMaxBytes, else it starts the task.
    this.backup = new PgopsFunction(this, 'Backup', {
      ...common,
      job: 'backup',
      description: `pgops backup (${db.id}): pg_dump to S3, or the Fargate task for large databases`,
      code: { image: lambda.DockerImageCode.fromEcr(props.image.repository, { tagOrDigest: props.image.imageTag, cmd: LAMBDA_CMD }) },
      timeout: Duration.minutes(15),
      memorySize: 2048,
      retryAttempts: 1,
      environment: {
        ...containerEnv,
        PGOPS_ECS_CLUSTER: props.clusterArn,
        PGOPS_ECS_TASK_DEFINITION: this.task.taskDefinition.taskDefinitionArn,
        PGOPS_ECS_CONTAINER_NAME: TASK_CONTAINER_NAME,
        PGOPS_ECS_SUBNETS: db.subnetIds.join(','),
        PGOPS_ECS_SECURITY_GROUPS: db.securityGroupIds.join(','),
      },
      onError: 'Tonight\'s backup did not complete (the alert names the cause: pg_dump, the connection, S3). No manifest was written, so no broken backup is listed. Fix the cause and invoke the backup function again with {"database": "' + db.id + '"}.',
    });
    for (const s of [
      ...alertAndSecret,
      bucketKeyStatement(loc, true),
      ...runTaskStatements(this.task.taskDefinition.taskDefinitionArn, props.clusterArn, [this.task.taskRole.roleArn, this.task.executionRole.roleArn]),
    ]) this.backup.allow(s);
    // A failed upload is aborted; a dump whose manifest could not be written is deleted.
    allowObjects(this.backup.role, 'WriteBackups', loc, ['s3:PutObject', 's3:AbortMultipartUpload', 's3:DeleteObject'], 'logical/*');

    // --- health: reads the backups and writes its state; metrics go out as log lines (EMF).
    this.health = new PgopsFunction(this, 'Health', {
      ...common,
      job: 'health',
      description: `pgops health check (${db.id}): pg_stat_* checks, backup age and size, restore tests`,
      code: nodeCode('health-check', true),
      timeout: Duration.minutes(5),
      memorySize: 512,
      retryAttempts: 0,
      environment: { ...nodeEnv, PGOPS_STORAGE: storageUrl(loc), PGOPS_MIGRATIONS_DIR: `${TASK_ROOT}/migrations` },
      onError: 'The health check itself crashed (a failing check is an alert, not an error): until it runs again nothing watches this database. Read the function logs.',
    });
    for (const s of [...alertAndSecret, listStatement(loc), bucketKeyStatement(loc, true)]) this.health.allow(s);
    allowObjects(this.health.role, 'ReadBackupsAndState', loc, ['s3:GetObject'], '*');
    allowObjects(this.health.role, 'WriteHealthState', loc, ['s3:PutObject'], 'state/*');

    // --- cleanup: expired rows, and backups past retention.
    this.cleanup = new PgopsFunction(this, 'Cleanup', {
      ...common,
      job: 'cleanup',
      description: `pgops cleanup (${db.id}): expired rows in batches, backup retention`,
      code: nodeCode('cleanup', false),
      timeout: Duration.minutes(15),
      memorySize: 512,
      retryAttempts: 1,
      environment: { ...nodeEnv, PGOPS_STORAGE: storageUrl(loc) },
      onError: 'Cleanup failed: expired rows or old backups were not removed tonight (the alert names the rule or the object). Fix the cause; the next run continues where this one stopped.',
    });
    for (const s of [...alertAndSecret, listStatement(loc), bucketKeyStatement(loc, false)]) this.cleanup.allow(s);
    allowObjects(this.cleanup.role, 'ReadManifests', loc, ['s3:GetObject'], 'logical/*');
    allowObjects(this.cleanup.role, 'DeleteExpiredBackups', loc, ['s3:DeleteObject'], 'logical/*');

    // --- schedules
    const s = config.schedules;
    this.schedules = new DatabaseSchedules(this, 'Schedules', {
      databaseId: db.id,
      groupName: props.scheduleGroupName,
      timezone: s.timezone,
      deadLetterQueue: props.scheduleDeadLetterQueue,
      invokes: [
        { job: 'backup', expression: s.backup, function: this.backup.function, maxEventAgeSeconds: 3 * 3600, maxRetries: 5 },
        { job: 'health', expression: s.health, function: this.health.function, maxEventAgeSeconds: 900, maxRetries: 2 },
        { job: 'cleanup', expression: s.cleanup, function: this.cleanup.function, maxEventAgeSeconds: 3 * 3600, maxRetries: 5 },
      ],
      restoreTest: s.restoreTest === null ? undefined : {
        expression: s.restoreTest,
        clusterArn: props.clusterArn,
        taskDefinitionArn: this.task.taskDefinition.taskDefinitionArn,
        containerName: TASK_CONTAINER_NAME,
        command: ['verify', 'latest', '--restore-test'],
        passRoleArns: [this.task.taskRole.roleArn, this.task.executionRole.roleArn],
        network,
      },
    });

    // --- backup age, as the health check measures it. No data (no backup yet, or the health
    // check stopped running) counts as breaching: silence must not look healthy.
    const window = healthAlarmWindow(s.health);
    this.backupAgeAlarm = new cloudwatch.Alarm(this, 'BackupAgeAlarm', {
      alarmName: `pgops-${config.environment}-${db.id}-backup-age`,
      alarmDescription: `No backup of ${db.id} younger than ${config.health.maxBackupAgeHours} h, or the health check stopped reporting. Check the backup function's last run (and its alerts), then that the health check runs; invoke the backup function with {"database": "${db.id}"} to take one now.`,
      metric: new cloudwatch.Metric({
        namespace: 'pgops',
        metricName: 'BackupAgeHours',
        dimensionsMap: { database: db.id },
        statistic: 'Maximum',
        period: window.period,
      }),
      threshold: config.health.maxBackupAgeHours,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: window.evaluationPeriods,
      datapointsToAlarm: window.evaluationPeriods,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });
    const action = new cwActions.SnsAction(alerting.topic);
    this.backupAgeAlarm.addAlarmAction(action);
    this.backupAgeAlarm.addOkAction(action);
  }
}
