// Lambda entry for migrations, invoked by deployment pipelines:
//   aws lambda invoke --function-name <arn> --payload '{"command":"up"}' out.json
// Returns the CLI's JSON; on failure it alerts and throws, so the invoke reports a FunctionError.
import * as z from 'zod';
import { migrationStatus, runMigrations, validateMigrations } from '../core/migrate/job.ts';
import { parseEvent, runJob, type HandlerDeps } from '../shared/handler.ts';
import { migrateBackupOf, type LambdaFactory } from './safety-backup.ts';

export const migrateEventSchema = z.strictObject({
  command: z.enum(['up', 'down', 'to', 'status', 'validate']).default('up'),
  count: z.number().int().positive().optional(),
  target: z.string().min(1).optional(),
  dryRun: z.boolean().optional(),
  /** `down` and `to` revert applied migrations (and may drop data): only with this flag, unless a dry run. */
  allowDown: z.boolean().optional(),
}).superRefine((e, ctx) => {
  if (e.command === 'to' && e.target === undefined) ctx.addIssue({ code: 'custom', message: 'command "to" needs a target', path: ['target'] });
  const reverts = e.command === 'down' || e.command === 'to';
  if (reverts && e.allowDown !== true && e.dryRun !== true) ctx.addIssue({ code: 'custom', path: ['allowDown'], message: refusedDown(e.command) });
});

/** Why a `down` or `to` without the flag is refused, and how to run it. */
function refusedDown(command: string): string {
  const what = command === 'down' ? 'reverts applied migrations' : 'reverts the migrations after its target when they are applied';
  return `command "${command}" ${what} and may drop data: add "allowDown": true to the event to run it ("dryRun": true shows the SQL without it)`;
}

export type MigrateEvent = z.input<typeof migrateEventSchema>;

export function createMigrateHandler(deps: HandlerDeps & { lambda?: LambdaFactory } = {}) {
  return async (event: unknown) => runJob('migrate', deps, async (rt) => {
    const e = parseEvent(migrateEventSchema, event, 'migrate');
    // migrate.backupBefore: through the backup function (this bundle has no pg_dump and no S3 SDK).
    const migrateDeps = await rt.migrateDeps(migrateBackupOf(rt, deps.lambda));
    // A failing `up`, `down` or `to` alerts inside the job; status and validate through the handler.
    switch (e.command) {
      case 'status': return migrationStatus(migrateDeps);
      case 'validate': return validateMigrations(migrateDeps);
      default: return runMigrations(migrateDeps, { command: e.command, count: e.count, target: e.target, dryRun: e.dryRun });
    }
  });
}

export const handler = createMigrateHandler();
