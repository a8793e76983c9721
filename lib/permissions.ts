// IAM statements shared by the functions and the task, each as narrow as the job allows.
import { Aws } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { acknowledge } from './nag.ts';

/**
 * The backup bucket's name: predictable, so the ops stack builds its ARNs from its own account
 * and region (no cross-stack reference) and operators know where the backups are.
 */
export function backupBucketName(environment: string): string {
  return `pgops-${environment}-backups-${Aws.ACCOUNT_ID}-${Aws.REGION}`;
}

/** How cdk-nag prints that name in a finding id (tokens as <Ref>). */
function backupBucketNameInFinding(environment: string): string {
  return `pgops-${environment}-backups-<AWS::AccountId>-<AWS::Region>`;
}

/** Where one database's objects live in the bucket: <storagePrefix>/<database id>/... */
export interface BackupLocation {
  environment: string;
  bucket: s3.IBucket;
  key: kms.IKey;
  storagePrefix: string;
  databaseId: string;
}

/** PGOPS_STORAGE: the jobs add the database id themselves. */
export function storageUrl(loc: BackupLocation): string {
  return `s3://${loc.bucket.bucketName}/${loc.storagePrefix}`;
}

/**
 * Object actions on keys under `<storagePrefix>/<database>/<sub>` (s3:PutObject covers the
 * multipart upload calls), added to a role (or a managed policy, for a principal outside the
 * stack) with the cdk-nag acknowledgment of exactly that prefix wildcard: object ARNs cannot name
 * keys that do not exist yet.
 */
export function allowObjects(to: iam.Role | iam.ManagedPolicy, sid: string, loc: BackupLocation, actions: string[], sub: string): void {
  const path = `${loc.storagePrefix}/${loc.databaseId}/${sub}`;
  const statement = new iam.PolicyStatement({ sid, actions, resources: [loc.bucket.arnForObjects(path)] });
  if (to instanceof iam.ManagedPolicy) to.addStatements(statement);
  else to.addToPolicy(statement);
  acknowledge(to, {
    id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::${backupBucketNameInFinding(loc.environment)}/${path}]`,
    reason: `Objects are created under this database's prefix with names (backup ids, WAL segment names) not known in advance; the wildcard stops at ${path}, so no other database's or job's objects are reachable.`,
  });
}

/**
 * ListBucket on the bucket, narrowed by s3:prefix to this database's folder: a listing of another
 * database's keys (or of the whole bucket) is refused. S3 hides whether a key exists from a caller
 * whose list right does not cover the request: with a prefix condition, a GetObject of a missing key
 * (a first run's state file, a WAL segment not archived yet) answers 403 AccessDenied, not 404. The
 * storage layer (functions/core/storage/s3.ts) tells the two apart by listing exactly that key,
 * which this condition allows, so "absent" stays "absent" and a real denial stays an error.
 */
export function listStatement(loc: BackupLocation): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: 'ListOwnPrefix',
    actions: ['s3:ListBucket'],
    resources: [loc.bucket.bucketArn],
    conditions: { StringLike: { 's3:prefix': [listPrefixPattern(loc)] } },
  });
}

/** The s3:prefix pattern of a database's listings: `<storagePrefix>/<database>/` and below, nothing beside. */
export function listPrefixPattern(loc: Pick<BackupLocation, 'storagePrefix' | 'databaseId'>): string {
  return `${loc.storagePrefix}/${loc.databaseId}/*`;
}

/** Use of the bucket key, only through S3. */
export function bucketKeyStatement(loc: BackupLocation, write: boolean): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: write ? 'EncryptAndDecryptBackups' : 'DecryptBackups',
    // Decrypt is needed for writes too: multipart uploads to SSE-KMS objects decrypt the data key.
    actions: write ? ['kms:GenerateDataKey', 'kms:Decrypt'] : ['kms:Decrypt'],
    resources: [loc.key.keyArn],
    conditions: { StringEquals: { 'kms:ViaService': `s3.${Aws.REGION}.amazonaws.com` } },
  });
}

/** Read one Secrets Manager secret (and decrypt it when it uses a customer-managed key). */
export function secretReadStatements(secretArn: string, kmsKeyArn?: string, sid = 'ReadDatabaseSecret'): iam.PolicyStatement[] {
  const statements = [new iam.PolicyStatement({ sid, actions: ['secretsmanager:GetSecretValue'], resources: [secretArn] })];
  if (kmsKeyArn) {
    statements.push(new iam.PolicyStatement({
      sid: `${sid}Key`,
      actions: ['kms:Decrypt'],
      resources: [kmsKeyArn],
      conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${Aws.REGION}.amazonaws.com` } },
    }));
  }
  return statements;
}

/**
 * ecs:RunTask of one task definition on one cluster, and passing exactly its two roles; `name`
 * tells the statements of two tasks apart in one policy (Run<name>, Pass<name>Roles).
 */
export function runTaskStatements(taskDefinitionArn: string, clusterArn: string, roleArns: string[], name = 'LongJobTask'): iam.PolicyStatement[] {
  return [
    new iam.PolicyStatement({
      sid: `Run${name}`,
      actions: ['ecs:RunTask'],
      resources: [taskDefinitionArn],
      conditions: { ArnEquals: { 'ecs:cluster': clusterArn } },
    }),
    new iam.PolicyStatement({
      sid: `Pass${name}Roles`,
      actions: ['iam:PassRole'],
      resources: roleArns,
      conditions: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
    }),
  ];
}

/** The copy of the backups the health check reads (protection.replica). */
export interface ReplicaLocation {
  bucketArn: string;
  region: string;
  kmsKeyArn: string;
  storagePrefix: string;
  databaseId: string;
}

/**
 * Read-only rights on one database's folder in the replica bucket: list it (narrowed by s3:prefix,
 * as on the source), read its objects, decrypt them through S3 in the replica's region. Across
 * accounts the replica's bucket and key policies must allow this role too (README).
 */
export function allowReplicaRead(role: iam.Role, loc: ReplicaLocation): void {
  const path = `${loc.storagePrefix}/${loc.databaseId}`;
  role.addToPolicy(new iam.PolicyStatement({
    sid: 'ListReplicaPrefix',
    actions: ['s3:ListBucket'],
    resources: [loc.bucketArn],
    conditions: { StringLike: { 's3:prefix': [`${path}/*`] } },
  }));
  role.addToPolicy(new iam.PolicyStatement({ sid: 'ReadReplica', actions: ['s3:GetObject'], resources: [`${loc.bucketArn}/${path}/*`] }));
  role.addToPolicy(new iam.PolicyStatement({
    sid: 'DecryptReplica',
    actions: ['kms:Decrypt'],
    resources: [loc.kmsKeyArn],
    conditions: { StringEquals: { 'kms:ViaService': `s3.${loc.region}.amazonaws.com` } },
  }));
  acknowledge(role, {
    id: `AwsSolutions-IAM5[Resource::${loc.bucketArn}/${path}/*]`,
    reason: `The replica check reads this database's manifests in the replica bucket (backup ids not known in advance); read only, and the wildcard stops at ${path}/.`,
  });
}
