// Lambda entry for the nightly backup (a container image with pg_dump; see docker/Dockerfile).
// Where it runs (inline, or a Fargate task for a large database) is decided by core/backup/dispatch.ts.
import { ECSClient } from '@aws-sdk/client-ecs';
import * as z from 'zod';
import { instrumented } from '../core/aws/clients.ts';
import { runBackup } from '../core/backup/backup.ts';
import { rowCountsFor } from '../core/backup/deps.ts';
import { dispatchBackup } from '../core/backup/dispatch.ts';
import { backupMetrics, publishMetrics, type MetricSink } from '../core/metrics.ts';
import { openStorage } from '../core/storage/index.ts';
import { parseEvent, runJob, type HandlerDeps } from '../shared/handler.ts';
import { emfSink, powertoolsMetrics } from '../shared/metrics.ts';

export { taskCommand } from '../core/backup/dispatch.ts';

export const backupEventSchema = z.strictObject({
  database: z.string().min(1).optional(),
  schemaOnly: z.boolean().optional(),
  dataOnly: z.boolean().optional(),
  tables: z.array(z.string().min(1)).optional(),
  excludeTables: z.array(z.string().min(1)).optional(),
  mode: z.enum(['auto', 'inline', 'fargate']).default('auto'),
}).refine((e) => !(e.schemaOnly && e.dataOnly), { message: 'schemaOnly and dataOnly exclude each other', path: ['dataOnly'] });

export type BackupEvent = z.input<typeof backupEventSchema>;

export function createBackupHandler(deps: HandlerDeps & { ecs?: () => ECSClient; metrics?: MetricSink } = {}) {
  const ecs = deps.ecs ?? (() => instrumented(new ECSClient({})));
  const metrics = deps.metrics ?? emfSink(() => powertoolsMetrics('pgops-backup'));
  return async (event: unknown) => runJob('backup', { ...deps, openStorage }, async (rt) => {
    const { mode, database, ...asked } = parseEvent(backupEventSchema, event, 'backup');
    rt.checkServes(database, 'backup');
    // The scheduled backup: exact row counts under backup.rowCounts auto, inline and on Fargate alike.
    const options = { ...asked, rowCounts: rowCountsFor(rt.settings.config.backup.rowCounts, 'scheduled') };
    const result = await dispatchBackup({
      target: () => rt.target(),
      session: rt.session,
      logger: rt.logger,
      databaseId: () => rt.databaseId(),
      inlineMaxBytes: rt.settings.config.backup.inlineMaxBytes,
      fargate: rt.settings.fargate,
      ecs,
      backupInline: async (o) => runBackup(await rt.backupDeps(), o),
    }, mode, options);
    // A backup sent to Fargate is counted by the task when it completes.
    if (!('dispatched' in result)) await publishMetrics(metrics, rt.databaseId(), backupMetrics(result), rt.logger);
    return result;
  });
}

export const handler = createBackupHandler();
