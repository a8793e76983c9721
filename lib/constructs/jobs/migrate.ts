// The migrate function: invoked by deployment pipelines (and optionally on deploy); applies the
// migrations/ shipped in its bundle. It reads its secret and alerts; it touches no storage.
import { createHash } from 'node:crypto';
import { Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import { ENV } from '../../../functions/core/config.ts';
import { migrateInvokersFor } from '../../config.ts';
import { PgopsFunction } from '../pgops-function.ts';
import { alertAndSecretStatements, BUNDLED_MIGRATIONS, nodeCode, nodeEnvironment, type JobContext } from './context.ts';

export function migrateFunction(scope: Construct, ctx: JobContext): PgopsFunction {
  const fn = new PgopsFunction(scope, 'Migrate', {
    ...ctx.functionDefaults,
    job: 'migrate',
    description: `pgops migrate (${ctx.database.id}): applies migrations/ shipped in this bundle`,
    code: nodeCode(ctx, 'migrate', true),
    timeout: Duration.minutes(15),
    memorySize: 512,
    retryAttempts: 0,
    environment: { ...nodeEnvironment(ctx), ...BUNDLED_MIGRATIONS },
    onError: 'A migration failed (or the function crashed): the pipeline that invoked it has failed too. Read the error in the alert or the function logs, fix the migration, and deploy again; `pgops migrate status` shows what is applied.',
  });
  alertAndSecretStatements(ctx).forEach((s) => fn.allow(s));
  allowPipelineInvokers(fn, migrateInvokersFor(ctx.config, ctx.database));
  return fn;
}

/**
 * The resource policy: lambda:InvokeFunction for each configured pipeline role, nothing for anyone
 * else. It can only allow: it is what lets a role of another account in, while a role of this
 * account with lambda:InvokeFunction in its own IAM policy can invoke with or without it (README,
 * "Who may migrate").
 */
function allowPipelineInvokers(fn: PgopsFunction, roleArns: string[]): void {
  for (const roleArn of roleArns) {
    // Keyed by the ARN, so reordering the list replaces nothing.
    const key = createHash('sha256').update(roleArn).digest('hex').slice(0, 10);
    fn.function.addPermission(`PipelineInvoke-${key}`, { principal: new iam.ArnPrincipal(roleArn), action: 'lambda:InvokeFunction' });
  }
}

/**
 * migrate.backupBefore: the migrate function has no pg_dump and no rights on the bucket, so it invokes
 * the backup function for the backup before migrating, and waits for its manifest.
 */
export function allowMigrateBackups(ctx: JobContext, migrate: PgopsFunction, backup: PgopsFunction): void {
  if (ctx.runtimeConfig.migrate.backupBefore === 'never') return;
  migrate.function.addEnvironment(ENV.backupFunction, backup.functionArn);
  migrate.allow(new iam.PolicyStatement({ sid: 'InvokeBackupFunction', actions: ['lambda:InvokeFunction'], resources: [backup.functionArn] }));
}
