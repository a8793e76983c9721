// Shared plumbing for the Lambda entries: settings from the environment, Powertools logging and
// tracing (tracing.ts), and the one failure policy (core/run-job.ts): alert once, then throw, so `aws lambda invoke` and
// on-failure destinations see an error. Bad events and configuration throw without paging anyone.
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SNSClient } from '@aws-sdk/client-sns';
import type * as z from 'zod';
import type { ClientFactory } from '../core/aws/clients.ts';
import { loadSettings } from '../core/config.ts';
import { ConfigError, PgopsError, errorMessage, exitCodeOf, type AlertLevel } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { redactString } from '../core/redact.ts';
import { runJob as runCoreJob } from '../core/run-job.ts';
import { buildRuntime, type Runtime, type StorageOpener } from '../core/runtime.ts';
import type { Rds } from '../core/aws/rds.ts';
import { createLambdaLogger } from './logger.ts';
import { withHandlerTracing, type HandlerTracing } from './tracing.ts';

export interface HandlerDeps {
  env?: NodeJS.ProcessEnv;
  sns?: ClientFactory<SNSClient>;
  secrets?: ClientFactory<SecretsManagerClient>;
  /** The jobs with an RDS part (health's restore-window check, cleanup of managed PITR copies) pass the SDK's; tests a mocked one. */
  rds?: ClientFactory<Rds>;
  logger?: Logger;
  /** X-Ray tracing (tests pass their own); by default this function's, on unless POWERTOOLS_TRACE_ENABLED=false. */
  tracing?: HandlerTracing;
}

/**
 * The error a function throws: its message is what a pipeline prints, so it is redacted. It keeps
 * the exit code and alert level of its cause, and is already reported (no layer pages for it again).
 */
export class FunctionError extends PgopsError {
  override readonly exitCode: number;
  override readonly alert: AlertLevel;
  constructor(message: string, options: { cause: unknown }) {
    super(message, options);
    this.exitCode = exitCodeOf(options.cause);
    this.alert = options.cause instanceof PgopsError ? options.cause.alert : 'critical';
    this.alertSent = true;
  }
}

export function parseEvent<S extends z.ZodType>(schema: S, event: unknown, what: string): z.infer<S> {
  const parsed = schema.safeParse(event ?? {});
  if (!parsed.success) {
    throw new ConfigError(`invalid ${what} event`, parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(event)'}: ${i.message}`));
  }
  return parsed.data;
}

/** What a handler's jobs use beyond the database and the alerts. */
export interface HandlerNeeds {
  /** Jobs that read or write backups: the storage opener (the S3 SDK is bundled only where passed). */
  openStorage?: StorageOpener;
}

/**
 * Run a job inside a handler: build the runtime, call `job` under the failure policy, and throw
 * a FunctionError whose message names the cause (and never a secret).
 */
export async function runJob<T>(name: string, deps: HandlerDeps & HandlerNeeds, job: (rt: Runtime) => Promise<T>): Promise<T> {
  let logger = deps.logger;
  try {
    const settings = loadSettings({}, deps.env);
    const log = (logger ??= createLambdaLogger(`pgops-${name}`, settings.logLevel));
    return await withHandlerTracing(name, settings, deps.tracing, async () => {
      const rt = buildRuntime(settings, log, { sns: deps.sns, secrets: deps.secrets, openStorage: deps.openStorage, rds: deps.rds });
      return runCoreJob(rt.reporting(), { job: name }, () => job(rt));
    });
  } catch (err) {
    const message = redactString(errorMessage(err));
    // The policy logged what it paged for; what pages nobody (a bad event, bad settings) is logged here.
    if (!(err instanceof PgopsError && err.alertSent && err.alert !== null)) (logger ?? createLambdaLogger(`pgops-${name}`)).error(`${name} failed`, { error: message });
    throw new FunctionError(message.startsWith(`${name} failed`) ? message : `${name} failed: ${message}`, { cause: err });
  }
}
