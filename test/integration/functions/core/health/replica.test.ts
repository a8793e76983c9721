// The `replica` health check on an S3-protocol server with two buckets (the backups and their copy,
// as S3 replication leaves it: the same keys) and a real PostgreSQL: ok when the copy holds the
// newest backup, a warning when it is behind for longer than maxReplicaLagHours, critical when it
// is empty or too old, unknown when it cannot be read. The runtime opens the copy from config.
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import { defaultFileConfig, loadSettings } from '../../../../../functions/core/config.ts';
import { DEFAULT_SESSION } from '../../../../../functions/core/db.ts';
import { runHealth, type CheckResult, type HealthDeps, type HealthResult } from '../../../../../functions/core/health/index.ts';
import { createTextLogger } from '../../../../../functions/core/logger.ts';
import { buildRuntime } from '../../../../../functions/core/runtime.ts';
import { openStorage } from '../../../../../functions/core/storage/index.ts';
import type { Storage } from '../../../../../functions/core/storage/types.ts';
import { putBackup } from '../../../../helpers/manifests.ts';
import { useTestCluster } from '../../../../helpers/postgres.ts';
import { useTempDirs } from '../../../../helpers/health.ts';
import { useS3rver } from '../../../../helpers/s3rver.ts';

const s3 = useS3rver('pgops-source');
const REPLICA_BUCKET = 'pgops-replica';
const cluster = useTestCluster();
const tempDir = useTempDirs();
const logger = createTextLogger({ level: 'silent' });
const HOUR = 3_600_000;

beforeAll(async () => {
  await s3.client().send(new CreateBucketCommand({ Bucket: REPLICA_BUCKET }));
});

let n = 0;
/** A fresh prefix in both buckets: the source and its copy. */
function pair(): { source: Storage; replica: Storage } {
  const prefix = `pgops-${++n}`;
  return {
    source: openStorage(`s3://${s3.bucket}/${prefix}`, { s3Client: s3.client() }),
    replica: openStorage(`s3://${REPLICA_BUCKET}/${prefix}`, { s3Client: s3.client() }),
  };
}

/** A backup in the source and, when `copied`, the same objects in the replica (as replication copies them). */
async function backup(p: { source: Storage; replica: Storage }, db: string, hoursAgo: number, copied: boolean): Promise<string> {
  const id = await putBackup(p.source, db, { completedAt: new Date(Date.now() - hoursAgo * HOUR) });
  if (copied) await putBackup(p.replica, db, { id, completedAt: new Date(Date.now() - hoursAgo * HOUR) });
  return id;
}

function deps(db: string, p: { source: Storage; replica: Storage }, health: Record<string, number> = {}): HealthDeps {
  return {
    target: cluster.target(db), session: DEFAULT_SESSION, logger, databaseId: db, environment: 'test',
    config: defaultFileConfig({ health }), migrationsDir: tempDir(), storage: p.source, replicaStorage: p.replica,
  };
}

const replicaCheck = (r: HealthResult): CheckResult => r.checks.find((c) => c.name === 'replica')!;

