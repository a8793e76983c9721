// Protected backups (protection.*): Object Lock on the backup bucket (new and existing buckets), the
// settings the jobs get from it, replication of the whole storage prefix with a least-privilege role
// (same and cross account), the health role's read-only rights on the replica, cdk-nag. Synthesized
// without bundling.
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePgopsConfig, PgopsConfigError, replicaStorageUrl, runtimeConfigFor } from '../../../lib/config.ts';
import { STATEFUL_LOGICAL_IDS } from '../../../lib/storage-stack.ts';
import { allFindings, deadAcknowledgments } from '../nag-audit.ts';
import { actionsOf, flat, resources, roleStatements, sampleConfig, synth, type Statement, type Synth } from '../helpers.ts';

const REPLICA_ARN = 'arn:aws:s3:::acme-pgops-replica';
const REPLICA_KEY = 'arn:aws:kms:eu-central-1:210987654321:key/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f';
const SOURCE = 'arn:<AWS::Partition>:s3:::pgops-staging-backups-<AWS::AccountId>-<AWS::Region>';

function protectedConfig(protection: Record<string, unknown>) {
  const raw = sampleConfig();
  raw.protection = protection;
  return raw;
}

const replica = (extra: Record<string, unknown> = {}) => ({ bucketArn: REPLICA_ARN, region: 'eu-central-1', kmsKeyArn: REPLICA_KEY, ...extra });

function issuesOf(raw: unknown): string[] {
  try {
    parsePgopsConfig(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(PgopsConfigError);
    return (err as PgopsConfigError).issues;
  }
  throw new Error('the configuration was accepted');
}

const bucketOf = (s: Synth) => resources(s.storageTemplate)[STATEFUL_LOGICAL_IDS.bucket]!.Properties!;
const bySid = (st: Statement[], sid: string) => st.find((x) => x.Sid === sid);

describe('configuration', () => {
  it('is off by default: no lock, no replica in the jobs settings', () => {
    const c = parsePgopsConfig(sampleConfig());
    expect(c.protection).toEqual({});
    const r = runtimeConfigFor(c, c.databases[0]!);
    expect(r.retention.objectLock).toBeUndefined();
    expect(r.health.replicaStorage).toBeUndefined();
  });

  it('hands the lock to retention and the replica (same prefix, its region) to health', () => {
    const c = parsePgopsConfig(protectedConfig({ objectLock: { mode: 'compliance', days: 35 }, replica: replica() }));
    const r = runtimeConfigFor(c, c.databases[0]!);
    expect(r.retention.objectLock).toEqual({ mode: 'compliance', days: 35 });
    expect(r.health.replicaStorage).toBe('s3://acme-pgops-replica/pgops');
    expect(r.health.replicaRegion).toBe('eu-central-1');
    expect(replicaStorageUrl(c)).toBe('s3://acme-pgops-replica/pgops');
  });

  it('refuses the derived settings set by hand and a bad lock', () => {
    const raw = protectedConfig({ objectLock: { mode: 'legal-hold', days: 0 } });
    (raw.retention as Record<string, unknown>).objectLock = { mode: 'governance', days: 1 };
    raw.health = { ...(raw.health as Record<string, unknown> | undefined), replicaStorage: 's3://x/y' };
    const issues = issuesOf(raw);
    expect(issues).toContain('pgops.retention.objectLock: unknown field');
    expect(issues).toContain('pgops.health.replicaStorage: unknown field');
    expect(issues.some((i) => i.startsWith('pgops.protection.objectLock.mode: must be "governance"'))).toBe(true);
    expect(issues.some((i) => i.startsWith('pgops.protection.objectLock.days'))).toBe(true);
  });

  it('refuses a replica key of another region or account', () => {
    const issues = issuesOf(protectedConfig({ replica: replica({ account: '111111111111', kmsKeyArn: 'arn:aws:kms:us-east-1:210987654321:key/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f' }) }));
    expect(issues).toContain('pgops.protection.replica.kmsKeyArn: the key is in us-east-1, the replica bucket in eu-central-1: S3 replication encrypts with a key of the destination\'s region');
    expect(issues).toContain('pgops.protection.replica.kmsKeyArn: the key belongs to account 210987654321, the replica bucket to 111111111111');
  });
});

describe('Object Lock', () => {
  let s: Synth;
  beforeAll(() => { s = synth({ pgops: protectedConfig({ objectLock: { mode: 'governance', days: 30 } }), bundle: false }); });
  afterAll(() => s.dispose());

  it('creates the bucket with Object Lock and a default retention, versioned, the lifecycle rule unchanged', () => {
    const b = bucketOf(s);
    expect(b.ObjectLockEnabled).toBe(true);
    expect(b.ObjectLockConfiguration).toEqual({ ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 30 } } });
    expect(b.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    const rules = (b.LifecycleConfiguration as { Rules: Array<Record<string, unknown>> }).Rules;
    expect(rules).toEqual([expect.objectContaining({ NoncurrentVersionExpiration: { NoncurrentDays: 30 }, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } })]);
  });

  it('tells the cleanup function the lock (its settings file)', () => {
    const c = parsePgopsConfig(protectedConfig({ objectLock: { mode: 'governance', days: 30 } }));
    expect(runtimeConfigFor(c, c.databases[0]!).retention).toMatchObject({ keepLast: 7, objectLock: { mode: 'governance', days: 30 } });
  });

  it('on an existing bucket leaves ObjectLockEnabled out (a change would replace the bucket) and sets only the retention', () => {
    const e = synth({ pgops: protectedConfig({ objectLock: { mode: 'compliance', days: 7, existingBucket: true } }), bundle: false });
    try {
      const b = bucketOf(e);
      expect(b).not.toHaveProperty('ObjectLockEnabled');
      expect(b.ObjectLockConfiguration).toEqual({ ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 7 } } });
      expect(Object.keys(resources(e.storageTemplate, 'AWS::S3::Bucket'))).toContain(STATEFUL_LOGICAL_IDS.bucket);
    } finally {
      e.dispose();
    }
  });

  it('is absent without protection.objectLock', () => {
    const plain = synth({ bundle: false });
    try {
      expect(bucketOf(plain)).not.toHaveProperty('ObjectLockConfiguration');
      expect(bucketOf(plain)).not.toHaveProperty('ReplicationConfiguration');
      expect(resources(plain.storageTemplate, 'AWS::IAM::Role')).toEqual({});
    } finally {
      plain.dispose();
    }
  });
});

