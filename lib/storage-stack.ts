// The stateful stack: the backups and what protects them. Kept apart from the ops stack so the
// functions can be redeployed, replaced or destroyed without touching a single backup.
import { Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import type { PgopsConfig } from './config.ts';
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
    });
    pin(this.bucket, STATEFUL_LOGICAL_IDS.bucket);
  }
}

function pin(construct: kms.Key | s3.Bucket, logicalId: string): void {
  (construct.node.defaultChild as kms.CfnKey | s3.CfnBucket).overrideLogicalId(logicalId);
}
