// The deployment configuration: cdk.json context "pgops" (or a JSON file named by the context key
// "pgopsConfigFile"), validated with zod; every bad field is named. The job settings (retention,
// health, backup, ...) reuse the runtime's own schema, so the CDK app and the functions agree.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Node } from 'constructs';
import * as z from 'zod';
import { fileConfigSchema, SSL_MODES, type FileConfig } from '../functions/core/config.ts';
import { SUPPORTED_PG_MAJORS } from './base-image.ts';
import { MAX_ALARM_RANGE_HOURS, silenceWindow } from './schedule-window.ts';

/** Thrown for an invalid configuration; `issues` name each bad field as `pgops.<path>: <why>`. */
export class PgopsConfigError extends Error {
  constructor(readonly issues: string[], source = 'cdk.json context "pgops"') {
    super(`invalid pgops configuration (${source}):\n${issues.map((i) => `  - ${i}`).join('\n')}`);
    this.name = 'PgopsConfigError';
  }
}

// Scheduler expressions: cron(6 fields), rate(N unit) or at(...). EventBridge checks the rest.
const scheduleExpression = z.string().regex(
  /^(cron\((\S+ ){5}\S+\)|rate\([1-9]\d* (minute|minutes|hour|hours|day|days)\)|at\(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\))$/,
  'must be cron(min hour day-of-month month day-of-week year), rate(N minutes|hours|days) or at(yyyy-mm-ddThh:mm:ss)',
);

const arnOf = (service: string, resource: string, example: string) =>
  z.string().regex(new RegExp(`^arn:aws[a-z-]*:${service}:[a-z0-9-]+:\\d{12}:${resource}$`), `must be a complete ${service} ARN, like ${example}`);

// The complete ARN (with the 6-character suffix Secrets Manager adds): IAM and ECS match it exactly.
// "!" only in the names RDS gives the secrets it manages (rds!db-<uuid>, rds!cluster-<uuid>).
const secretArn = arnOf('secretsmanager', 'secret:(rds![a-z]+-)?[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}', 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:pgops/auth-AbCdEf');

/** A master-user secret that RDS manages (ManageMasterUserPassword): it holds only username and password. */
export function isRdsManagedSecret(arn: string): boolean {
  return /:secret:rds!/.test(arn);
}

// The pipeline roles that may invoke a migrate function (a Lambda resource policy names roles by ARN).
const roleArns = z.array(z.string().regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/, 'must be an IAM role ARN, like arn:aws:iam::123456789012:role/github-deploy'))
  .refine((arns) => new Set(arns).size === arns.length, 'lists a role twice');
const kmsKeyArn = arnOf('kms', 'key/[a-f0-9-]{36}', 'arn:aws:kms:eu-west-1:123456789012:key/<uuid>');

// Lower case, so the id can appear in alarm, schedule and task family names unchanged.
const databaseId = z.string().regex(/^[a-z][a-z0-9_-]{0,30}$/, 'must start with a lower-case letter; lower-case letters, digits, "-" and "_"; at most 31 characters');

// PostgreSQL's rule for replication slot names (lower case, digits, underscore; NAMEDATALEN - 1).
const slotName = z.string().regex(/^[a-z0-9_]{1,63}$/, 'must be a replication slot name: lower-case letters, digits and "_", at most 63 characters');

/** The default base-backup schedule: daily, an hour before the default nightly logical backup. */
export const DEFAULT_BASE_BACKUP_SCHEDULE = 'cron(0 1 * * ? *)';

/**
 * Opt-in point-in-time recovery (self-managed PostgreSQL: it needs a role with REPLICATION).
 * `stream`: a Fargate service runs `pgops wal receive` through a replication slot;
 * `archive-command`: the database host runs `pgops wal push %p` (the stack only outputs its IAM policy).
 */
const pitrSchema = z.strictObject({
  walArchiving: z.enum(['stream', 'archive-command'], { error: 'must be "stream" (a Fargate receiver) or "archive-command" (pgops wal push on the database host)' }),
  /** Stream mode only; default pgops_<database id> with "-" as "_". */
  slot: slotName.optional(),
  baseBackupSchedule: scheduleExpression.default(DEFAULT_BASE_BACKUP_SCHEDULE),
  /** Overrides health.maxWalArchiveAgeMinutes for this database (its alarm and its health check). */
  maxWalArchiveAgeMinutes: z.number().positive().optional(),
}).superRefine((p, ctx) => {
  if (p.slot !== undefined && p.walArchiving !== 'stream') {
    ctx.addIssue({ code: 'custom', path: ['slot'], message: 'only for walArchiving "stream" (archive_command uses no replication slot)' });
  }
});

