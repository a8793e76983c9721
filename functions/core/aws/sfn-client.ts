// The Step Functions client of the default credential chain and region, with its SDK, loaded on
// first use: only the CLI (`pgops pitr --in-aws`) imports this.
import { instrumented, type ClientFactory } from './clients.ts';
import type { Sfn } from './sfn.ts';

let loaded: Promise<Sfn> | undefined;
export const defaultSfnClient: ClientFactory<Sfn> = () =>
  (loaded ??= import('@aws-sdk/client-sfn').then((sdk) => ({ client: instrumented(new sdk.SFNClient({})), sdk })));
