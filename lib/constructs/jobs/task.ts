// The Fargate long-job task of one database (large backups, restores, the restore test): its
// environment, the database secret injected by ECS, and the task role's storage rights. Also the
// weekly restore test, which the scheduler runs on this task directly.
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { ENV } from '../../../functions/core/config.ts';
import { allowObjects, bucketKeyStatement, listStatement, secretReadStatements } from '../../permissions.ts';
import type { ScheduledTask } from '../database-schedules.ts';
import { LongJobTask, TASK_CONTAINER_NAME } from '../long-job-task.ts';
import { containerEnvironment, type JobContext } from './context.ts';

/** The restore test's command line after the task's entry point (`pgops --json`). */
export const RESTORE_TEST_COMMAND = ['backups', 'verify', 'latest', '--restore-test'];

export function longJobTask(scope: Construct, ctx: JobContext): LongJobTask {
  const { config, database: db, location: loc } = ctx;
  // The task gets the secret's value from ECS secrets (resolved by its execution role), not its id.
  const environment = containerEnvironment(ctx);
  delete environment[ENV.databaseSecretId];
  const dbSecret = secretsmanager.Secret.fromSecretCompleteArn(scope, 'DatabaseSecret', db.secretArn);
  const task = new LongJobTask(scope, 'Task', {
    family: `pgops-${config.environment}-${db.id}`,
    image: ctx.image,
    architecture: config.architecture,
    cpu: config.fargate.cpu,
    memoryMiB: config.fargate.memoryMiB,
    ephemeralStorageGiB: config.fargate.ephemeralStorageGiB,
    environment,
    secrets: { [ENV.databaseSecretJson]: ecs.Secret.fromSecretsManager(dbSecret) },
    logRetention: ctx.logRetention,
  });
  // fromSecretsManager grants GetSecretValue to the execution role; a customer-managed key needs Decrypt too.
  for (const s of secretReadStatements(db.secretArn, db.secretKmsKeyArn, 'ResolveDatabaseSecret').slice(1)) task.executionRole.addToPolicy(s);
  for (const s of [...ctx.alerting.publishStatements(), listStatement(loc), bucketKeyStatement(loc, true)]) task.taskRole.addToPolicy(s);
  allowObjects(task.taskRole, 'ReadBackups', loc, ['s3:GetObject'], 'logical/*');
  // backup writes dumps and manifests, verify writes restore-test.json; a failed backup removes its partial objects.
  allowObjects(task.taskRole, 'WriteBackups', loc, ['s3:PutObject', 's3:AbortMultipartUpload', 's3:DeleteObject'], 'logical/*');
  return task;
}

/** The weekly restore test of the newest full backup, on the task; undefined when turned off. */
export function restoreTestSchedule(ctx: JobContext, task: LongJobTask): ScheduledTask | undefined {
  const expression = ctx.config.schedules.restoreTest;
  if (expression === null) return undefined;
  return {
    expression,
    clusterArn: ctx.clusterArn,
    taskDefinitionArn: task.taskDefinition.taskDefinitionArn,
    containerName: TASK_CONTAINER_NAME,
    command: RESTORE_TEST_COMMAND,
    passRoleArns: task.passRoleArns,
    network: ctx.network,
  };
}
