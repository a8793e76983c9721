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
 * ListBucket on the bucket itself. Not narrowed by s3:prefix: S3 answers a GetObject of a missing
 * key (a first run's state file) with 404 only to callers allowed to list; with a prefix
 * condition it answers 403, which the jobs would take for a real failure. Listing shows key
 * names only; reading any object still needs GetObject on this database's prefix.
 */
export function listStatement(loc: BackupLocation): iam.PolicyStatement {
  return new iam.PolicyStatement({ sid: 'ListBackupBucket', actions: ['s3:ListBucket'], resources: [loc.bucket.bucketArn] });
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