const awsRegion = z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be an AWS region, like eu-central-1');
const bucketArn = z.string().regex(/^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket ARN, like arn:aws:s3:::acme-pgops-replica');

/** The S3 bucket name of a bucket ARN (arn:aws:s3:::<name>). */
export function bucketNameOfArn(arn: string): string {
  return arn.slice(arn.lastIndexOf(':') + 1);
}

/**
 * Protected backups. `objectLock`: S3 Object Lock with a default retention on the backup bucket
 * (retention then keeps whatever is still locked). `replica`: S3 replication of the whole storage
 * prefix (dumps, manifests, base backups, WAL) to a bucket in another region and/or account, which
 * the health check reads (`replica`).
 */
const protectionSchema = z.strictObject({
  objectLock: z.strictObject({
    mode: z.enum(['governance', 'compliance'], { error: 'must be "governance" (an admin with s3:BypassGovernanceRetention can still delete) or "compliance" (nobody can, not even the root user)' }),
    days: z.number().int().min(1).max(36_500),
    /**
     * The bucket was deployed before Object Lock was configured: CloudFormation would replace it to
     * set ObjectLockEnabled, so the template leaves that property out and Object Lock is enabled on
     * the bucket with put-object-lock-configuration before deploying (README "Protecting backups").
     */
    existingBucket: z.boolean().default(false),
  }).optional(),
  replica: z.strictObject({
    bucketArn,
    region: awsRegion,
    /** The destination's account when it is not the storage stack's: replicas become its property. */
    account: z.string().regex(/^\d{12}$/, 'must be a 12-digit AWS account id').optional(),
    /** The replica bucket's KMS key: S3 re-encrypts every copy with it (the backups are SSE-KMS). */
    kmsKeyArn,
    /** Replicate delete markers (retention's deletions) too; off, the copy keeps what the source deletes. */
    replicateDeletes: z.boolean().default(false),
  }).optional(),
}).superRefine((p, ctx) => {
  const r = p.replica;
  if (!r) return;
  const [, , , keyRegion, keyAccount] = r.kmsKeyArn.split(':');
  if (keyRegion !== r.region) ctx.addIssue({ code: 'custom', path: ['replica', 'kmsKeyArn'], message: `the key is in ${keyRegion}, the replica bucket in ${r.region}: S3 replication encrypts with a key of the destination's region` });
  if (r.account !== undefined && keyAccount !== r.account) ctx.addIssue({ code: 'custom', path: ['replica', 'kmsKeyArn'], message: `the key belongs to account ${keyAccount}, the replica bucket to ${r.account}` });
});

// The runtime's settings the CDK app derives from `protection` (retention.objectLock,
// health.replicaStorage and health.replicaRegion): not set by hand, so they cannot disagree.
const retentionSection = fileConfigSchema.shape.retention.unwrap().omit({ objectLock: true }).prefault({});
const healthSection = fileConfigSchema.shape.health.unwrap().omit({ replicaStorage: true, replicaRegion: true }).prefault({});

// The shared sections' inner objects: optional per database without default-filling (a database
// that does not mention `cleanup` inherits the shared one).
const cleanupSection = fileConfigSchema.shape.cleanup.unwrap();

const databaseSchema = z.strictObject({
  id: databaseId,
  /** A Secrets Manager secret in the RDS JSON shape (host, port, username, password, dbname). */
  secretArn,
  /** Set when the secret is encrypted with a customer-managed key (not aws/secretsmanager). */
  secretKmsKeyArn: kmsKeyArn.optional(),
  /** The subnets' VPC, for reference: the ids are used as given, never looked up (offline synth). */
  vpcId: z.string().regex(/^vpc-[0-9a-f]{8,17}$/, 'must be a VPC id (vpc-...)'),
  subnetIds: z.array(z.string().regex(/^subnet-[0-9a-f]{8,17}$/, 'must be a subnet id (subnet-...)')).min(1, 'at least one subnet'),
  securityGroupIds: z.array(z.string().regex(/^sg-[0-9a-f]{8,17}$/, 'must be a security group id (sg-...)')).min(1, 'at least one security group'),
  /** Overrides the runtime default (require; verify-full when a CA bundle is given). */
  sslMode: z.enum(SSL_MODES).optional(),
  /** Replaces the shared `cleanup` section for this database (its tables are its own). */
  cleanup: cleanupSection.optional(),
  /** Point-in-time recovery; absent: no WAL archive, no base backups, no PITR resources. */
  pitr: pitrSchema.optional(),
  /** Where to connect when the secret does not say (an RDS-managed secret); each overrides the secret's value. */
  host: z.string().regex(/^[A-Za-z0-9._:-]{1,253}$/, 'must be a host name or an IP address (the instance or cluster endpoint)').optional(),
  port: z.number().int().min(1).max(65535).optional(),
  dbname: z.string().min(1).max(63).optional(),
  /** Replaces the environment's `migrateInvokers` for this database's migrate function. */
  migrateInvokers: roleArns.optional(),
  /**
   * RDS/Aurora (the runtime's `managed` section): with `rdsInstance` or `auroraCluster`, the stack adds
   * the point-in-time recovery state machine; the jobs read the section too (restore-window check, cleanup of copies).
   */
  managed: fileConfigSchema.shape.managed,
}).superRefine((d, ctx) => {
  if (!isRdsManagedSecret(d.secretArn)) return;
  for (const key of ['host', 'dbname'] as const) {
    if (d[key] === undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'required with an RDS-managed secret (rds!...), which holds only username and password' });
  }
});

