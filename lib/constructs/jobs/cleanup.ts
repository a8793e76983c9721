// The cleanup function and its nightly schedule: expired rows in batches (the cleanup rules of the
// settings file), and backups past retention.
import { Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import { ENV } from '../../../functions/core/config.ts';
import { allowObjects, bucketKeyStatement, listStatement, storageUrl } from '../../permissions.ts';
import type { ScheduledInvoke } from '../database-schedules.ts';
import { PgopsFunction } from '../pgops-function.ts';
import { alertAndSecretStatements, nodeCode, nodeEnvironment, type JobContext } from './context.ts';

export function cleanupFunction(scope: Construct, ctx: JobContext): PgopsFunction {
  const loc = ctx.location;
  const fn = new PgopsFunction(scope, 'Cleanup', {
    ...ctx.functionDefaults,
    job: 'cleanup',
    description: `pgops cleanup (${ctx.database.id}): expired rows in batches, backup retention`,
    code: nodeCode(ctx, 'cleanup', false),
    timeout: Duration.minutes(15),
    memorySize: 512,
    retryAttempts: 1,
    environment: { ...nodeEnvironment(ctx), [ENV.storage]: storageUrl(loc) },
    onError: 'Cleanup failed: expired rows or old backups were not removed tonight (the alert names the rule or the object). Fix the cause; the next run continues where this one stopped.',
  });
  for (const s of [...alertAndSecretStatements(ctx), listStatement(loc), bucketKeyStatement(loc, false)]) fn.allow(s);
  allowObjects(fn.role, 'ReadManifests', loc, ['s3:GetObject'], 'logical/*');
  allowObjects(fn.role, 'DeleteExpiredBackups', loc, ['s3:DeleteObject'], 'logical/*');
  // Retention also aborts multipart uploads a crashed backup left behind (older than a day). S3 has
  // no s3:prefix condition for this listing; it shows key names and upload ids, never data.
  fn.allow(new iam.PolicyStatement({ sid: 'ListIncompleteUploads', actions: ['s3:ListBucketMultipartUploads'], resources: [loc.bucket.bucketArn] }));
  allowObjects(fn.role, 'AbortIncompleteUploads', loc, ['s3:AbortMultipartUpload'], 'logical/*');
  return fn;
}

export function cleanupSchedule(ctx: JobContext, fn: PgopsFunction): ScheduledInvoke {
  return { job: 'cleanup', expression: ctx.config.schedules.cleanup, function: fn.function, maxEventAgeSeconds: 3 * 3600, maxRetries: 5 };
}
