// The steps of a managed PITR on the RDS API, each callable alone with the run's state and
// idempotent: start the restore (a retry adopts the copy its own run started), advance it (one look;
// Aurora's instance is created once its cluster is available), delete the copy (only one that
// carries this run's tags; gone or already deleting is done).
import {
  createInstance, deleteCluster, deleteInstance, describeCluster, describeInstance, rdsErrorCode, restoreClusterToPointInTime,
  restoreInstanceToPointInTime, tagsOf, type DBCluster, type DBInstance, type Rds,
} from '../../aws/rds.ts';
import { errorMessage } from '../../errors.ts';
import type { Logger } from '../../logger.ts';
import { PitrError, PitrRefusedError } from '../errors.ts';
import { PITR_PURPOSE, PITR_TAG } from './naming.ts';
import { describeCopy, type ManagedPitrState } from './state.ts';

export interface StepDeps {
  rds: Rds;
  logger: Logger;
  /** "Now", for how long a just-started copy may still be invisible to Describe. */
  clock?: () => Date;
}

/** A copy that stopped on its way to available, or someone deleted it. */
export class RestoreFailedError extends PitrError {}

const ALREADY_EXISTS = new Set(['DBInstanceAlreadyExistsFault', 'DBInstanceAlreadyExists', 'DBClusterAlreadyExistsFault', 'DBClusterAlreadyExists']);
/** Refusals that are an answer about the target or the source, not an incident. */
const REFUSALS = new Set(['InvalidRestoreFault', 'PointInTimeRestoreNotEnabledFault', 'InvalidDBInstanceStateFault', 'InvalidDBClusterStateFault']);
/** Statuses a copy does not come back from by itself (the state machine's wait loop stops on them too). */
export const BROKEN_STATUSES = [
  'failed', 'incompatible-restore', 'incompatible-parameters', 'incompatible-network', 'incompatible-option-group', 'restore-error',
  'storage-full', 'inaccessible-encryption-credentials', 'inaccessible-encryption-credentials-recoverable', 'insufficient-capacity',
  'migration-failed', 'deleting', 'stopped', 'stopping',
] as const;
const BROKEN = new Set<string>(BROKEN_STATUSES);
/** How long Describe may still not see a copy whose restore was accepted. */
const INVISIBLE_GRACE_MS = 5 * 60_000;

const tagList = (tags: Record<string, string>) => Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));

/** True when a resource carries this run's tags: the only ones a step adopts or deletes. */
export function isOwnCopy(state: Pick<ManagedPitrState, 'runId'>, resource: { TagList?: DBInstance['TagList'] }): boolean {
  const tags = tagsOf(resource);
  return tags[PITR_TAG.purpose] === PITR_PURPOSE && tags[PITR_TAG.run] === state.runId && tags[PITR_TAG.expires] !== undefined;
}

function restoreRequestError(state: ManagedPitrState, err: unknown): PitrError {
  const code = rdsErrorCode(err);
  const message = `could not start the restore of ${state.source.id} into ${describeCopy(state)}: ${errorMessage(err)}`;
  return REFUSALS.has(code) ? new PitrRefusedError(message, { cause: err }) : new PitrError(message, { cause: err });
}