// CloudWatch Logs accepts only these retention periods.
const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653] as const;

// Fargate's valid cpu -> memory (MiB) combinations.
const FARGATE_MEMORY: Record<number, (m: number) => boolean> = {
  256: (m) => [512, 1024, 2048].includes(m),
  512: (m) => m >= 1024 && m <= 4096 && m % 1024 === 0,
  1024: (m) => m >= 2048 && m <= 8192 && m % 1024 === 0,
  2048: (m) => m >= 4096 && m <= 16384 && m % 1024 === 0,
  4096: (m) => m >= 8192 && m <= 30720 && m % 1024 === 0,
  8192: (m) => m >= 16384 && m <= 61440 && m % 4096 === 0,
  16384: (m) => m >= 32768 && m <= 122880 && m % 8192 === 0,
};

// Up to a week: a longer job would outlast its own schedule.
const deadlineMinutes = z.number().int().min(1).max(7 * 24 * 60);

const PG_MAJOR_MESSAGE = `must be one of ${SUPPORTED_PG_MAJORS.join(', ')}: the PostgreSQL majors Amazon Linux 2023 (the image's base) packages`;

export const pgopsConfigSchema = z.strictObject({
  /** Short name (staging, prod): in stack names, alarm names and alerts. */
  environment: z.string().regex(/^[a-z][a-z0-9-]{0,19}$/, 'must start with a lower-case letter; lower-case letters, digits and "-"; at most 20 characters'),
  databases: z.array(databaseSchema).min(1, 'at least one database'),
  schedules: z.strictObject({
    backup: scheduleExpression.default('cron(0 2 * * ? *)'),
    health: scheduleExpression.default('rate(1 hour)'),
    cleanup: scheduleExpression.default('cron(30 3 * * ? *)'),
    /** The weekly restore test on Fargate (the health check wants one within health.maxRestoreTestAgeDays); null turns it off. */
    restoreTest: scheduleExpression.nullable().default('cron(0 4 ? * SUN *)'),
    timezone: z.string().min(1).default('UTC'),
  }).prefault({}),
  alertEmails: z.array(z.email('must be an e-mail address')).default([]),
  /** A secret holding the Slack incoming-webhook URL (or JSON { "url": ... }); without it, no notify-slack function. */
  slackWebhookSecretArn: secretArn.optional(),
  slackWebhookSecretKmsKeyArn: kmsKeyArn.optional(),
  // The runtime's sections, validated by the runtime's schema.
  retention: retentionSection,
  health: healthSection,
  backup: fileConfigSchema.shape.backup,
  physical: fileConfigSchema.shape.physical,
  database: fileConfigSchema.shape.database,
  migrate: fileConfigSchema.shape.migrate,
  cleanup: fileConfigSchema.shape.cleanup,
  /** PostgreSQL client tools in the image: at least the servers' major version; only majors its distribution packages. */
  pgMajor: z.number({ error: PG_MAJOR_MESSAGE }).refine((m) => SUPPORTED_PG_MAJORS.includes(m), PG_MAJOR_MESSAGE).default(17),
  /** Backups go to s3://<bucket>/<storagePrefix>/<database id>/... */
  storagePrefix: z.string().regex(/^[a-z0-9][a-z0-9_-]*(\/[a-z0-9][a-z0-9_-]*)*$/, 'lower-case path segments separated by "/", no leading or trailing "/"').default('pgops'),
  /** Run `migrate up` on every deployment that changes the migrate function (its bundle holds the migrations). */
  migrateOnDeploy: z.boolean().default(false),
  /** Pipeline roles allowed by each migrate function's resource policy (per database: databases[].migrateInvokers). */
  migrateInvokers: roleArns.default([]),
  /** X-Ray active tracing and the Powertools tracer in every function; false turns both off. */
  tracing: z.boolean().default(true),
  logLevel: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  logRetentionDays: z.number().refine((d) => (LOG_RETENTION_DAYS as readonly number[]).includes(d), `must be one of ${LOG_RETENTION_DAYS.join(', ')}`).default(90),
  /** CPU architecture of every function and the task; building an arm64 image on x86 needs QEMU (binfmt). */
  architecture: z.enum(['arm64', 'x86_64']).default('arm64'),
  fargate: z.strictObject({
    cpu: z.number().refine((n) => n in FARGATE_MEMORY, `must be one of ${Object.keys(FARGATE_MEMORY).join(', ')}`).default(1024),
    memoryMiB: z.number().int().positive().default(4096),
    /** Room for pg_dump's directory format (--jobs) and restores: 21 to 200 GiB. */
    ephemeralStorageGiB: z.number().int().min(21).max(200).default(50),
  }).prefault({}),
  /** Object Lock and a replica of the backups; both off by default. */
  protection: protectionSchema.prefault({}),
  /**
   * Each Fargate job's own deadline, in minutes: the CLI stops the job there (as on SIGTERM: it
   * cleans up), alerts naming the deadline, and exits 124. A hung task never runs forever.
   */
  tasks: z.strictObject({
    deadlineMinutes: z.strictObject({
      backup: deadlineMinutes.default(360),
      restoreTest: deadlineMinutes.default(240),
      baseBackup: deadlineMinutes.default(360),
      restore: deadlineMinutes.default(720),
      pitr: deadlineMinutes.default(720),
    }).prefault({}),
  }).prefault({}),
  bucket: z.strictObject({
    /** Overwritten or deleted backup objects stay recoverable this long. */
    noncurrentVersionDays: z.number().int().min(1).default(30),
    accessLogRetentionDays: z.number().int().min(1).default(365),
  }).prefault({}),
}).superRefine((c, ctx) => {
  // Output keys drop "-" and "_": auth-db and auth_db would collide there.
  const seen = new Map<string, number>();
  c.databases.forEach((d, i) => {
    const key = d.id.replace(/[-_]/g, '');
    const first = seen.get(key);
    if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['databases', i, 'id'], message: `duplicate database id "${d.id}" (also databases[${first}]; "-" and "_" do not count)` });
    else seen.set(key, i);
  });
  // Every scheduled job has a silence alarm, whose window CloudWatch caps at 7 days (schedule-window.ts);
  // the restore test alone is watched by its age instead, so it may run weekly or less often.
  const watched: Array<[Array<string | number>, string]> = [
    [['schedules', 'backup'], c.schedules.backup],
    [['schedules', 'health'], c.schedules.health],
    [['schedules', 'cleanup'], c.schedules.cleanup],
    ...c.databases.flatMap((d, i): Array<[Array<string | number>, string]> => (d.pitr ? [[['databases', i, 'pitr', 'baseBackupSchedule'], d.pitr.baseBackupSchedule]] : [])),
  ];
  for (const [path, expression] of watched) {
    const w = silenceWindow(expression);
    if (w.kind === 'too-long') ctx.addIssue({ code: 'custom', path, message: `runs every ${w.gapHours} h at most: its silence alarm needs a run at least every ${MAX_ALARM_RANGE_HOURS - 1} h (CloudWatch evaluates an alarm over 7 days at most)` });
  }
  if (!FARGATE_MEMORY[c.fargate.cpu]?.(c.fargate.memoryMiB)) {
    ctx.addIssue({ code: 'custom', path: ['fargate', 'memoryMiB'], message: `${c.fargate.memoryMiB} MiB is not a valid Fargate memory size for cpu ${c.fargate.cpu}` });
  }
});

