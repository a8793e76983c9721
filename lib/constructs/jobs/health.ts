// The health-check function and its hourly schedule: pg_stat_* checks, backup age and size,
// restore tests. It reads the backups, writes its own state (alert deduplication), and sends its
// metrics as log lines (EMF).
import { Duration } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { ENV } from '../../../functions/core/config.ts';
import { allowObjects, allowReplicaRead, bucketKeyStatement, listStatement, storageUrl } from '../../permissions.ts';
import type { ScheduledInvoke } from '../database-schedules.ts';
import { PgopsFunction } from '../pgops-function.ts';
import { alertAndSecretStatements, BUNDLED_MIGRATIONS, nodeCode, nodeEnvironment, type JobContext } from './context.ts';

export function healthFunction(scope: Construct, ctx: JobContext): PgopsFunction {
  const loc = ctx.location;
  const fn = new PgopsFunction(scope, 'Health', {
    ...ctx.functionDefaults,
    job: 'health',
    description: `pgops health check (${ctx.database.id}): pg_stat_* checks, backup age and size, restore tests`,
    code: nodeCode(ctx, 'health-check', true),
    timeout: Duration.minutes(5),
    memorySize: 512,
    retryAttempts: 0,
    environment: { ...nodeEnvironment(ctx), [ENV.storage]: storageUrl(loc), ...BUNDLED_MIGRATIONS },
    onError: 'The health check itself crashed (a failing check is an alert, not an error): until it runs again nothing watches this database. Read the function logs.',
  });
  for (const s of [...alertAndSecretStatements(ctx), listStatement(loc), bucketKeyStatement(loc, true)]) fn.allow(s);
  allowObjects(fn.role, 'ReadBackupsAndState', loc, ['s3:GetObject'], '*');
  allowObjects(fn.role, 'WriteHealthState', loc, ['s3:PutObject'], 'state/*');
  const replica = ctx.config.protection.replica;
  if (replica) allowReplicaRead(fn.role, { ...replica, storagePrefix: loc.storagePrefix, databaseId: loc.databaseId });
  return fn;
}

export function healthSchedule(ctx: JobContext, fn: PgopsFunction): ScheduledInvoke {
  return { job: 'health', expression: ctx.config.schedules.health, function: fn.function, maxEventAgeSeconds: 900, maxRetries: 2 };
}
