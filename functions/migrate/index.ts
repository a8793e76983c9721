// Lambda entry for migrations, invoked by deployment pipelines:
//   aws lambda invoke --function-name <arn> --payload '{"command":"up"}' out.json
// Returns the CLI's JSON; on failure it alerts and throws, so the invoke reports a FunctionError.
import { z } from 'zod';
import { migrationStatus, runMigrations, validateMigrations } from '../core/migrate/job.ts';
import { parseEvent, runJob, type HandlerDeps } from '../shared/handler.ts';

export const migrateEventSchema = z.strictObject({
  command: z.enum(['up', 'down', 'to', 'status', 'validate']).default('up'),
  count: z.number().int().positive().optional(),
  target: z.string().min(1).optional(),
  dryRun: z.boolean().optional(),
}).refine((e) => e.command !== 'to' || e.target !== undefined, { message: 'command "to" needs a target', path: ['target'] });

export type MigrateEvent = z.input<typeof migrateEventSchema>;

export function createMigrateHandler(deps: HandlerDeps = {}) {
  return async (event: unknown) => runJob('migrate', deps, async (rt) => {
    const e = parseEvent(migrateEventSchema, event, 'migrate');
    const migrateDeps = await rt.migrateDeps();
    // A failing `up`, `down` or `to` alerts inside the job; status and validate through the handler.
    switch (e.command) {
      case 'status': return migrationStatus(migrateDeps);
      case 'validate': return validateMigrations(migrateDeps);
      default: return runMigrations(migrateDeps, { command: e.command, count: e.count, target: e.target, dryRun: e.dryRun });
    }
  });
}

export const handler = createMigrateHandler();