export type PgopsConfig = z.infer<typeof pgopsConfigSchema>;
export type DatabaseConfig = PgopsConfig['databases'][number];

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path.reduce<string>((s, p) => (typeof p === 'number' ? `${s}[${p}]` : `${s}.${String(p)}`), 'pgops');
}

/** Validate a raw configuration; throws PgopsConfigError naming every bad field. */
export function parsePgopsConfig(raw: unknown, source?: string): PgopsConfig {
  if (raw === undefined || raw === null) throw new PgopsConfigError(['pgops: missing (add a "pgops" object to the "context" of cdk.json)'], source);
  const parsed = pgopsConfigSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((k) => `${formatPath([...issue.path, k])}: unknown field`)
      : [`${formatPath(issue.path)}: ${issue.message}`]);
  throw new PgopsConfigError(issues, source);
}

/**
 * The configuration of an app: the context key "pgopsConfigFile" (a JSON file, e.g. one per
 * environment: `-c pgopsConfigFile=deploy/prod.json`) or else the context object "pgops".
 */
export function loadPgopsConfig(node: Node, cwd = process.cwd()): PgopsConfig {
  const file = node.tryGetContext('pgopsConfigFile') as unknown;
  if (typeof file === 'string' && file !== '') {
    const path = resolve(cwd, file);
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      throw new PgopsConfigError([`pgopsConfigFile ${path}: ${err instanceof Error ? err.message : String(err)}`], path);
    }
    return parsePgopsConfig(raw, path);
  }
  let raw = node.tryGetContext('pgops') as unknown;
  // `-c pgops=...` on the command line arrives as a string.
  if (typeof raw === 'string') {
    try {
      raw = JSON.parse(raw);
    } catch {
      throw new PgopsConfigError(['pgops: not valid JSON']);
    }
  }
  return parsePgopsConfig(raw);
}

