// AWS SDK clients are loaded on first use: a CLI run that sends no alert and reads no secret
// does not pay for those SDK modules (memory and start-up time).
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SNSClient } from '@aws-sdk/client-sns';

/** How to get a client: tests pass a factory for a mocked one; production loads the SDK lazily. */
export type ClientFactory<T> = () => T | Promise<T>;

function once<T>(make: () => Promise<T>): () => Promise<T> {
  let v: Promise<T> | undefined;
  return () => (v ??= make());
}

export const defaultSnsClient: ClientFactory<SNSClient> = once(async () => new (await import('@aws-sdk/client-sns')).SNSClient({}));
export const defaultSecretsClient: ClientFactory<SecretsManagerClient> = once(async () => new (await import('@aws-sdk/client-secrets-manager')).SecretsManagerClient({}));
