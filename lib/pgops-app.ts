// The whole deployment of one environment: the stateful storage stack, the shared ops stack and one
// stack per database (database-stack.ts says why), with the cdk-nag AwsSolutions checks on the app.
// Stacks are environment-agnostic (no account or region), so synthesis needs no credentials and
// makes no lookups; `cdk deploy` takes them from the profile.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tags, Validations, type App } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { loadPgopsConfig, type PgopsConfig } from './config.ts';
import { DatabaseStack, databaseStackName } from './database-stack.ts';
import { OpsStack } from './ops-stack.ts';
import { StorageStack } from './storage-stack.ts';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface PgopsApp {
  config: PgopsConfig;
  storage: StorageStack;
  ops: OpsStack;
  /** One per configured database, in configuration order. */
  databases: DatabaseStack[];
}

export interface BuildOptions {
  /** Defaults to the app's context ("pgops" or "pgopsConfigFile"). */
  config?: PgopsConfig;
  /** Register cdk-nag as a validation plugin (synthesis fails on an unacknowledged finding). */
  nag?: boolean;
}

export function buildPgopsApp(app: App, options: BuildOptions = {}): PgopsApp {
  const config = options.config ?? loadPgopsConfig(app.node);
  const env = config.environment;
  const storage = new StorageStack(app, `pgops-${env}-storage`, {
    config,
    description: `pgops ${env}: backup bucket, its key and access logs (stateful, retained)`,
  });
  const ops = new OpsStack(app, `pgops-${env}-ops`, {
    config,
    repoRoot: REPO_ROOT,
    description: `pgops ${env}: what the databases share: the alert topic, notify-slack, the ECS cluster, the dead-letter queues, the schedule group, the dashboard`,
  });
  const databases = config.databases.map((database) => {
    const stack = new DatabaseStack(app, databaseStackName(env, database.id), {
      config,
      database,
      shared: ops.shared,
      bucketKey: storage.key,
      repoRoot: REPO_ROOT,
      description: `pgops ${env}: database ${database.id}: migrate, backup, health-check and cleanup functions, Fargate tasks, schedules, alarms`,
    });
    // The schedule group and the shared resources exist before any database's jobs; storage too.
    stack.addStackDependency(ops);
    stack.addStackDependency(storage);
    return stack;
  });
  Tags.of(app).add('project', 'pgops');
  Tags.of(app).add('pgops:environment', env);
  if (options.nag !== false) Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { config, storage, ops, databases };
}