/** The roles allowed to invoke this database's migrate function: its own list, else the environment's. */
export function migrateInvokersFor(config: PgopsConfig, db: DatabaseConfig): string[] {
  return db.migrateInvokers ?? config.migrateInvokers;
}

/** A database's PITR settings with every default filled in. */
export interface PitrSettings {
  walArchiving: 'stream' | 'archive-command';
  /** The replication slot of the receiver (stream mode only). */
  slot?: string;
  baseBackupSchedule: string;
  maxWalArchiveAgeMinutes: number;
}

/** The database's PITR settings, or undefined when it has none (no PITR resources at all). */
export function pitrSettingsFor(config: PgopsConfig, db: DatabaseConfig): PitrSettings | undefined {
  const p = db.pitr;
  if (!p) return undefined;
  return {
    walArchiving: p.walArchiving,
    ...(p.walArchiving === 'stream' ? { slot: p.slot ?? `pgops_${db.id.replace(/-/g, '_')}` } : {}),
    baseBackupSchedule: p.baseBackupSchedule,
    maxWalArchiveAgeMinutes: p.maxWalArchiveAgeMinutes ?? config.health.maxWalArchiveAgeMinutes,
  };
}

/** What the jobs of one database read (PGOPS_CONFIG): the runtime's file format. */
export function runtimeConfigFor(config: PgopsConfig, db: DatabaseConfig): FileConfig {
  const walAge = db.pitr?.maxWalArchiveAgeMinutes;
  const lock = config.protection.objectLock;
  return {
    environment: config.environment,
    database: config.database,
    migrate: config.migrate,
    backup: config.backup,
    physical: config.physical,
    // The health check measures against the same threshold as the database's alarm.
    health: healthFor(config, walAge),
    retention: { ...config.retention, ...(lock ? { objectLock: { mode: lock.mode, days: lock.days } } : {}) },
    cleanup: db.cleanup ?? config.cleanup,
    ...(db.managed ? { managed: db.managed } : {}),
  };
}

/** Where the replica check reads the copy: the same prefix in the replica bucket (replication keeps keys). */
export function replicaStorageUrl(config: PgopsConfig): string | undefined {
  const r = config.protection.replica;
  return r ? `s3://${bucketNameOfArn(r.bucketArn)}/${config.storagePrefix}` : undefined;
}

/** The environment's health settings, the same object when the database changes nothing in them. */
function healthFor(config: PgopsConfig, walAge: number | undefined): PgopsConfig['health'] {
  const overrides = { ...(walAge === undefined ? {} : { maxWalArchiveAgeMinutes: walAge }), ...replicaHealthOf(config) };
  return Object.keys(overrides).length === 0 ? config.health : { ...config.health, ...overrides };
}

function replicaHealthOf(config: PgopsConfig): { replicaStorage?: string; replicaRegion?: string } {
  const url = replicaStorageUrl(config);
  return url ? { replicaStorage: url, replicaRegion: config.protection.replica!.region } : {};
}

/**
 * PGOPS_TASK_DEADLINES of a Fargate task: each deadline in seconds, by the CLI job that runs it
 * (the restore test is `backups verify --restore-test`, job "verify").
 */
export function taskDeadlinesFor(config: PgopsConfig): Record<string, number> {
  const m = config.tasks.deadlineMinutes;
  return { backup: m.backup * 60, verify: m.restoreTest * 60, basebackup: m.baseBackup * 60, restore: m.restore * 60, pitr: m.pitr * 60 };
}