/** Start the restore; already started (by this run) is success, a namesake of another run is refused. */
export async function startRestore(deps: StepDeps, state: ManagedPitrState): Promise<ManagedPitrState> {
  if (state.phase !== 'planned') return state;
  const r = state.restored;
  const pointInTime = state.target.type === 'time' ? { RestoreTime: new Date(state.target.value) } : { UseLatestRestorableTime: true };
  try {
    if (state.source.kind === 'instance') {
      await restoreInstanceToPointInTime(deps.rds, {
        SourceDBInstanceIdentifier: state.source.id, TargetDBInstanceIdentifier: r.instance, ...pointInTime,
        DBInstanceClass: r.instanceClass, DBSubnetGroupName: r.subnetGroup, VpcSecurityGroupIds: r.securityGroups,
        ...(r.parameterGroup ? { DBParameterGroupName: r.parameterGroup } : {}),
        PubliclyAccessible: false, MultiAZ: false, DeletionProtection: false, AutoMinorVersionUpgrade: false, CopyTagsToSnapshot: false,
        // A throwaway copy needs no backups of its own: none to take after the restore, none to delete.
        BackupRetentionPeriod: 0,
        Tags: tagList(r.tags),
      });
    } else {
      await restoreClusterToPointInTime(deps.rds, {
        SourceDBClusterIdentifier: state.source.id, DBClusterIdentifier: r.cluster!, ...pointInTime, RestoreType: 'full-copy',
        DBSubnetGroupName: r.subnetGroup, VpcSecurityGroupIds: r.securityGroups,
        ...(r.clusterParameterGroup ? { DBClusterParameterGroupName: r.clusterParameterGroup } : {}),
        ...(r.serverlessV2 ? { ServerlessV2ScalingConfiguration: { MinCapacity: r.serverlessV2.minCapacity, MaxCapacity: r.serverlessV2.maxCapacity } } : {}),
        DeletionProtection: false, CopyTagsToSnapshot: false,
        Tags: tagList(r.tags),
      });
    }
  } catch (err) {
    if (!ALREADY_EXISTS.has(rdsErrorCode(err))) throw restoreRequestError(state, err);
    await adoptOwn(deps, state, err);
  }
  deps.logger.info(`restore of ${state.source.id} to ${state.target.type === 'time' ? state.target.value : 'the latest restorable time'} started: ${describeCopy(state)}`, { instanceClass: r.instanceClass, expires: r.expires });
  return { ...state, phase: 'restoring', restoreStartedAt: (deps.clock?.() ?? new Date()).toISOString() };
}

/** The name is taken: ours (a retried start) is adopted; anything else is refused and left alone. */
async function adoptOwn(deps: StepDeps, state: ManagedPitrState, err: unknown): Promise<void> {
  const r = state.restored;
  const existing = r.cluster ? await describeCluster(deps.rds, r.cluster) : await describeInstance(deps.rds, r.instance);
  if (existing && isOwnCopy(state, existing)) {
    deps.logger.info(`${describeCopy(state)} already exists from this run: continuing with it`);
    return;
  }
  throw new PitrRefusedError(`${describeCopy(state)} already exists and was not created by this run (a copy kept with --keep?): delete it, or restore to another minute`, { cause: err });
}

export interface RestoreStatus {
  ready: boolean;
  /** RDS's status of the resource being waited for (or what pgops is doing). */
  status: string;
  /** What is being waited for: "instance X" or "cluster X". */
  resource: string;
}

function brokenCheck(state: ManagedPitrState, what: string, status: string | undefined): void {
  if (status && BROKEN.has(status)) throw new RestoreFailedError(`the restored ${what} is ${status}: the restore of ${state.source.id} did not complete (see the RDS events of ${what.split(' ').pop()})`);
}

function vanished(deps: StepDeps, state: ManagedPitrState, what: string): RestoreStatus {
  const started = state.restoreStartedAt ? Date.parse(state.restoreStartedAt) : 0;
  const now = (deps.clock?.() ?? new Date()).getTime();
  if (now - started < INVISIBLE_GRACE_MS) return { ready: false, status: 'not visible yet', resource: what };
  throw new RestoreFailedError(`the restored ${what} no longer exists (deleted by someone or something else?)`);
}

/** A password change waits in PendingModifiedValues until applied; the copy is not ready before. */
const pendingPassword = (r: DBInstance | DBCluster): boolean => !!r.PendingModifiedValues?.MasterUserPassword;

