// AWS SDK clients are loaded on first use: a CLI run that sends no alert and reads no secret
// does not pay for those SDK modules (memory and start-up time). Every client pgops creates passes
// through `instrumented`, so the Lambda handlers can trace its calls (X-Ray) without the core knowing.
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SNSClient } from '@aws-sdk/client-sns';

/** How to get a client: tests pass a factory for a mocked one; production loads the SDK lazily. */
export type ClientFactory<T> = () => T | Promise<T>;

/** Decorates an AWS SDK client (the Lambda tracer adds its middleware); must return the same client. */
export type ClientInstrumentation = <C extends object>(client: C) => C;

const asIs: ClientInstrumentation = (client) => client;
let instrumentation: ClientInstrumentation = asIs;

/** Set once by the Lambda handler wrapper when tracing is on; the CLI and the task never set it. */
export function setClientInstrumentation(instrument: ClientInstrumentation | undefined): void {
  instrumentation = instrument ?? asIs;
}

/** A new client, as every creator of one hands it out: instrumented when a handler asked for it. */
export function instrumented<C extends object>(client: C): C {
  return instrumentation(client);
}

function once<T>(make: () => Promise<T>): () => Promise<T> {
  let v: Promise<T> | undefined;
  return () => (v ??= make());
}

export const defaultSnsClient: ClientFactory<SNSClient> = once(async () => instrumented(new (await import('@aws-sdk/client-sns')).SNSClient({})));
export const defaultSecretsClient: ClientFactory<SecretsManagerClient> = once(async () => instrumented(new (await import('@aws-sdk/client-secrets-manager')).SecretsManagerClient({})));
