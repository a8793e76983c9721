// The Fargate long-job task of one database (large backups, restores, the restore test, and
// point-in-time recovery when the database has it): its environment, the database secret injected
// by ECS, and the task role's storage rights. Also the weekly restore test, which the scheduler
// runs on this task directly. The base-backup task and the WAL receiver are built the same way.
import type { Duration } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { ENV, METRIC_NAMESPACE } from '../../../functions/core/config.ts';
import { taskDeadlinesFor } from '../../config.ts';
import { acknowledge, NAG } from '../../nag.ts';
import { allowObjects, bucketKeyStatement, listStatement, secretReadStatements } from '../../permissions.ts';
import type { ScheduledTask } from '../database-schedules.ts';
import { LongJobTask, TASK_CONTAINER_NAME } from '../long-job-task.ts';
import { containerEnvironment, type JobContext } from './context.ts';

/** The restore test's command line after the task's entry point (`pgops --json`). */
export const RESTORE_TEST_COMMAND = ['backups', 'verify', 'latest', '--restore-test'];

/** What differs between this database's tasks: everything else (secret, alerts, bucket key) they share. */
export interface DatabaseTaskOptions {
  family: string;
  purpose?: string;
  cpu: number;
  memoryMiB: number;
  ephemeralStorageGiB?: number;
  /** Plain settings; the secret id is replaced by the secret's value, injected by ECS. */
  environment: Record<string, string>;
  command?: string[];
  stopTimeout?: Duration;
  /**
   * Runs scheduled jobs (not a service): the CLI publishes their metrics with PutMetricData
   * (namespace pgops only) and stops each at its deadline (tasks.deadlineMinutes).
   */
  scheduledJobs?: boolean;
}

/**
 * A task of this database: the secret's value from ECS secrets (resolved by its execution role),
 * not its id; the task role may publish alerts, list the bucket and use its key. Object rights are
 * the caller's, one prefix at a time.
 */
export function databaseTask(scope: Construct, id: string, ctx: JobContext, options: DatabaseTaskOptions): LongJobTask {
  const { config, database: db, location: loc } = ctx;
  const environment: Record<string, string> = {
    ...options.environment,
    ...(options.scheduledJobs ? { [ENV.metrics]: 'cloudwatch', [ENV.taskDeadlines]: JSON.stringify(taskDeadlinesFor(config)) } : {}),
  };
  delete environment[ENV.databaseSecretId];
  const dbSecret = secretsmanager.Secret.fromSecretCompleteArn(scope, `${id}DatabaseSecret`, db.secretArn);
  const task = new LongJobTask(scope, id, {
    ...options,
    image: ctx.image,
    architecture: config.architecture,
    environment,
    secrets: { [ENV.databaseSecretJson]: ecs.Secret.fromSecretsManager(dbSecret) },
    logRetention: ctx.logRetention,
  });
  // fromSecretsManager grants GetSecretValue to the execution role; a customer-managed key needs Decrypt too.
  for (const s of secretReadStatements(db.secretArn, db.secretKmsKeyArn, 'ResolveDatabaseSecret').slice(1)) task.executionRole.addToPolicy(s);
  for (const s of [...ctx.alerting.publishStatements(), listStatement(loc), bucketKeyStatement(loc, true)]) task.taskRole.addToPolicy(s);
  if (options.scheduledJobs) {
    task.taskRole.addToPolicy(putMetricDataStatement());
    acknowledge(task.taskRole, NAG.putMetricData);
  }
  return task;
}

/** PutMetricData has no resource-level permissions: the namespace condition keeps the task to pgops' own metrics. */
export function putMetricDataStatement(): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: 'PublishJobMetrics',
    actions: ['cloudwatch:PutMetricData'],
    resources: ['*'],
    conditions: { StringEquals: { 'cloudwatch:namespace': METRIC_NAMESPACE } },
  });
}

export function longJobTask(scope: Construct, ctx: JobContext): LongJobTask {
  const { config, database: db } = ctx;
  const task = databaseTask(scope, 'Task', ctx, {
    family: `pgops-${config.environment}-${db.id}`,
    cpu: config.fargate.cpu,
    memoryMiB: config.fargate.memoryMiB,
    ephemeralStorageGiB: config.fargate.ephemeralStorageGiB,
    environment: containerEnvironment(ctx),
    scheduledJobs: true,
  });
  allowObjects(task.taskRole, 'ReadBackups', ctx.location, ['s3:GetObject'], 'logical/*');
  // backup writes dumps and manifests, verify writes restore-test.json; a failed backup removes its partial objects.
  allowObjects(task.taskRole, 'WriteBackups', ctx.location, ['s3:PutObject', 's3:AbortMultipartUpload', 's3:DeleteObject'], 'logical/*');
  return task;
}

/** The weekly restore test of the newest full backup, on the task; undefined when turned off. */
export function restoreTestSchedule(ctx: JobContext, task: LongJobTask): ScheduledTask | undefined {
  const expression = ctx.config.schedules.restoreTest;
  if (expression === null) return undefined;
  return {
    job: 'restore-test',
    description: `pgops restore test of the latest backup of database ${ctx.database.id} (Fargate)`,
    expression,
    clusterArn: ctx.clusterArn,
    taskDefinitionArn: task.taskDefinition.taskDefinitionArn,
    containerName: TASK_CONTAINER_NAME,
    command: RESTORE_TEST_COMMAND,
    passRoleArns: task.passRoleArns,
    network: ctx.network,
  };
}
