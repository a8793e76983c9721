// Lambda entry for the scheduled cleanup (EventBridge): expired rows in batches, backup retention.
// Event: { "database"?: id, "dryRun"?: bool }. It stops starting new batches a margin before the
// Lambda's timeout and reports complete: false; the next scheduled run continues. On failure it
// alerts and throws, so the invocation is a function error.
import * as z from 'zod';
import { runCleanup, type CleanupResult } from '../core/cleanup/job.ts';
import { cleanupMetrics, publishMetrics, type MetricSink } from '../core/metrics.ts';
import { openStorage } from '../core/storage/index.ts';
import { defaultRdsClient } from '../core/aws/rds-client.ts';
import { parseEvent, runJob, type HandlerDeps } from '../shared/handler.ts';
import { emfSink, powertoolsMetrics } from '../shared/metrics.ts';

export const cleanupEventSchema = z.strictObject({
  database: z.string().min(1).optional(),
  dryRun: z.boolean().optional(),
});

export type CleanupEvent = z.input<typeof cleanupEventSchema>;

/** The part of the Lambda context we use (tests pass a stub). */
export interface CleanupContext {
  getRemainingTimeInMillis(): number;
}

/**
 * When to stop starting work: the remaining time minus a margin for the batch in flight, the
 * functions, VACUUM and the reply (30 s, or half the time left when that is shorter).
 */
export function deadlineFrom(remainingMs: number, now = Date.now()): number {
  const margin = Math.min(30_000, remainingMs / 2);
  return now + Math.max(0, remainingMs - margin);
}

export function createCleanupHandler(deps: HandlerDeps & { metrics?: MetricSink } = {}) {
  const metrics = deps.metrics ?? emfSink(() => powertoolsMetrics('pgops-cleanup'));
  return async (event: unknown, context?: CleanupContext): Promise<CleanupResult> => runJob('cleanup', { rds: defaultRdsClient, ...deps, openStorage }, async (rt) => {
    const deadline = context ? deadlineFrom(context.getRemainingTimeInMillis()) : undefined;
    const e = parseEvent(cleanupEventSchema, event, 'cleanup');
    const cleanupDeps = await rt.cleanupDeps({ deadline });
    rt.checkServes(e.database, 'cleanup');
    const result = await runCleanup(cleanupDeps, { dryRun: e.dryRun ?? false });
    await publishMetrics(metrics, rt.databaseId(), cleanupMetrics(result), rt.logger);
    return result;
  });
}

export const handler = createCleanupHandler();