/** Look once; Aurora: create the cluster's instance once the cluster is available. */
export async function advanceRestore(deps: StepDeps, state: ManagedPitrState): Promise<{ state: ManagedPitrState; status: RestoreStatus }> {
  if (state.phase === 'planned') throw new PitrError('the restore has not been started (run the start step first)');
  const r = state.restored;
  if (r.cluster) {
    const cluster = await describeCluster(deps.rds, r.cluster);
    const what = `cluster ${r.cluster}`;
    if (!cluster) return { state, status: vanished(deps, state, what) };
    brokenCheck(state, what, cluster.Status);
    if (cluster.Status !== 'available' || pendingPassword(cluster)) return { state, status: { ready: false, status: cluster.Status ?? 'unknown', resource: what } };
  }
  const instance = await describeInstance(deps.rds, r.instance);
  const what = `instance ${r.instance}`;
  if (!instance) {
    if (r.cluster) return { state, status: await createClusterInstance(deps, state) };
    return { state, status: vanished(deps, state, what) };
  }
  brokenCheck(state, what, instance.DBInstanceStatus);
  const host = instance.Endpoint?.Address;
  const port = instance.Endpoint?.Port;
  if (instance.DBInstanceStatus !== 'available' || pendingPassword(instance) || !host || !port) {
    return { state, status: { ready: false, status: instance.DBInstanceStatus ?? 'unknown', resource: what } };
  }
  const phase = state.phase === 'restoring' ? 'available' : state.phase;
  return { state: { ...state, phase, endpoint: { host, port } }, status: { ready: true, status: 'available', resource: what } };
}

/** Aurora's extra step: the restored cluster's one instance (RestoreDBClusterToPointInTime creates none). */
async function createClusterInstance(deps: StepDeps, state: ManagedPitrState): Promise<RestoreStatus> {
  const r = state.restored;
  try {
    await createInstance(deps.rds, {
      DBInstanceIdentifier: r.instance, DBClusterIdentifier: r.cluster!, Engine: r.engine, DBInstanceClass: r.instanceClass,
      ...(r.parameterGroup ? { DBParameterGroupName: r.parameterGroup } : {}),
      PubliclyAccessible: false, AutoMinorVersionUpgrade: false,
      Tags: tagList(r.tags),
    });
  } catch (err) {
    if (!ALREADY_EXISTS.has(rdsErrorCode(err))) throw new PitrError(`could not create the instance ${r.instance} of the restored cluster ${r.cluster}: ${errorMessage(err)}`, { cause: err });
  }
  deps.logger.info(`restored cluster ${r.cluster} is available: creating its instance ${r.instance}`, { instanceClass: r.instanceClass });
  return { ready: false, status: 'creating instance', resource: `instance ${r.instance}` };
}

export interface DeleteOutcome {
  state: ManagedPitrState;
  /** Every part of the copy is gone or being deleted; false: try again shortly (Aurora's cluster waits for its instance). */
  done: boolean;
  /** What was asked to be deleted by this call. */
  deleted: string[];
}

/** Delete the copy: its instance, then (Aurora) its cluster. Never a resource without this run's tags. */
export async function deleteRestored(deps: StepDeps, state: ManagedPitrState): Promise<DeleteOutcome> {
  const r = state.restored;
  const deleted: string[] = [];
  const instance = await describeInstance(deps.rds, r.instance);
  if (instance && instance.DBInstanceStatus !== 'deleting') {
    if (!isOwnCopy(state, instance)) throw new PitrError(`instance ${r.instance} does not carry this run's tags (${PITR_TAG.run}=${state.runId}): not deleting it`);
    await deleteInstance(deps.rds, r.instance, { clusterMember: !!r.cluster });
    deleted.push(`instance ${r.instance}`);
  }
  if (r.cluster) {
    const cluster = await describeCluster(deps.rds, r.cluster);
    if (cluster && cluster.Status !== 'deleting') {
      if (!isOwnCopy(state, cluster)) throw new PitrError(`cluster ${r.cluster} does not carry this run's tags (${PITR_TAG.run}=${state.runId}): not deleting it`);
      try {
        await deleteCluster(deps.rds, r.cluster);
        deleted.push(`cluster ${r.cluster}`);
      } catch (err) {
        // Refused while its instance is not yet "deleting": the next call deletes it.
        if (rdsErrorCode(err) === 'InvalidDBClusterStateFault') return { state, done: false, deleted };
        throw err;
      }
    }
  }
  if (deleted.length > 0) deps.logger.info(`deleting the restored copy: ${deleted.join(', ')} (no final snapshot)`);
  return { state: { ...state, phase: 'deleted' }, done: true, deleted };
}
