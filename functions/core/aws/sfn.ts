// Talking to Step Functions: start a managed PITR execution and find its state machine by name.
// Only the CLI uses it (`pgops pitr --in-aws`): the SDK arrives with the client (an `Sfn`), loaded
// by sfn-client.ts, so no function bundle carries @aws-sdk/client-sfn.
import type { SFNClient } from '@aws-sdk/client-sfn';
import type * as SfnModule from '@aws-sdk/client-sfn';
import { errorMessage, PgopsError } from '../errors.ts';
import { redactString } from '../redact.ts';

export type SfnSdk = typeof SfnModule;

/** A client and the SDK module its commands come from. */
export interface Sfn {
  client: SFNClient;
  sdk: SfnSdk;
}

/** A Step Functions call failed; `code` is AWS's error name (StateMachineDoesNotExist, AccessDeniedException, ...). */
export class SfnError extends PgopsError {
  constructor(message: string, readonly code: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

async function call<T>(sfn: Sfn, what: string, fn: (m: SfnSdk, client: SFNClient) => Promise<T>): Promise<T> {
  try {
    return await fn(sfn.sdk, sfn.client);
  } catch (err) {
    const name = (err as { name?: unknown } | undefined)?.name;
    const code = typeof name === 'string' && name !== '' ? name : 'Error';
    const denied = /AccessDenied/i.test(code) ? ' (the caller lacks this Step Functions permission: see the README\'s managed PITR policy)' : '';
    throw new SfnError(`Step Functions ${what} failed: ${code}: ${redactString(errorMessage(err))}${denied}`, code, { cause: err });
  }
}

export interface StartedExecution {
  executionArn: string;
  startDate: Date;
}

export async function startExecution(sfn: Sfn, input: { stateMachineArn: string; name: string; input: string }): Promise<StartedExecution> {
  return call(sfn, `StartExecution ${input.stateMachineArn}`, async (m, client) => {
    const out = await client.send(new m.StartExecutionCommand(input));
    return { executionArn: out.executionArn ?? '', startDate: out.startDate ?? new Date() };
  });
}

/** The ARN of the state machine named `name` in the account and region (paginated), or undefined. */
export async function findStateMachine(sfn: Sfn, name: string): Promise<string | undefined> {
  let nextToken: string | undefined;
  do {
    const page = await call(sfn, 'ListStateMachines', async (m, client) => client.send(new m.ListStateMachinesCommand({ nextToken, maxResults: 1000 })));
    const hit = page.stateMachines?.find((s) => s.name === name);
    if (hit?.stateMachineArn) return hit.stateMachineArn;
    nextToken = page.nextToken;
  } while (nextToken);
  return undefined;
}
