// A small RDS "world" behind aws-sdk-client-mock: instances and clusters that exist, restores that
// create copies whose status moves one step per Describe (creating -> ... -> available), deletes
// that mark them deleting, and AWS's own error classes. Faults are injected per command.
import {
  CreateDBInstanceCommand, DBClusterAlreadyExistsFault, DBClusterNotFoundFault, DBInstanceAlreadyExistsFault, DBInstanceNotFoundFault,
  DeleteDBClusterCommand, DeleteDBInstanceCommand, DescribeDBClustersCommand, DescribeDBInstanceAutomatedBackupsCommand,
  DescribeDBInstancesCommand, InvalidDBClusterStateFault, ModifyDBClusterCommand, ModifyDBInstanceCommand, RDSClient,
  RestoreDBClusterToPointInTimeCommand, RestoreDBInstanceToPointInTimeCommand, type DBCluster, type DBInstance, type Tag,
} from '@aws-sdk/client-rds';
import * as rdsSdk from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import type { Rds } from '../../../../../../functions/core/aws/rds.ts';

export const T = (iso: string) => new Date(iso);
const meta = { $metadata: {} };

export interface FakeInstance extends DBInstance {
  /** Statuses still to come, one per Describe of this instance. */
  upcoming?: string[];
}

export interface FakeCluster extends DBCluster {
  upcoming?: string[];
}

export interface WorldOptions {
  /** Statuses a restored copy goes through before "available". */
  restoreStatuses?: string[];
  /** Where a restored instance answers (the integration test: a real local PostgreSQL). */
  endpoint?: { host: string; port: number };
  /** Called on a master password reset (the integration test sets it on the real cluster). */
  onPasswordReset?: (password: string) => Promise<void> | void;
}

