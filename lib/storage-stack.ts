// The stateful stack: the backups and what protects them. Kept apart from the ops stack so the
// functions can be redeployed, replaced or destroyed without touching a single backup.
import { Aws, CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import type { PgopsConfig } from './config.ts';
import { acknowledge } from './nag.ts';
import { backupBucketName } from './permissions.ts';

export interface StorageStackProps extends StackProps {
  config: PgopsConfig;
}

/**
 * Logical ids of the stateful resources, pinned: a refactoring that changed them would make
 * CloudFormation replace the bucket (RETAIN would orphan it and create an empty one).
 */
export const STATEFUL_LOGICAL_IDS = {
  key: 'BackupKey',
  bucket: 'BackupBucket',
  accessLogBucket: 'AccessLogBucket',
} as const;

export class StorageStack extends Stack {
  readonly bucket: s3.Bucket;
  readonly key: kms.Key;
  /** The role S3 replicates the backups with (protection.replica). */
  readonly replicationRole?: iam.Role;

  constructor(scope: Construct, id: string, props: StorageStackProps) {
    super(scope, id, { terminationProtection: true, ...props });
    const { config } = props;

    this.key = new kms.Key(this, 'BackupKey', {
      description: `pgops ${config.environment}: encrypts the database backups`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    pin(this.key, STATEFUL_LOGICAL_IDS.key);

    // S3 server access logs can only be delivered to an SSE-S3 bucket.
    const accessLogs = new s3.Bucket(this, 'AccessLogBucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      versioned: false,
      lifecycleRules: [{ id: 'expire-access-logs', expiration: Duration.days(config.bucket.accessLogRetentionDays), abortIncompleteMultipartUploadAfter: Duration.days(1) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // No access logging of its own: cdk-nag's S1 rule does not ask it of a bucket that receives access logs.
    pin(accessLogs, STATEFUL_LOGICAL_IDS.accessLogBucket);

    // The bucket's ARN is built from its fixed name: the role is part of the bucket's own definition.
    const bucketArn = `arn:${Aws.PARTITION}:s3:::${backupBucketName(config.environment)}`;
    this.replicationRole = replicationRoleOf(this, config, bucketArn, this.key);
    if (this.replicationRole) {
      new CfnOutput(this, 'ReplicationRoleArn', {
        value: this.replicationRole.roleArn,
        description: 'The role S3 replicates the backups with: name it in the replica bucket policy and key policy (another account)',
      });
    }

    this.bucket = new s3.Bucket(this, 'BackupBucket', {
      bucketName: backupBucketName(config.environment),
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.key,
      // One data key per bucket instead of one KMS call per object.
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      // A deleted or overwritten backup stays recoverable for noncurrentVersionDays.
      versioned: true,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'backup-bucket/',
      lifecycleRules: [
        {
          id: 'abort-incomplete-uploads-and-expire-old-versions',
          abortIncompleteMultipartUploadAfter: Duration.days(1),
          noncurrentVersionExpiration: Duration.days(config.bucket.noncurrentVersionDays),
          expiredObjectDeleteMarker: true,
        },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
      autoDeleteObjects: false,
      // Object Lock versions are never deleted before their retention ends; the lifecycle rule
      // above expires noncurrent versions once it has (S3 waits for the lock), so both hold.
      ...objectLockProps(config),
      ...(this.replicationRole ? { replicationRole: this.replicationRole, replicationRules: [replicationRule(this, config)] } : {}),
    });
    pin(this.bucket, STATEFUL_LOGICAL_IDS.bucket);
    if (config.protection.objectLock?.existingBucket) {
      // Changing ObjectLockEnabled makes CloudFormation replace the bucket (a new, empty one; the
      // old one retained): on a bucket deployed without it, Object Lock is enabled out of band and
      // the template only sets the default retention (ObjectLockConfiguration updates in place).
      (this.bucket.node.defaultChild as s3.CfnBucket).addPropertyDeletionOverride('ObjectLockEnabled');
    }
  }
}

function objectLockProps(config: PgopsConfig): Pick<s3.BucketProps, 'objectLockEnabled' | 'objectLockDefaultRetention'> {
  const lock = config.protection.objectLock;
  if (!lock) return {};
  const days = Duration.days(lock.days);
  return {
    objectLockEnabled: true,
    objectLockDefaultRetention: lock.mode === 'compliance' ? s3.ObjectLockRetention.compliance(days) : s3.ObjectLockRetention.governance(days),
  };
}

/** The predictable name of the replication role, so a destination bucket policy in another account can name it before the deployment. */
export function replicationRoleName(environment: string): string {
  return `pgops-${environment}-backup-replication-${Aws.REGION}`;
}

/**
 * The role S3 assumes to copy the backups: reads object versions under the storage prefix (and their
 * lock, when the bucket has Object Lock), decrypts with the backup key, writes replicas under the
 * same prefix of the destination and encrypts them with its key. Nothing else.
 */
function replicationRoleOf(stack: StorageStack, config: PgopsConfig, bucketArn: string, key: kms.IKey): iam.Role | undefined {
  const r = config.protection.replica;
  if (!r) return undefined;
  const prefix = config.storagePrefix;
  const role = new iam.Role(stack, 'ReplicationRole', {
    roleName: replicationRoleName(config.environment),
    description: `pgops ${config.environment}: S3 replication of the backups to ${r.bucketArn}`,
    assumedBy: new iam.ServicePrincipal('s3.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } } }),
  });
  const crossAccount = r.account !== undefined;
  const statements = [
    new iam.PolicyStatement({ sid: 'SourceBucket', actions: ['s3:GetReplicationConfiguration', 's3:ListBucket'], resources: [bucketArn] }),
    new iam.PolicyStatement({
      sid: 'ReadSourceVersions',
      actions: ['s3:GetObjectVersionForReplication', 's3:GetObjectVersionAcl', 's3:GetObjectVersionTagging', ...(config.protection.objectLock ? ['s3:GetObjectRetention', 's3:GetObjectLegalHold'] : [])],
      resources: [`${bucketArn}/${prefix}/*`],
    }),
    new iam.PolicyStatement({
      sid: 'WriteReplicas',
      actions: ['s3:ReplicateObject', 's3:ReplicateDelete', 's3:ReplicateTags', ...(crossAccount ? ['s3:ObjectOwnerOverrideToBucketOwner'] : [])],
      resources: [`${r.bucketArn}/${prefix}/*`],
    }),
    new iam.PolicyStatement({
      sid: 'DecryptSource',
      actions: ['kms:Decrypt'],
      resources: [key.keyArn],
      conditions: { StringEquals: { 'kms:ViaService': `s3.${Aws.REGION}.amazonaws.com` } },
    }),
    new iam.PolicyStatement({
      sid: 'EncryptReplicas',
      actions: ['kms:Encrypt', 'kms:GenerateDataKey'],
      resources: [r.kmsKeyArn],
      conditions: { StringEquals: { 'kms:ViaService': `s3.${r.region}.amazonaws.com` } },
    }),
  ];
  for (const s of statements) role.addToPolicy(s);
  acknowledge(role,
    {
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::pgops-${config.environment}-backups-<AWS::AccountId>-<AWS::Region>/${prefix}/*]`,
      reason: `S3 replication reads every object version under the storage prefix ${prefix}/ (backups, manifests, base backups, WAL: names not known in advance), and nothing outside it.`,
    },
    {
      id: `AwsSolutions-IAM5[Resource::${r.bucketArn}/${prefix}/*]`,
      reason: `The replicas are written under the same prefix ${prefix}/ of the destination bucket (replication keeps the keys), and nowhere else in it.`,
    },
  );
  return role;
}

/** Every object under the storage prefix, SSE-KMS re-encrypted with the replica's key. */
function replicationRule(stack: StorageStack, config: PgopsConfig): s3.ReplicationRule {
  const r = config.protection.replica!;
  const destination = s3.Bucket.fromBucketAttributes(stack, 'ReplicaBucket', {
    bucketArn: r.bucketArn,
    region: r.region,
    ...(r.account !== undefined ? { account: r.account } : {}),
  });
  return {
    id: 'pgops-backups',
    destination,
    filter: { prefix: `${config.storagePrefix}/` },
    sseKmsEncryptedObjects: true,
    kmsKey: kms.Key.fromKeyArn(stack, 'ReplicaKey', r.kmsKeyArn),
    deleteMarkerReplication: r.replicateDeletes,
    // Across accounts the copies become the destination account's: the source account cannot delete them.
    ...(r.account !== undefined ? { accessControlTransition: true } : {}),
  };
}

function pin(construct: kms.Key | s3.Bucket, logicalId: string): void {
  (construct.node.defaultChild as kms.CfnKey | s3.CfnBucket).overrideLogicalId(logicalId);
}