describe('replica health check (s3rver, two buckets)', () => {
  it('ok when the copy holds the source\'s newest backup', async () => {
    const db = await cluster.createDatabase();
    const p = pair();
    await backup(p, db, 30, true);
    const newest = await backup(p, db, 2, true);
    const r = await runHealth(deps(db, p));
    expect(replicaCheck(r)).toMatchObject({ status: 'ok', value: 2, threshold: 26, details: { replicaNewest: newest, sourceNewest: newest } });
    expect(replicaCheck(r).summary).toBe(`the replica's newest backup ${newest} is 2 h old`);
    expect(r.checks.at(-1)!.name).toBe('replica');
  });

  it('ok while the newest is being copied, a warning once it is late by more than maxReplicaLagHours', async () => {
    const db = await cluster.createDatabase();
    const p = pair();
    const copied = await backup(p, db, 20, true);
    const missing = await backup(p, db, 3, false);
    const fresh = await runHealth(deps(db, p, { maxReplicaLagHours: 6 }));
    expect(replicaCheck(fresh)).toMatchObject({ status: 'ok', value: 20 });
    expect(replicaCheck(fresh).summary).toContain(`(the source's newest ${missing} is still being copied)`);

    const late = await runHealth(deps(db, p, { maxReplicaLagHours: 2 }));
    expect(replicaCheck(late)).toMatchObject({ status: 'warning', value: 20, details: { replicaNewest: copied, sourceNewest: missing } });
    expect(replicaCheck(late).summary).toContain(`the replica is behind: the source's newest backup ${missing} (3 h old) is not in s3://${REPLICA_BUCKET}/`);
    expect(late.status).toBe('warning');
  });

  it('critical when the copy is empty while the source has backups, or its newest is older than maxBackupAgeHours', async () => {
    const db = await cluster.createDatabase();
    const p = pair();
    const source = await backup(p, db, 1, false);
    const empty = await runHealth(deps(db, p));
    expect(replicaCheck(empty)).toMatchObject({ status: 'critical', details: { sourceNewest: source } });
    expect(replicaCheck(empty).summary).toContain(`the replica s3://${REPLICA_BUCKET}/`);
    expect(replicaCheck(empty).summary).toContain(`holds no backup of "${db}"`);

    await putBackup(p.replica, db, { completedAt: new Date(Date.now() - 50 * HOUR) });
    const stale = await runHealth(deps(db, p));
    expect(replicaCheck(stale)).toMatchObject({ status: 'critical', value: 50, threshold: 26 });
    expect(replicaCheck(stale).summary).toContain('is 50 h old (max 26 h): a restore from the copy would lose more than that');
  });

  it('unknown, naming the replica, when it cannot be read; the other checks are unaffected', async () => {
    const db = await cluster.createDatabase();
    const p = pair();
    await backup(p, db, 1, true);
    const missingBucket = openStorage(`s3://pgops-no-such-bucket/x`, { s3Client: s3.client() });
    const r = await runHealth({ ...deps(db, p), replicaStorage: missingBucket });
    expect(replicaCheck(r)).toMatchObject({ status: 'unknown' });
    expect(replicaCheck(r).summary).toMatch(/^could not read the replica s3:\/\/pgops-no-such-bucket\/x: /);
    expect(r.checks.find((c) => c.name === 'backup-age')!.status).toBe('ok');
  });

  it('is not run without health.replicaStorage', async () => {
    const db = await cluster.createDatabase();
    const p = pair();
    await backup(p, db, 1, true);
    const { replicaStorage: _none, ...withoutReplica } = deps(db, p);
    const r = await runHealth(withoutReplica);
    expect(r.checks.map((c) => c.name)).not.toContain('replica');
  });
});

describe('runtime', () => {
  it('opens the replica from health.replicaStorage, in health.replicaRegion, beside the storage', async () => {
    const opened: Array<{ url: string; region?: string }> = [];
    const settings = loadSettings({}, {
      DATABASE_URL: 'postgres://u@127.0.0.1:1/db', PGOPS_STORAGE: 's3://src/pgops', PGOPS_DATABASE_ID: 'auth',
      PGOPS_CONFIG_JSON: JSON.stringify({ health: { replicaStorage: 's3://acme-pgops-replica/pgops', replicaRegion: 'eu-central-1' } }),
    });
    const rt = buildRuntime(settings, logger, { openStorage: (url, o) => { opened.push({ url, ...(o.region ? { region: o.region } : {}) }); return openStorage(url, { s3Client: s3.client() }); } });
    const d = await rt.healthDeps();
    expect(d.replicaStorage?.url).toBe('s3://acme-pgops-replica/pgops');
    expect(opened).toContainEqual({ url: 's3://acme-pgops-replica/pgops', region: 'eu-central-1' });
    expect(() => loadSettings({}, { PGOPS_CONFIG_JSON: JSON.stringify({ health: { replicaStorage: '/tmp/x', replicaRegion: 'Frankfurt' } }) })).toThrow(/health.replicaStorage: must be s3:\/\/bucket\/prefix[\s\S]*health.replicaRegion: must be an AWS region/);
  });
});
