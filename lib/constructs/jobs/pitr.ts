// What point-in-time recovery adds to a database's existing jobs: the long-job task (which runs
// `pgops pitr`, started by hand) reads base backups and the WAL archive; cleanup's retention reads
// and deletes them; the WAL-archive age alarm; and, in archive-command mode, the managed policy
// the database host needs for `pgops wal push` / `wal fetch`.
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import type { PitrSettings } from '../../config.ts';
import { allowObjects, bucketKeyStatement, listStatement } from '../../permissions.ts';
import { healthAlarmWindow } from '../../schedule-window.ts';
import { topicAlarm } from '../alarm.ts';
import type { LongJobTask } from '../long-job-task.ts';
import type { PgopsFunction } from '../pgops-function.ts';
import type { JobContext } from './context.ts';

/**
 * `pgops pitr` on the long-job task: fetches a base backup and the WAL to replay; its outputs
 * (`--export`: a logical backup) use the task's existing logical rights.
 */
export function allowRecovery(task: LongJobTask, ctx: JobContext): void {
  allowObjects(task.taskRole, 'ReadBaseBackups', ctx.location, ['s3:GetObject'], 'physical/*');
  allowObjects(task.taskRole, 'ReadWalArchive', ctx.location, ['s3:GetObject'], 'wal/*');
}

/**
 * Retention of physical backups by the keep rules, and of exactly the WAL no kept base backup
 * needs: cleanup reads manifests and timeline histories, deletes expired objects and aborts the
 * uploads a crashed base backup left behind.
 */
export function allowPhysicalRetention(cleanup: PgopsFunction, ctx: JobContext): void {
  const loc = ctx.location;
  allowObjects(cleanup.role, 'ReadBaseBackupManifests', loc, ['s3:GetObject'], 'physical/*');
  allowObjects(cleanup.role, 'DeleteExpiredBaseBackups', loc, ['s3:DeleteObject', 's3:AbortMultipartUpload'], 'physical/*');
  allowObjects(cleanup.role, 'ReadWalHistories', loc, ['s3:GetObject'], 'wal/*');
  allowObjects(cleanup.role, 'DeleteUnneededWal', loc, ['s3:DeleteObject'], 'wal/*');
}

/**
 * For the database host in archive-command mode (not attached to anything in the stack): archive
 * WAL with `pgops wal push %p` (put; get: an identical segment pushed again is a success) and
 * read it back with `wal fetch`. ListBucket: S3 answers a missing key with 404 only to a lister.
 */
export function walArchiveHostPolicy(scope: Construct, ctx: JobContext): iam.ManagedPolicy {
  const { config, database: db, location: loc } = ctx;
  const policy = new iam.ManagedPolicy(scope, 'WalArchiveHostPolicy', {
    managedPolicyName: `pgops-${config.environment}-${db.id}-wal-archive`,
    description: `pgops ${config.environment}: lets the host of database ${db.id} archive its WAL (pgops wal push as archive_command) and read it back (pgops wal fetch)`,
    statements: [listStatement(loc), bucketKeyStatement(loc, true)],
  });
  allowObjects(policy, 'ArchiveWal', loc, ['s3:PutObject', 's3:GetObject'], 'wal/*');
  return policy;
}

/**
 * Age of the newest archived WAL segment, as the health check measures it (WalArchiveAgeMinutes).
 * No data (the health check stopped) counts as breaching, over the health check's window.
 */
export function walArchiveAgeAlarm(scope: Construct, ctx: JobContext, pitr: PitrSettings): cloudwatch.Alarm {
  const { config, database: db } = ctx;
  const window = healthAlarmWindow(config.schedules.health);
  const where = pitr.walArchiving === 'stream'
    ? `Check the WAL receiver service pgops-${config.environment}-${db.id}-wal-receiver (its alarm, its task's log) and the slot ${pitr.slot ?? ''} in pg_replication_slots.`
    : `On the database host, read pg_stat_archiver (failed_count, last_failed_wal) and the server log for the archive_command's error; the host needs the policy pgops-${config.environment}-${db.id}-wal-archive.`;
  return topicAlarm(scope, 'WalArchiveAgeAlarm', {
    alarmName: `pgops-${config.environment}-${db.id}-wal-archive-age`,
    description: `The newest archived WAL segment of ${db.id} is older than ${pitr.maxWalArchiveAgeMinutes} min, or the health check stopped reporting: point-in-time recovery cannot reach the last minutes. ${where} Once archiving works again, run \`pgops wal status\`: a gap needs a new base backup.`,
    metric: new cloudwatch.Metric({
      namespace: 'pgops',
      metricName: 'WalArchiveAgeMinutes',
      dimensionsMap: { database: db.id },
      statistic: 'Maximum',
      period: window.period,
    }),
    threshold: pitr.maxWalArchiveAgeMinutes,
    comparison: 'above',
    evaluationPeriods: window.evaluationPeriods,
    datapointsToAlarm: window.evaluationPeriods,
    missingDataBreaches: true,
    topic: ctx.alerting.topic,
  });
}
