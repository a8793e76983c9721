// The RDS client of the default credential chain and region, with its SDK, loaded on first use:
// only the CLI (and its Fargate task) imports this, so only its bundle carries @aws-sdk/client-rds.
import { instrumented, type ClientFactory } from './clients.ts';
import type { Rds } from './rds.ts';

let loaded: Promise<Rds> | undefined;
export const defaultRdsClient: ClientFactory<Rds> = () =>
  (loaded ??= import('@aws-sdk/client-rds').then((sdk) => ({ client: instrumented(new sdk.RDSClient({})), sdk })));
