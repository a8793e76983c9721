// Point-in-time recovery of one database (opt-in: `pitr` in its configuration): the base-backup
// task and its schedule; the WAL receiver service (stream) or the database host's IAM policy
// (archive-command); the WAL-archive age alarm; and the rights the long-job task (which runs
// `pgops pitr`) and cleanup (retention of base backups and WAL) need for the new prefixes.
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import type { PitrSettings } from '../config.ts';
import type { ScheduledTask } from './database-schedules.ts';
import { baseBackupSchedule, baseBackupTask } from './jobs/basebackup.ts';
import type { JobContext } from './jobs/context.ts';
import { allowPhysicalRetention, allowRecovery, walArchiveAgeAlarm, walArchiveHostPolicy } from './jobs/pitr.ts';
import { walReceiver, type WalReceiver } from './jobs/wal-receiver.ts';
import type { LongJobTask } from './long-job-task.ts';
import type { PgopsFunction } from './pgops-function.ts';

export interface DatabasePitrProps {
  ctx: JobContext;
  settings: PitrSettings;
  /** The long-job task: `pgops pitr` runs on it (aws ecs run-task with a command override). */
  task: LongJobTask;
  cleanup: PgopsFunction;
}

export class DatabasePitr extends Construct {
  readonly settings: PitrSettings;
  readonly baseBackupTask: LongJobTask;
  readonly baseBackupSchedule: ScheduledTask;
  /** Stream mode. */
  readonly receiver?: WalReceiver;
  /** Archive-command mode: for the database host to attach. */
  readonly hostPolicy?: iam.ManagedPolicy;
  readonly walArchiveAgeAlarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: DatabasePitrProps) {
    super(scope, id);
    const { ctx, settings } = props;
    this.settings = settings;
    this.baseBackupTask = baseBackupTask(this, ctx);
    this.baseBackupSchedule = baseBackupSchedule(ctx, this.baseBackupTask, settings);
    if (settings.slot !== undefined) this.receiver = walReceiver(this, ctx, settings.slot);
    else this.hostPolicy = walArchiveHostPolicy(this, ctx);
    allowRecovery(props.task, ctx);
    allowPhysicalRetention(props.cleanup, ctx);
    this.walArchiveAgeAlarm = walArchiveAgeAlarm(this, ctx, settings);
  }
}