describe('replication (same account)', () => {
  let s: Synth;
  beforeAll(() => { s = synth({ pgops: protectedConfig({ objectLock: { mode: 'governance', days: 30 }, replica: replica() }), bundle: false }); });
  afterAll(() => s.dispose());

  it('replicates the whole storage prefix, SSE-KMS objects re-encrypted with the replica key, no delete markers', () => {
    const rc = bucketOf(s).ReplicationConfiguration as { Role: unknown; Rules: Array<Record<string, unknown>> };
    expect(flat(rc.Role)).toContain('ReplicationRole');
    expect(rc.Rules).toEqual([{
      Id: 'pgops-backups',
      Status: 'Enabled',
      Filter: { Prefix: 'pgops/' },
      Destination: { Bucket: REPLICA_ARN, EncryptionConfiguration: { ReplicaKmsKeyID: REPLICA_KEY } },
      SourceSelectionCriteria: { SseKmsEncryptedObjects: { Status: 'Enabled' } },
      DeleteMarkerReplication: { Status: 'Disabled' },
    }]);
  });

  it('gives the role only what replication needs, on the prefix on both sides, the lock read included', () => {
    const role = Object.values(resources(s.storageTemplate, 'AWS::IAM::Role'))[0]!.Properties!;
    expect(flat(role.RoleName)).toBe('pgops-staging-backup-replication-<AWS::Region>');
    const assume = (role.AssumeRolePolicyDocument as { Statement: Statement[] }).Statement;
    expect(assume.map((x) => x.Principal)).toEqual([{ Service: 's3.amazonaws.com' }]);
    expect(flat(assume[0]!.Condition)).toContain('aws:SourceAccount');
    const st = roleStatements(s.storageTemplate, 'ReplicationRole');
    expect(st.map((x) => x.Sid)).toEqual(['SourceBucket', 'ReadSourceVersions', 'WriteReplicas', 'DecryptSource', 'EncryptReplicas']);
    expect(flat(bySid(st, 'SourceBucket')!.Resource)).toBe(SOURCE);
    expect(flat(bySid(st, 'ReadSourceVersions')!.Resource)).toBe(`${SOURCE}/pgops/*`);
    expect(actionsOf(bySid(st, 'ReadSourceVersions')!).sort()).toEqual(['s3:GetObjectLegalHold', 's3:GetObjectRetention', 's3:GetObjectVersionAcl', 's3:GetObjectVersionForReplication', 's3:GetObjectVersionTagging']);
    expect(bySid(st, 'WriteReplicas')!.Resource).toBe(`${REPLICA_ARN}/pgops/*`);
    expect(actionsOf(bySid(st, 'WriteReplicas')!).sort()).toEqual(['s3:ReplicateDelete', 's3:ReplicateObject', 's3:ReplicateTags']);
    expect(bySid(st, 'EncryptReplicas')!.Resource).toBe(REPLICA_KEY);
    expect(bySid(st, 'EncryptReplicas')!.Condition).toEqual({ StringEquals: { 'kms:ViaService': 's3.eu-central-1.amazonaws.com' } });
    for (const x of st) expect(actionsOf(x).some((a) => a.endsWith('*')), x.Sid).toBe(false);
  });

  it('outputs the role ARN for the replica bucket and key policies', () => {
    expect(Object.keys(s.storageTemplate.toJSON().Outputs as object)).toContain('ReplicationRoleArn');
  });

  it('lets the health role list and read its database folder of the replica and decrypt with its key, nothing more', () => {
    const st = roleStatements(s.dbTemplate('auth'), 'DbauthHealthRole');
    expect(bySid(st, 'ListReplicaPrefix')).toMatchObject({ Action: 's3:ListBucket', Resource: REPLICA_ARN, Condition: { StringLike: { 's3:prefix': ['pgops/auth/*'] } } });
    expect(bySid(st, 'ReadReplica')).toMatchObject({ Action: 's3:GetObject', Resource: `${REPLICA_ARN}/pgops/auth/*` });
    expect(bySid(st, 'DecryptReplica')).toMatchObject({ Action: 'kms:Decrypt', Resource: REPLICA_KEY, Condition: { StringEquals: { 'kms:ViaService': 's3.eu-central-1.amazonaws.com' } } });
    const onReplica = st.filter((x) => flat(x.Resource).includes('acme-pgops-replica'));
    expect(onReplica.flatMap(actionsOf).sort()).toEqual(['s3:GetObject', 's3:ListBucket']);
    // Only the health check reads the copy.
    const cleanup = roleStatements(s.dbTemplate('auth'), 'DbauthCleanupRole');
    expect(cleanup.filter((x) => flat(x.Resource).includes('acme-pgops-replica'))).toEqual([]);
  });

  it('is cdk-nag clean, with no dead acknowledgment', () => {
    const report = new AwsSolutionsChecks().validateScope(s.app);
    expect(report.violations.map((v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.resourceLogicalId ?? r.constructPath).join(', ')}`)).toEqual([]);
    expect(deadAcknowledgments(s.app, allFindings(s.app)).map((a) => `${a.path}: ${a.id}`)).toEqual([]);
  });
});

describe('replication (another account)', () => {
  let s: Synth;
  beforeAll(() => { s = synth({ pgops: protectedConfig({ replica: replica({ account: '210987654321', replicateDeletes: true }) }), bundle: false }); });
  afterAll(() => s.dispose());

  it('hands the copies to the destination account and may override the owner; replicates delete markers when asked', () => {
    const rule = (bucketOf(s).ReplicationConfiguration as { Rules: Array<Record<string, unknown>> }).Rules[0]!;
    expect(rule.Destination).toEqual({ Bucket: REPLICA_ARN, Account: '210987654321', AccessControlTranslation: { Owner: 'Destination' }, EncryptionConfiguration: { ReplicaKmsKeyID: REPLICA_KEY } });
    expect(rule.DeleteMarkerReplication).toEqual({ Status: 'Enabled' });
    const st = roleStatements(s.storageTemplate, 'ReplicationRole');
    expect(actionsOf(bySid(st, 'WriteReplicas')!)).toContain('s3:ObjectOwnerOverrideToBucketOwner');
    // No Object Lock here: the lock reads are not granted.
    expect(actionsOf(bySid(st, 'ReadSourceVersions')!)).not.toContain('s3:GetObjectRetention');
  });

  it('is cdk-nag clean, with no dead acknowledgment', () => {
    const report = new AwsSolutionsChecks().validateScope(s.app);
    expect(report.violations.map((v) => v.ruleName)).toEqual([]);
    expect(deadAcknowledgments(s.app, allFindings(s.app)).map((a) => `${a.path}: ${a.id}`)).toEqual([]);
  });
});
