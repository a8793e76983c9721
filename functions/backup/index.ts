// Lambda entry for the nightly backup (a container image with pg_dump; see docker/Dockerfile).
// Small databases are dumped inline; above backup.inlineMaxBytes the dump runs as a Fargate task,
// which outlives Lambda's 15 minutes.
import { ECSClient } from '@aws-sdk/client-ecs';
import { z } from 'zod';
import { runBackup } from '../core/backup/backup.ts';
import { withClient } from '../core/db.ts';
import { ConfigError } from '../core/errors.ts';
import { startFargateTask } from '../core/aws/ecs-task.ts';
import { parseEvent, runJob, type HandlerDeps } from '../shared/handler.ts';
import type { Runtime } from '../core/runtime.ts';

export const backupEventSchema = z.strictObject({
  database: z.string().min(1).optional(),
  schemaOnly: z.boolean().optional(),
  dataOnly: z.boolean().optional(),
  tables: z.array(z.string().min(1)).optional(),
  excludeTables: z.array(z.string().min(1)).optional(),
  mode: z.enum(['auto', 'inline', 'fargate']).default('auto'),
}).refine((e) => !(e.schemaOnly && e.dataOnly), { message: 'schemaOnly and dataOnly exclude each other', path: ['dataOnly'] });

export type BackupEvent = z.input<typeof backupEventSchema>;

/** The task's command line for the same backup (its entry point runs the pgops CLI). */
export function taskCommand(e: z.infer<typeof backupEventSchema>): string[] {
  const args = ['backup'];
  if (e.schemaOnly) args.push('--schema-only');
  if (e.dataOnly) args.push('--data-only');
  for (const t of e.tables ?? []) args.push('--table', t);
  for (const t of e.excludeTables ?? []) args.push('--exclude-table', t);
  return args;
}

async function databaseBytes(rt: Runtime): Promise<number> {
  return withClient(await rt.target(), rt.session, async (c) => {
    const r = await c.query<{ bytes: string }>('SELECT pg_database_size(current_database())::text AS bytes');
    return Number(r.rows[0]?.bytes ?? 0);
  });
}

export function createBackupHandler(deps: HandlerDeps & { ecs?: () => ECSClient } = {}) {
  const ecs = deps.ecs ?? (() => new ECSClient({}));
  return async (event: unknown) => runJob('backup', deps, async (rt) => {
    const e = parseEvent(backupEventSchema, event, 'backup');
    const configuredId = rt.settings.databaseId;
    if (e.database && configuredId && e.database !== configuredId) {
      throw new ConfigError(`this backup function serves database "${configuredId}", not "${e.database}"`);
    }
    let bytes: number | undefined;
    if (e.mode === 'auto') bytes = await databaseBytes(rt);
    const limit = rt.settings.config.backup.inlineMaxBytes;
    if (e.mode === 'fargate' || (bytes !== undefined && bytes > limit)) {
      if (!rt.settings.fargate) throw new ConfigError('the Fargate task is not configured (PGOPS_ECS_CLUSTER, PGOPS_ECS_TASK_DEFINITION, PGOPS_ECS_CONTAINER_NAME, PGOPS_ECS_SUBNETS)');
      // The id travels in the overrides too, so a task-stopped event names its database.
      const { taskArn } = await startFargateTask(ecs(), rt.settings.fargate, { command: taskCommand(e), environment: { PGOPS_DATABASE_ID: rt.databaseId() }, startedBy: `pgops-backup-${rt.databaseId()}` });
      rt.logger.info('dispatched the backup to Fargate', { taskArn, databaseBytes: bytes, inlineMaxBytes: limit });
      return { dispatched: 'fargate' as const, taskArn, databaseBytes: bytes };
    }
    return runBackup(await rt.backupDeps(), { schemaOnly: e.schemaOnly, dataOnly: e.dataOnly, tables: e.tables, excludeTables: e.excludeTables });
  });
}

export const handler = createBackupHandler();
