// Everything pgops runs for one database, assembled from the per-job builders in jobs/: the
// migrate, backup, health-check and cleanup functions in the database's subnets, its Fargate task,
// its schedules and its backup-age alarm, and point-in-time recovery when the database opts in.
// Each job's function, IAM and schedule live in its file.
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';
import { pitrSettingsFor } from '../config.ts';
import { DatabasePitr } from './database-pitr.ts';
import { DatabaseSchedules, type ScheduledTask } from './database-schedules.ts';
import { backupAgeAlarm, backupFunction, backupSchedule } from './jobs/backup.ts';
import { cleanupFunction, cleanupSchedule } from './jobs/cleanup.ts';
import { jobContext, type DatabaseJobsProps } from './jobs/context.ts';
import { healthFunction, healthSchedule } from './jobs/health.ts';
import { allowMigrateBackups, migrateFunction } from './jobs/migrate.ts';
import { ManagedPitrStateMachine, managedSourceOfConfig } from './jobs/managed-pitr.ts';
import { allowExpiredCopyCleanup, allowRestoreWindowRead } from './jobs/managed-rds-access.ts';
import { jobSilenceAlarms } from './jobs/silence.ts';
import { longJobTask, restoreTestSchedule } from './jobs/task.ts';
import type { LongJobTask } from './long-job-task.ts';
import type { PgopsFunction } from './pgops-function.ts';

export type DatabaseOpsProps = DatabaseJobsProps;

export class DatabaseOps extends Construct {
  readonly migrate: PgopsFunction;
  readonly backup: PgopsFunction;
  readonly health: PgopsFunction;
  readonly cleanup: PgopsFunction;
  readonly task: LongJobTask;
  readonly schedules: DatabaseSchedules;
  readonly backupAgeAlarm: cloudwatch.Alarm;
  /** "<job> has not succeeded within its schedule plus slack", one per scheduled job (jobs/silence.ts). */
  readonly silentAlarms: cloudwatch.Alarm[];
  /** Present when the database has `pitr`. */
  readonly pitr?: DatabasePitr;
  /** Present when the database is an RDS instance or Aurora cluster (`managed`). */
  readonly managedPitr?: ManagedPitrStateMachine;

  constructor(scope: Construct, id: string, props: DatabaseOpsProps) {
    super(scope, id);
    const ctx = jobContext(props);
    this.migrate = migrateFunction(this, ctx);
    this.task = longJobTask(this, ctx);
    this.backup = backupFunction(this, ctx, this.task);
    allowMigrateBackups(ctx, this.migrate, this.backup);
    this.health = healthFunction(this, ctx);
    this.cleanup = cleanupFunction(this, ctx);
    const pitr = pitrSettingsFor(props.config, props.database);
    if (pitr) this.pitr = new DatabasePitr(this, 'Pitr', { ctx, settings: pitr, task: this.task, cleanup: this.cleanup });
    const managedSource = managedSourceOfConfig(props.database.managed);
    if (props.database.managed && managedSource) {
      this.managedPitr = new ManagedPitrStateMachine(this, 'ManagedPitr', { ctx, managed: props.database.managed, source: managedSource, task: this.task });
      allowRestoreWindowRead(this.health, managedSource);
      allowExpiredCopyCleanup(this.cleanup, managedSource);
    }
    this.schedules = new DatabaseSchedules(this, 'Schedules', {
      databaseId: props.database.id,
      groupName: props.scheduleGroupName,
      timezone: props.config.schedules.timezone,
      deadLetterQueue: props.scheduleDeadLetterQueue,
      invokes: [backupSchedule(ctx, this.backup), healthSchedule(ctx, this.health), cleanupSchedule(ctx, this.cleanup)],
      tasks: [restoreTestSchedule(ctx, this.task), this.pitr?.baseBackupSchedule].filter((t): t is ScheduledTask => t !== undefined),
    });
    this.backupAgeAlarm = backupAgeAlarm(this, ctx);
    this.silentAlarms = jobSilenceAlarms(this, ctx, this.pitr);
  }
}
