// Where a scheduled backup runs: inline (in the Lambda) or as a Fargate task, which outlives
// Lambda's 15 minutes. In auto mode the database size decides, against backup.inlineMaxBytes.
import type { ECSClient } from '@aws-sdk/client-ecs';
import { startFargateTask } from '../aws/ecs-task.ts';
import type { FargateSettings } from '../config.ts';
import { withClient, type DbSessionOptions, type DbTarget } from '../db.ts';
import { ConfigError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { BackupManifest } from '../catalog/manifest.ts';
import type { BackupOptions } from './deps.ts';

export type BackupMode = 'auto' | 'inline' | 'fargate';

export interface DispatchDeps {
  target(): Promise<DbTarget>;
  session: DbSessionOptions;
  logger: Logger;
  databaseId(): string;
  /** backup.inlineMaxBytes: above it, auto mode dispatches to Fargate. */
  inlineMaxBytes: number;
  /** The task to run; undefined when the stack configured none. */
  fargate?: FargateSettings;
  ecs: () => ECSClient;
  /** The inline backup (runBackup with its dependencies). */
  backupInline: (options: BackupOptions) => Promise<BackupManifest>;
}

export interface FargateDispatch {
  dispatched: 'fargate';
  taskArn: string;
  /** The size that decided it, in auto mode. */
  databaseBytes?: number;
}

/** The task's command line for the same backup (the container runs the pgops CLI). */
export function taskCommand(options: BackupOptions & { mode?: BackupMode }): string[] {
  const args = ['backup'];
  if (options.schemaOnly) args.push('--schema-only');
  if (options.dataOnly) args.push('--data-only');
  for (const t of options.tables ?? []) args.push('--table', t);
  for (const t of options.excludeTables ?? []) args.push('--exclude-table', t);
  if (options.rowCounts !== undefined) args.push('--row-counts', options.rowCounts);
  return args;
}

/** Inline or Fargate: `fargate` when asked, or in auto mode when the database is larger than the limit. */
export function chooseBackupPlace(mode: BackupMode, databaseBytes: number | undefined, inlineMaxBytes: number): 'inline' | 'fargate' {
  if (mode === 'fargate') return 'fargate';
  if (mode === 'auto' && databaseBytes !== undefined && databaseBytes > inlineMaxBytes) return 'fargate';
  return 'inline';
}

export async function databaseBytes(target: DbTarget, session: DbSessionOptions): Promise<number> {
  return withClient(target, session, async (c) => {
    const r = await c.query<{ bytes: string }>('SELECT pg_database_size(current_database())::text AS bytes');
    return Number(r.rows[0]?.bytes ?? 0);
  });
}

/** Run the backup inline, or start it as a Fargate task and return the task's ARN. */
export async function dispatchBackup(deps: DispatchDeps, mode: BackupMode, options: BackupOptions): Promise<BackupManifest | FargateDispatch> {
  const bytes = mode === 'auto' ? await databaseBytes(await deps.target(), deps.session) : undefined;
  if (chooseBackupPlace(mode, bytes, deps.inlineMaxBytes) === 'inline') return deps.backupInline(options);
  if (!deps.fargate) throw new ConfigError('the Fargate task is not configured (PGOPS_ECS_CLUSTER, PGOPS_ECS_TASK_DEFINITION, PGOPS_ECS_CONTAINER_NAME, PGOPS_ECS_SUBNETS)');
  const id = deps.databaseId();
  // The id travels in the overrides too, so a task-stopped event names its database.
  const { taskArn } = await startFargateTask(deps.ecs(), deps.fargate, { command: taskCommand(options), environment: { PGOPS_DATABASE_ID: id }, startedBy: `pgops-backup-${id}` });
  deps.logger.info('dispatched the backup to Fargate', { taskArn, databaseBytes: bytes, inlineMaxBytes: deps.inlineMaxBytes });
  return { dispatched: 'fargate', taskArn, databaseBytes: bytes };
}