export class FakeRds {
  readonly client = new RDSClient({ region: 'eu-west-1', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-real-key' } });
  readonly mock = mockClient(this.client);
  /** What the jobs are handed: the mocked client and the real SDK's commands. */
  readonly rds: Rds = { client: this.client, sdk: rdsSdk };
  readonly instances = new Map<string, FakeInstance>();
  readonly clusters = new Map<string, FakeCluster>();
  /** A command name -> the error its next call throws. */
  readonly faults = new Map<string, Error>();
  restoreStatuses: string[];
  endpoint: { host: string; port: number };

  constructor(private readonly options: WorldOptions = {}) {
    this.restoreStatuses = options.restoreStatuses ?? ['creating', 'creating', 'backing-up'];
    this.endpoint = options.endpoint ?? { host: 'copy.example.internal', port: 5432 };
    this.install();
  }

  /** An RDS PostgreSQL source instance with a restore window. */
  addSourceInstance(id: string, extra: Partial<FakeInstance> & { earliest?: Date } = {}): FakeInstance {
    const { earliest = T('2026-11-24T02:00:00Z'), ...rest } = extra;
    const i: FakeInstance = {
      DBInstanceIdentifier: id, DbiResourceId: `db-${id.toUpperCase()}`, Engine: 'postgres', EngineVersion: '16.4', DBInstanceStatus: 'available',
      DBInstanceClass: 'db.r6g.xlarge', MasterUsername: 'postgres', BackupRetentionPeriod: 7, LatestRestorableTime: T('2026-12-01T14:05:00Z'),
      Endpoint: { Address: `${id}.abc.eu-west-1.rds.amazonaws.com`, Port: 5432 }, DBSubnetGroup: { DBSubnetGroupName: 'db-private' },
      VpcSecurityGroups: [{ VpcSecurityGroupId: 'sg-0db', Status: 'active' }], DBParameterGroups: [{ DBParameterGroupName: 'pg16-tuned' }],
      ...rest,
    };
    this.instances.set(id, i);
    this.backups.push({ DbiResourceId: i.DbiResourceId, DBInstanceIdentifier: id, RestoreWindow: { EarliestTime: earliest, LatestTime: i.LatestRestorableTime } });
    return i;
  }

  /** An Aurora PostgreSQL source cluster with one writer instance. */
  addSourceCluster(id: string, extra: Partial<FakeCluster> = {}): FakeCluster {
    const writer = `${id}-writer`;
    this.instances.set(writer, { DBInstanceIdentifier: writer, DBClusterIdentifier: id, Engine: 'aurora-postgresql', DBInstanceStatus: 'available', DBParameterGroups: [{ DBParameterGroupName: 'aurora-pg16-instance' }] });
    const c: FakeCluster = {
      DBClusterIdentifier: id, Engine: 'aurora-postgresql', EngineVersion: '16.4', Status: 'available', MasterUsername: 'postgres', Port: 5432,
      BackupRetentionPeriod: 7, EarliestRestorableTime: T('2026-11-24T02:00:00Z'), LatestRestorableTime: T('2026-12-01T14:05:00Z'),
      DBSubnetGroup: 'db-private', VpcSecurityGroups: [{ VpcSecurityGroupId: 'sg-0db', Status: 'active' }], DBClusterParameterGroup: 'aurora-pg16-cluster',
      DBClusterMembers: [{ DBInstanceIdentifier: writer, IsClusterWriter: true }],
      ...extra,
    };
    this.clusters.set(id, c);
    return c;
  }

  /** A resource someone else made, or a copy of an earlier run (tags as given). */
  addInstance(i: FakeInstance): void { this.instances.set(i.DBInstanceIdentifier!, i); }
  addCluster(c: FakeCluster): void { this.clusters.set(c.DBClusterIdentifier!, c); }

  readonly backups: Array<{ DbiResourceId?: string; DBInstanceIdentifier?: string; RestoreWindow?: { EarliestTime?: Date; LatestTime?: Date } }> = [];

  calls(name: string): Array<Record<string, unknown>> {
    return this.mock.calls().map((c) => c.args[0] as unknown as { constructor: { name: string }; input: Record<string, unknown> }).filter((c) => c.constructor.name === name).map((c) => c.input);
  }

  private fault(name: string): void {
    const f = this.faults.get(name);
    if (f) { this.faults.delete(name); throw f; }
  }

  private step<R extends { upcoming?: string[] }>(r: R, set: (s: string) => void): void {
    const next = r.upcoming?.shift();
    if (next !== undefined) set(next);
  }

  private describeInstance(id: string): FakeInstance {
    const i = this.instances.get(id);
    if (!i) throw new DBInstanceNotFoundFault({ message: `DBInstance ${id} not found.`, ...meta });
    this.step(i, (s) => { i.DBInstanceStatus = s; });
    if (i.DBInstanceStatus === 'available' && i.PendingModifiedValues?.MasterUserPassword && !i.upcoming?.length) i.PendingModifiedValues = {};
    return i;
  }

  private describeCluster(id: string): FakeCluster {
    const c = this.clusters.get(id);
    if (!c) throw new DBClusterNotFoundFault({ message: `DBCluster ${id} not found.`, ...meta });
    this.step(c, (s) => { c.Status = s; });
    if (c.Status === 'available' && c.PendingModifiedValues?.MasterUserPassword && !c.upcoming?.length) c.PendingModifiedValues = {};
    return c;
  }

  private newCopy(id: string, tags: Tag[] | undefined, extra: Partial<FakeInstance>): FakeInstance {
    return {
      DBInstanceIdentifier: id, DBInstanceStatus: 'creating', upcoming: [...this.restoreStatuses, 'available'], TagList: tags,
      Endpoint: { Address: this.endpoint.host, Port: this.endpoint.port }, MasterUsername: 'postgres', ...extra,
    };
  }

  private install(): void {
    const m = this.mock;
    m.on(DescribeDBInstancesCommand).callsFake((input: { DBInstanceIdentifier?: string; Marker?: string; MaxRecords?: number }) => {
      this.fault('DescribeDBInstances');
      if (input.DBInstanceIdentifier) return { DBInstances: [structuredClone(this.describeInstance(input.DBInstanceIdentifier))] };
      const all = [...this.instances.values()];
      const from = Number(input.Marker ?? 0);
      const size = input.MaxRecords ?? 100;
      const page = all.slice(from, from + size);
      return { DBInstances: structuredClone(page), ...(from + size < all.length ? { Marker: String(from + size) } : {}) };
    });
    m.on(DescribeDBClustersCommand).callsFake((input: { DBClusterIdentifier?: string }) => {
      this.fault('DescribeDBClusters');
      if (input.DBClusterIdentifier) return { DBClusters: [structuredClone(this.describeCluster(input.DBClusterIdentifier))] };
      return { DBClusters: structuredClone([...this.clusters.values()]) };
    });
    m.on(DescribeDBInstanceAutomatedBackupsCommand).callsFake((input: { DbiResourceId?: string }) => ({
      DBInstanceAutomatedBackups: this.backups.filter((b) => !input.DbiResourceId || b.DbiResourceId === input.DbiResourceId),
    }));
    m.on(RestoreDBInstanceToPointInTimeCommand).callsFake((input: { TargetDBInstanceIdentifier: string; Tags?: Tag[]; DBInstanceClass?: string }) => {
      this.fault('RestoreDBInstanceToPointInTime');
      const id = input.TargetDBInstanceIdentifier;
      if (this.instances.has(id)) throw new DBInstanceAlreadyExistsFault({ message: 'DB instance already exists', ...meta });
      const i = this.newCopy(id, input.Tags, { Engine: 'postgres', DBInstanceClass: input.DBInstanceClass });
      this.instances.set(id, i);
      return { DBInstance: structuredClone(i) };
    });
    m.on(RestoreDBClusterToPointInTimeCommand).callsFake((input: { DBClusterIdentifier: string; Tags?: Tag[] }) => {
      this.fault('RestoreDBClusterToPointInTime');
      const id = input.DBClusterIdentifier;
      if (this.clusters.has(id)) throw new DBClusterAlreadyExistsFault({ message: 'DB cluster already exists', ...meta });
      const c: FakeCluster = { DBClusterIdentifier: id, Engine: 'aurora-postgresql', Status: 'creating', upcoming: [...this.restoreStatuses, 'available'], TagList: input.Tags, DBClusterMembers: [] };
      this.clusters.set(id, c);
      return { DBCluster: structuredClone(c) };
    });
    m.on(CreateDBInstanceCommand).callsFake((input: { DBInstanceIdentifier: string; DBClusterIdentifier?: string; Tags?: Tag[]; DBInstanceClass?: string }) => {
      this.fault('CreateDBInstance');
      const id = input.DBInstanceIdentifier;
      if (this.instances.has(id)) throw new DBInstanceAlreadyExistsFault({ message: 'DB instance already exists', ...meta });
      const i = this.newCopy(id, input.Tags, { Engine: 'aurora-postgresql', DBClusterIdentifier: input.DBClusterIdentifier, DBInstanceClass: input.DBInstanceClass });
      this.instances.set(id, i);
      this.clusters.get(input.DBClusterIdentifier!)?.DBClusterMembers?.push({ DBInstanceIdentifier: id, IsClusterWriter: true });
      return { DBInstance: structuredClone(i) };
    });
    m.on(DeleteDBInstanceCommand).callsFake((input: { DBInstanceIdentifier: string }) => {
      this.fault('DeleteDBInstance');
      const i = this.instances.get(input.DBInstanceIdentifier);
      if (!i) throw new DBInstanceNotFoundFault({ message: 'not found', ...meta });
      i.DBInstanceStatus = 'deleting';
      i.upcoming = [];
      return { DBInstance: structuredClone(i) };
    });
    m.on(DeleteDBClusterCommand).callsFake((input: { DBClusterIdentifier: string }) => {
      this.fault('DeleteDBCluster');
      const c = this.clusters.get(input.DBClusterIdentifier);
      if (!c) throw new DBClusterNotFoundFault({ message: 'not found', ...meta });
      const live = [...this.instances.values()].filter((i) => i.DBClusterIdentifier === c.DBClusterIdentifier && i.DBInstanceStatus !== 'deleting');
      if (live.length > 0) throw new InvalidDBClusterStateFault({ message: 'Cluster cannot be deleted, it still contains DB instances in non-deleting state.', ...meta });
      c.Status = 'deleting';
      c.upcoming = [];
      return { DBCluster: structuredClone(c) };
    });
    const reset = async (id: string | undefined, password: string | undefined, target: FakeInstance | FakeCluster | undefined) => {
      if (!target) throw new DBInstanceNotFoundFault({ message: `${id} not found`, ...meta });
      await this.options.onPasswordReset?.(password ?? '');
      target.PendingModifiedValues = { MasterUserPassword: '****' };
      target.upcoming = ['resetting-master-credentials', 'available'];
      return {};
    };
    m.on(ModifyDBInstanceCommand).callsFake((input: { DBInstanceIdentifier: string; MasterUserPassword?: string }) => reset(input.DBInstanceIdentifier, input.MasterUserPassword, this.instances.get(input.DBInstanceIdentifier)));
    m.on(ModifyDBClusterCommand).callsFake(async (input: { DBClusterIdentifier: string; MasterUserPassword?: string }) => {
      const c = this.clusters.get(input.DBClusterIdentifier);
      await reset(input.DBClusterIdentifier, input.MasterUserPassword, c);
      if (c) c.upcoming = ['resetting-master-credentials', 'available'];
      return {};
    });
  }
}

/** A clock that only the fake sleep moves: waits take no real time, timeouts are exact. */
export function fakeTime(start = T('2026-12-01T15:00:00Z')): { clock: () => Date; sleep: (ms: number, signal?: AbortSignal) => Promise<void>; slept: number[] } {
  let now = start.getTime();
  const slept: number[] = [];
  return {
    clock: () => new Date(now),
    sleep: (ms) => { slept.push(ms); now += ms; return Promise.resolve(); },
    slept,
  };
}
