// The backup function and its nightly schedule: pg_dump to S3 inline below backup.inlineMaxBytes,
// else it starts the Fargate task. Also the backup-age alarm, which fires when no recent backup
// exists (the health check measures the age).
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';
import { ENV } from '../../../functions/core/config.ts';
import { allowObjects, bucketKeyStatement, runTaskStatements } from '../../permissions.ts';
import { healthAlarmWindow } from '../../schedule-window.ts';
import { topicAlarm } from '../alarm.ts';
import type { ScheduledInvoke } from '../database-schedules.ts';
import { LAMBDA_CMD } from '../job-image.ts';
import { TASK_CONTAINER_NAME, type LongJobTask } from '../long-job-task.ts';
import { PgopsFunction } from '../pgops-function.ts';
import { alertAndSecretStatements, containerEnvironment, type JobContext } from './context.ts';

export function backupFunction(scope: Construct, ctx: JobContext, task: LongJobTask): PgopsFunction {
  const { database: db, location: loc } = ctx;
  const taskDefinitionArn = task.taskDefinition.taskDefinitionArn;
  const fn = new PgopsFunction(scope, 'Backup', {
    ...ctx.functionDefaults,
    job: 'backup',
    description: `pgops backup (${db.id}): pg_dump to S3, or the Fargate task for large databases`,
    code: { image: lambda.DockerImageCode.fromEcr(ctx.image.repository, { tagOrDigest: ctx.image.imageTag, cmd: LAMBDA_CMD }) },
    timeout: Duration.minutes(15),
    memorySize: 2048,
    retryAttempts: 1,
    environment: {
      ...containerEnvironment(ctx),
      // Where it starts the task for a large database.
      [ENV.ecsCluster]: ctx.clusterArn,
      [ENV.ecsTaskDefinition]: taskDefinitionArn,
      [ENV.ecsContainerName]: TASK_CONTAINER_NAME,
      [ENV.ecsSubnets]: db.subnetIds.join(','),
      [ENV.ecsSecurityGroups]: db.securityGroupIds.join(','),
    },
    onError: 'Tonight\'s backup did not complete (the alert names the cause: pg_dump, the connection, S3). No manifest was written, so no broken backup is listed. Fix the cause and invoke the backup function again with {"database": "' + db.id + '"}.',
  });
  for (const s of [
    ...alertAndSecretStatements(ctx),
    bucketKeyStatement(loc, true),
    ...runTaskStatements(taskDefinitionArn, ctx.clusterArn, task.passRoleArns),
  ]) fn.allow(s);
  // A failed upload is aborted; a dump whose manifest could not be written is deleted.
  allowObjects(fn.role, 'WriteBackups', loc, ['s3:PutObject', 's3:AbortMultipartUpload', 's3:DeleteObject'], 'logical/*');
  return fn;
}

export function backupSchedule(ctx: JobContext, fn: PgopsFunction): ScheduledInvoke {
  return { job: 'backup', expression: ctx.config.schedules.backup, function: fn.function, maxEventAgeSeconds: 3 * 3600, maxRetries: 5 };
}

/**
 * Backup age, as the health check measures it. No data (no backup yet, or the health check
 * stopped running) counts as breaching: silence must not look healthy.
 */
export function backupAgeAlarm(scope: Construct, ctx: JobContext): cloudwatch.Alarm {
  const { config, database: db } = ctx;
  const window = healthAlarmWindow(config.schedules.health);
  return topicAlarm(scope, 'BackupAgeAlarm', {
    alarmName: `pgops-${config.environment}-${db.id}-backup-age`,
    description: `No backup of ${db.id} younger than ${config.health.maxBackupAgeHours} h, or the health check stopped reporting. Check the backup function's last run (and its alerts), then that the health check runs; invoke the backup function with {"database": "${db.id}"} to take one now.`,
    metric: new cloudwatch.Metric({
      namespace: 'pgops',
      metricName: 'BackupAgeHours',
      dimensionsMap: { database: db.id },
      statistic: 'Maximum',
      period: window.period,
    }),
    threshold: config.health.maxBackupAgeHours,
    comparison: 'above',
    evaluationPeriods: window.evaluationPeriods,
    datapointsToAlarm: window.evaluationPeriods,
    missingDataBreaches: true,
    topic: ctx.alerting.topic,
  });
}
