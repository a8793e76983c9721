// Shared plumbing for the Lambda entries: settings from the environment, Powertools logging,
// alert-then-throw on failure (so `aws lambda invoke` and on-failure destinations see an error).
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SNSClient } from '@aws-sdk/client-sns';
import type { ClientFactory } from '../core/aws/clients.ts';
import type { z } from 'zod';
import { loadSettings } from '../core/config.ts';
import { ConfigError, PgopsError, errorMessage } from '../core/errors.ts';
import { createLambdaLogger } from './logger.ts';
import type { Logger } from '../core/logger.ts';
import { redactString } from '../core/redact.ts';
import { buildRuntime, type Runtime } from '../core/runtime.ts';

export interface HandlerDeps {
  env?: NodeJS.ProcessEnv;
  sns?: ClientFactory<SNSClient>;
  secrets?: ClientFactory<SecretsManagerClient>;
  logger?: Logger;
}

/** The error a function throws: its message is what a pipeline prints, so it is redacted. */
export class FunctionError extends PgopsError {}

export function parseEvent<S extends z.ZodType>(schema: S, event: unknown, what: string): z.infer<S> {
  const parsed = schema.safeParse(event ?? {});
  if (!parsed.success) {
    throw new ConfigError(`invalid ${what} event`, parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(event)'}: ${i.message}`));
  }
  return parsed.data;
}

/**
 * Run a job inside a handler: build the runtime, call `job`, and on any failure send a critical
 * alert and throw an error whose message names the cause (and never a secret).
 */
export async function runJob<T>(name: string, deps: HandlerDeps, job: (rt: Runtime) => Promise<T>): Promise<T> {
  const env = deps.env ?? process.env;
  let rt: Runtime | undefined;
  let logger = deps.logger;
  try {
    const settings = loadSettings({}, env);
    logger ??= createLambdaLogger(`pgops-${name}`, settings.logLevel);
    rt = buildRuntime(settings, logger, { sns: deps.sns, secrets: deps.secrets });
    return await job(rt);
  } catch (err) {
    const message = redactString(errorMessage(err));
    (logger ?? createLambdaLogger(`pgops-${name}`)).error(`${name} failed`, { error: message, type: err instanceof Error ? err.name : typeof err });
    if (rt && !(err instanceof PgopsError && err.alertSent)) {
      await rt.alert({ severity: 'critical', job: name, summary: message });
    }
    throw new FunctionError(message.startsWith(`${name} failed`) ? message : `${name} failed: ${message}`, { cause: err });
  }
}
