// The base-backup task of a database with PITR and its schedule: `pgops basebackup` (pg_basebackup
// -Ft streamed to <prefix>/<db>/physical/) on Fargate, started directly by the scheduler like the
// restore test. Its role writes base backups, and lists the bucket (a base backup waits until the
// WAL it needs shows up in the archive); nothing else.
import type { Construct } from 'constructs';
import type { PitrSettings } from '../../config.ts';
import { allowObjects } from '../../permissions.ts';
import type { ScheduledTask } from '../database-schedules.ts';
import { TASK_CONTAINER_NAME, type LongJobTask } from '../long-job-task.ts';
import { containerEnvironment, type JobContext } from './context.ts';
import { databaseTask } from './task.ts';

/** The base backup's command line after the task's entry point (`pgops --json`). */
export const BASE_BACKUP_COMMAND = ['basebackup'];

export function baseBackupTask(scope: Construct, ctx: JobContext): LongJobTask {
  const { config, database: db, location: loc } = ctx;
  const task = databaseTask(scope, 'BaseBackupTask', ctx, {
    family: `pgops-${config.environment}-${db.id}-basebackup`,
    purpose: 'base-backup task (pg_basebackup)',
    cpu: config.fargate.cpu,
    memoryMiB: config.fargate.memoryMiB,
    // Streamed from pg_basebackup to S3: no local copy, Fargate's free 20 GiB are plenty.
    environment: containerEnvironment(ctx, ['physical']),
    command: BASE_BACKUP_COMMAND,
    scheduledJobs: true,
  });
  // A failed base backup aborts its upload and removes what it wrote (no manifest, no backup).
  allowObjects(task.taskRole, 'WriteBaseBackups', loc, ['s3:PutObject', 's3:AbortMultipartUpload', 's3:DeleteObject'], 'physical/*');
  return task;
}

export function baseBackupSchedule(ctx: JobContext, task: LongJobTask, pitr: PitrSettings): ScheduledTask {
  return {
    job: 'basebackup',
    description: `pgops base backup (pg_basebackup) of database ${ctx.database.id} for point-in-time recovery (Fargate)`,
    statementName: 'BaseBackupTask',
    expression: pitr.baseBackupSchedule,
    clusterArn: ctx.clusterArn,
    taskDefinitionArn: task.taskDefinition.taskDefinitionArn,
    containerName: TASK_CONTAINER_NAME,
    command: BASE_BACKUP_COMMAND,
    passRoleArns: task.passRoleArns,
    network: ctx.network,
  };
}
