// The one module that reads the environment. Flags (CLI) override environment variables; the
// optional JSON config file holds thresholds, retention and cleanup rules. Everything is validated
// with zod and every bad field is reported at once (ConfigError, exit 2).
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import * as z from 'zod';
import { ConfigError } from './errors.ts';
import { compressionSetting, DEFAULT_DUMP_COMPRESSION, parsePhysicalCompression } from './pgtools/compression.ts';
import type { LogLevel } from './logger.ts';
import { registerSecret } from './redact.ts';

/** A plain SQL identifier: refused unless it is one, so it can be quoted and never spliced. */
export const identifier = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'must be a plain identifier (letters, digits, underscore; at most 63 characters)');

const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();
const ratio = z.number().min(0).max(1);

export const cleanupRuleSchema = z.strictObject({
  name: z.string().min(1),
  table: identifier,
  schema: identifier.optional(),
  timestampColumn: identifier,
  olderThanDays: z.number().positive(),
  batchSize: positiveInt.max(1_000_000).default(5000),
});

/** An RDS DB instance or cluster identifier: 1-63 letters, digits and hyphens, a letter first, no "--", no trailing "-". */
export const rdsIdentifier = z.string().regex(/^[A-Za-z](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,62}$/, 'must be an RDS identifier: 1 to 63 letters, digits and hyphens, starting with a letter, without two hyphens in a row or a hyphen at the end');

/**
 * The database is an RDS instance or an Aurora cluster (at most one): the health job checks its
 * restore window, cleanup deletes expired PITR copies, and `pgops pitr --rds-instance/--aurora-cluster`
 * restores temporary copies shaped by `pitr`.
 */
const managedSchema = z.strictObject({
  rdsInstance: rdsIdentifier.optional(),
  auroraCluster: rdsIdentifier.optional(),
  pitr: z.strictObject({
    /** The restored copy's class; db.serverless (Aurora only) uses serverlessV2. */
    instanceClass: z.string().regex(/^db\.([a-z0-9-]+\.[a-z0-9]+|serverless)$/, 'must be a DB instance class such as db.t4g.medium (or db.serverless for Aurora)').default('db.t4g.medium'),
    serverlessV2: z.strictObject({
      minCapacity: z.number().min(0).max(256).default(0.5),
      maxCapacity: z.number().min(1).max(256).default(4),
    }).prefault({}),
    /** Overrides of what is taken from the source. */
    dbSubnetGroup: z.string().min(1).max(255).optional(),
    vpcSecurityGroupIds: z.array(z.string().regex(/^sg-[0-9a-z]+$/, 'must be a security group id (sg-...)')).min(1).optional(),
    dbParameterGroup: z.string().min(1).max(255).optional(),
    dbClusterParameterGroup: z.string().min(1).max(255).optional(),
    /** The copy's pgops:expires tag: cleanup deletes it after this long, whatever happened to the run. */
    ttlHours: z.number().positive().max(24 * 31).default(24),
    /** How long the restore may take to become available before the run fails (and deletes it). */
    restoreTimeoutMinutes: positiveInt.max(24 * 60).default(240),
    /** How often the restore's status is polled. */
    pollSeconds: positiveInt.max(600).default(30),
  }).prefault({}),
}).superRefine((m, ctx) => {
  if (m.rdsInstance !== undefined && m.auroraCluster !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['auroraCluster'], message: 'rdsInstance and auroraCluster are both set: the database is one or the other' });
  }
  if (m.pitr.serverlessV2.minCapacity > m.pitr.serverlessV2.maxCapacity) {
    ctx.addIssue({ code: 'custom', path: ['pitr', 'serverlessV2', 'minCapacity'], message: 'must not exceed maxCapacity' });
  }
});

export const fileConfigSchema = z.strictObject({
  environment: z.string().min(1).max(64).default('default'),
  database: z.strictObject({
    lockTimeoutMs: nonNegativeInt.default(5000),
    statementTimeoutMs: nonNegativeInt.default(0),
    connectTimeoutMs: positiveInt.default(10_000),
  }).prefault({}),
  migrate: z.strictObject({
    lockWaitSeconds: nonNegativeInt.default(60),
    migrationsTable: identifier.default('pgmigrations'),
    migrationsSchema: identifier.default('public'),
    /** `migrate up` lints the pending migrations first: "error" refuses on an error finding, "warn" reports, "off" skips. */
    lint: z.enum(['error', 'warn', 'off']).default('error'),
    /** A full logical backup before applying: "always", "destructive" (a pending drop, rename, type change or truncate) or "never". */
    backupBefore: z.enum(['never', 'always', 'destructive']).default('never'),
  }).prefault({}),
  backup: z.strictObject({
    inlineMaxBytes: positiveInt.default(10 * 1024 ** 3),
    /** pg_dump's compression: gzip:N (0-9), lz4 or zstd:N (pg_dump >= 16), none. The default was chosen on the bench (README). */
    compression: compressionSetting.default(DEFAULT_DUMP_COMPRESSION),
    /**
     * Row counts in the manifest: exact (count(*) of every table in the dump's snapshot, a second
     * full read, what the restore test compares) or estimate (statistics, no extra read). auto:
     * exact for the scheduled backup, estimate for on-demand and migration safety backups.
     */
    rowCounts: z.enum(['auto', 'exact', 'estimate']).default('auto'),
  }).prefault({}),
  /** Physical base backups (pgops basebackup). */
  physical: z.strictObject({
    /** gzip (in-process), zstd or lz4 (their command-line tools), or none; `zstd:3`-style levels, bare methods at level 1. */
    compression: z.string().superRefine((s, ctx) => {
      const parsed = parsePhysicalCompression(s);
      if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', message: parsed });
    }).default('gzip'),
    /** How long a base backup waits for the WAL it needs to reach the archive before it fails. */
    archiveWaitSeconds: positiveInt.default(120),
  }).prefault({}),
  health: z.strictObject({
    maxBackupAgeHours: z.number().positive().default(26),
    minBackupSizeRatio: ratio.default(0.5),
    maxRestoreTestAgeDays: z.number().positive().default(8),
    longRunningQuerySeconds: z.number().positive().default(300),
    deadTupleRatioWarn: ratio.default(0.2),
    maxDailyGrowthRatio: z.number().nonnegative().default(0.1),
    alertRepeatHours: z.number().positive().default(24),
    maxWalArchiveAgeMinutes: z.number().positive().default(15),
    /** A replication slot holding back more WAL than this is a warning (the server's disk fills). */
    maxSlotRetainedBytes: positiveInt.default(1024 ** 3),
    /** RDS/Aurora (managed.*): LatestRestorableTime further behind than this is a warning. */
    maxRestoreLagMinutes: z.number().positive().default(15),
    /** RDS/Aurora (managed.*): automated backups kept fewer days than this (or off) is critical. */
    minBackupRetentionDays: positiveInt.max(35).default(7),
    /**
     * A copy of the backups (S3 replication) to check: s3://bucket/prefix, the same layout as the
     * storage. The `replica` check reads its newest manifest. The CDK app sets it from protection.replica.
     */
    replicaStorage: z.string().regex(/^(s3:\/\/[^/]+(\/.*)?|file:\/\/\/.*)$/, 'must be s3://bucket/prefix or file:///absolute/path').optional(),
    /** The replica bucket's region, when it is not the functions' own. */
    replicaRegion: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be an AWS region, like eu-central-1').optional(),
    /** The replica's newest backup further behind the source's newest than this is a warning. */
    maxReplicaLagHours: z.number().positive().default(6),
  }).prefault({}),
  retention: z.strictObject({
    keepLast: nonNegativeInt.default(7),
    keepDaily: nonNegativeInt.default(7),
    keepWeekly: nonNegativeInt.default(4),
    keepMonthly: nonNegativeInt.default(12),
    /**
     * The bucket's S3 Object Lock default retention: every object is locked until its creation plus
     * `days`. Retention never deletes a backup (or WAL) still locked; it reports it. The CDK app sets
     * it from protection.objectLock.
     */
    objectLock: z.strictObject({
      mode: z.enum(['governance', 'compliance']),
      days: positiveInt.max(36_500),
    }).optional(),
  }).prefault({}),
  cleanup: z.strictObject({
    rules: z.array(cleanupRuleSchema).default([]),
    callFunctions: z.array(identifier).default([]),
    vacuumAnalyze: z.boolean().default(false),
  }).prefault({}),
  /** Absent for self-managed PostgreSQL (the CDK app's runtime config need not mention it): see `managedConfigOf`. */
  managed: managedSchema.optional(),
});

export type FileConfig = z.infer<typeof fileConfigSchema>;
export type ManagedConfig = z.infer<typeof managedSchema>;

/** The `managed` section with its defaults, present or not. */
export function managedConfigOf(config: Pick<FileConfig, 'managed'>): ManagedConfig {
  return config.managed ?? managedSchema.parse({});
}
export type CleanupRule = z.infer<typeof cleanupRuleSchema>;

/** libpq's sslmode values that pgops accepts (allow is left out: it never verifies anything). */
export const SSL_MODES = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

/**
 * The environment contract: every variable pgops reads, by setting. The CDK stacks set them
 * through these names, so the functions and the infrastructure cannot drift apart.
 */
export const ENV = {
  databaseUrl: 'DATABASE_URL',
  /** Set by Lambda and ECS (never by pgops): the region of the dashboard link in alerts. */
  region: 'AWS_REGION',
  databaseSecretId: 'PGOPS_DATABASE_SECRET_ID',
  databaseSecretJson: 'PGOPS_DATABASE_SECRET_JSON',
  databaseHost: 'PGOPS_DATABASE_HOST',
  databasePort: 'PGOPS_DATABASE_PORT',
  databaseName: 'PGOPS_DATABASE_NAME',
  sslMode: 'PGOPS_DATABASE_SSLMODE',
  caFile: 'PGOPS_DATABASE_CA_FILE',
  databaseId: 'PGOPS_DATABASE_ID',
  storage: 'PGOPS_STORAGE',
  s3Endpoint: 'PGOPS_S3_ENDPOINT',
  migrationsDir: 'PGOPS_MIGRATIONS_DIR',
  config: 'PGOPS_CONFIG',
  configJson: 'PGOPS_CONFIG_JSON',
  snsTopicArn: 'PGOPS_SNS_TOPIC_ARN',
  slackWebhookUrl: 'PGOPS_SLACK_WEBHOOK_URL',
  slackWebhookSecretId: 'PGOPS_SLACK_WEBHOOK_SECRET_ID',
  logLevel: 'PGOPS_LOG_LEVEL',
  environment: 'PGOPS_ENVIRONMENT',
  pgBinDir: 'PGOPS_PG_BINDIR',
  ecsCluster: 'PGOPS_ECS_CLUSTER',
  ecsTaskDefinition: 'PGOPS_ECS_TASK_DEFINITION',
  ecsContainerName: 'PGOPS_ECS_CONTAINER_NAME',
  ecsSubnets: 'PGOPS_ECS_SUBNETS',
  ecsSecurityGroups: 'PGOPS_ECS_SECURITY_GROUPS',
  backupFunction: 'PGOPS_BACKUP_FUNCTION',
  /** Powertools' own switch (it reads it too): "false" turns the functions' X-Ray tracer into a no-op. */
  traceEnabled: 'POWERTOOLS_TRACE_ENABLED',
  /** "cloudwatch" in the Fargate task: the CLI publishes its jobs' metrics with PutMetricData. */
  metrics: 'PGOPS_METRICS',
  /** JSON { "<job>": seconds }: the CLI stops that job at its deadline (the Fargate task's tasks.deadlineMinutes). */
  taskDeadlines: 'PGOPS_TASK_DEADLINES',
} as const;
export type EnvName = (typeof ENV)[keyof typeof ENV];

/** The CloudWatch namespace of every pgops metric (the jobs publish, the stacks alarm and chart). */
export const METRIC_NAMESPACE = 'pgops';

/** The success metric of each scheduled job: 1 per success; the silence alarms sum it. */
export const SUCCESS_METRIC = {
  backup: 'BackupSucceeded',
  health: 'HealthSucceeded',
  cleanup: 'CleanupSucceeded',
  restoreTest: 'RestoreTestSucceeded',
  baseBackup: 'BaseBackupSucceeded',
} as const;

export type ScheduledJob = keyof typeof SUCCESS_METRIC;

export interface Settings {
  /** A postgres:// URL, when given directly. */
  databaseUrl?: string;
  /** A Secrets Manager secret id in the RDS JSON shape. */
  databaseSecretId?: string;
  /** The same secret's value, when the platform injected it (ECS secrets). */
  databaseSecretJson?: string;
  /**
   * Where a secret-based connection goes when the secret does not say (an RDS-managed secret holds
   * only username and password); each overrides the secret's own value when both are set.
   */
  databaseHost?: string;
  databasePort?: number;
  databaseName?: string;
  /** Overrides the sslmode of a secret-based connection (a URL carries its own). */
  sslMode?: SslMode;
  /** A CA bundle (PEM file) to verify the server certificate. */
  caFile?: string;
  /** The id used in the storage layout; defaults to the connection's database name. */
  databaseId?: string;
  /** Where the PostgreSQL client tools are (PGOPS_PG_BINDIR); else they are looked for. */
  pgBinDir?: string;
  storage?: string;
  s3Endpoint?: string;
  migrationsDir: string;
  snsTopicArn?: string;
  slackWebhookUrl?: string;
  slackWebhookSecretId?: string;
  logLevel: LogLevel;
  /** X-Ray tracing of the Lambda functions (POWERTOOLS_TRACE_ENABLED, default on; Powertools also needs Lambda). */
  tracing: boolean;
  /** Present when the Fargate long-job task is configured (in the deployed stack). */
  fargate?: FargateSettings;
  /** The backup function (name or ARN) that takes the migrate function's backups (migrate.backupBefore). */
  backupFunction?: string;
  /** AWS_REGION, when the platform (or the shell) sets it: alerts link the dashboard of this region. */
  region?: string;
  /** PGOPS_METRICS: "cloudwatch" in the Fargate task (the CLI publishes its jobs' metrics with PutMetricData). */
  metrics?: 'cloudwatch' | 'off';
  /** PGOPS_TASK_DEADLINES: each job's deadline in seconds, by CLI job name (the Fargate task's). */
  taskDeadlines?: Record<string, number>;
  config: FileConfig;
  configFile?: string;
}

export interface FargateSettings {
  cluster: string;
  taskDefinition: string;
  containerName: string;
  subnets: string[];
  securityGroups: string[];
}

/** What the CLI may pass over the environment. */
export interface Flags {
  databaseUrl?: string;
  storage?: string;
  dir?: string;
  config?: string;
  databaseId?: string;
}

const envShape = {
  // Not validated: an odd value only leaves the dashboard link out of alerts (alerts/dashboard.ts).
  AWS_REGION: z.string().optional(),
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must start with postgres:// or postgresql://').optional(),
  PGOPS_DATABASE_SECRET_ID: z.string().min(1).optional(),
  // Host, port and database name for a secret that lacks them (RDS-managed secrets).
  PGOPS_DATABASE_HOST: z.string().regex(/^[A-Za-z0-9._:-]{1,253}$/, 'must be a host name or an IP address').optional(),
  PGOPS_DATABASE_PORT: z.string().refine((p) => /^\d{1,5}$/.test(p) && Number(p) >= 1 && Number(p) <= 65535, 'must be a port number (1-65535)').optional(),
  PGOPS_DATABASE_NAME: z.string().min(1).max(63, 'at most 63 characters (a PostgreSQL identifier)').optional(),
  PGOPS_DATABASE_SSLMODE: z.enum(SSL_MODES, { error: `one of ${SSL_MODES.join(', ')} (allow is not supported)` }).optional(),
  PGOPS_DATABASE_CA_FILE: z.string().min(1).optional(),
  PGOPS_DATABASE_ID: z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, 'letters, digits, dot, dash and underscore only').optional(),
  PGOPS_STORAGE: z.string().regex(/^(s3:\/\/[^/]+(\/.*)?|file:\/\/\/.*)$/, 'must be s3://bucket/prefix or file:///absolute/path').optional(),
  PGOPS_S3_ENDPOINT: z.url().optional(),
  PGOPS_MIGRATIONS_DIR: z.string().min(1).optional(),
  PGOPS_CONFIG: z.string().min(1).optional(),
  // The config file's content inline (containers shared by several databases get it this way).
  PGOPS_CONFIG_JSON: z.string().min(2).optional(),
  // The RDS-shaped secret's JSON, injected by ECS secrets into the Fargate task (never plain env).
  PGOPS_DATABASE_SECRET_JSON: z.string().min(2).optional(),
  PGOPS_SNS_TOPIC_ARN: z.string().regex(/^arn:aws[a-z-]*:sns:/, 'must be an SNS topic ARN').optional(),
  PGOPS_SLACK_WEBHOOK_URL: z.url().optional(),
  PGOPS_SLACK_WEBHOOK_SECRET_ID: z.string().min(1).optional(),
  PGOPS_LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).optional(),
  PGOPS_ENVIRONMENT: z.string().min(1).max(64).optional(),
  PGOPS_PG_BINDIR: z.string().min(1).optional(),
  // Where the backup function starts long jobs (set by the CDK stack).
  PGOPS_ECS_CLUSTER: z.string().min(1).optional(),
  PGOPS_ECS_TASK_DEFINITION: z.string().min(1).optional(),
  PGOPS_ECS_CONTAINER_NAME: z.string().min(1).optional(),
  PGOPS_ECS_SUBNETS: z.string().regex(/^subnet-[0-9a-z]+(,subnet-[0-9a-z]+)*$/, 'comma-separated subnet ids').optional(),
  PGOPS_ECS_SECURITY_GROUPS: z.string().regex(/^sg-[0-9a-z]+(,sg-[0-9a-z]+)*$/, 'comma-separated security group ids').optional(),
  // The backup function the migrate function invokes for migrate.backupBefore (set by the CDK stack).
  PGOPS_BACKUP_FUNCTION: z.string().regex(/^(arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:)?[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9_$-]+)?$/, 'must be a Lambda function name or ARN').optional(),
  POWERTOOLS_TRACE_ENABLED: z.string().regex(/^(true|false)$/i, 'must be true or false').optional(),
  // Set by the Fargate task definition: where the CLI publishes job metrics, and each job's deadline.
  PGOPS_METRICS: z.enum(['cloudwatch', 'off']).optional(),
  PGOPS_TASK_DEADLINES: z.string().refine(isDeadlineMap, 'must be JSON {"<job>": seconds}, each a positive number').optional(),
} satisfies Record<EnvName, z.ZodType>;

function isDeadlineMap(raw: string): boolean {
  try {
    const v: unknown = JSON.parse(raw);
    return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((s) => typeof s === 'number' && s > 0);
  } catch {
    return false;
  }
}

const envSchema = z.object(envShape);

const FLAG_NAMES: Record<string, string> = {
  DATABASE_URL: '--database-url / DATABASE_URL',
  PGOPS_STORAGE: '--storage / PGOPS_STORAGE',
  PGOPS_MIGRATIONS_DIR: '--dir / PGOPS_MIGRATIONS_DIR',
  PGOPS_CONFIG: '--config / PGOPS_CONFIG',
  PGOPS_DATABASE_ID: '--database-id / PGOPS_DATABASE_ID',
};

function formatIssues(error: z.ZodError, prefix = '', names: Record<string, string> = {}): string[] {
  return error.issues.map((issue) => {
    const path = issue.path.map(String).join('.');
    const shown = names[path] ?? (prefix + path || '(root)');
    return `${shown}: ${issue.message}`;
  });
}

/** Parse and validate a config file body. Exported for tests and the CDK app. */
export function parseFileConfig(raw: unknown, source = 'config'): { config?: FileConfig; issues: string[] } {
  const parsed = fileConfigSchema.safeParse(raw ?? {});
  if (parsed.success) return { config: parsed.data, issues: [] };
  return { issues: formatIssues(parsed.error, `${source}: `) };
}

type EnvValues = z.infer<typeof envSchema>;

/** Flags override the environment; empty variables are treated as unset (a common shell and CloudFormation artefact). */
function mergeFlags(flags: Flags, env: NodeJS.ProcessEnv): Record<string, string | undefined> {
  const merged: Record<string, string | undefined> = { ...env };
  if (flags.databaseUrl !== undefined) merged.DATABASE_URL = flags.databaseUrl;
  if (flags.storage !== undefined) merged.PGOPS_STORAGE = flags.storage;
  if (flags.dir !== undefined) merged.PGOPS_MIGRATIONS_DIR = flags.dir;
  if (flags.config !== undefined) merged.PGOPS_CONFIG = flags.config;
  if (flags.databaseId !== undefined) merged.PGOPS_DATABASE_ID = flags.databaseId;
  for (const [k, v] of Object.entries(merged)) if (v === '') delete merged[k];
  return merged;
}

/** Mask secrets before anything could echo them. */
function registerSecrets(merged: Record<string, string | undefined>): void {
  registerSecret(merged.PGOPS_SLACK_WEBHOOK_URL);
  if (merged.DATABASE_URL) {
    let password: string | undefined;
    try { password = new URL(merged.DATABASE_URL).password; } catch { /* invalid URL: reported by the schema */ }
    registerSecret(password);
    // Not valid percent-encoding (`50%off`): the raw form is the secret, and is reported by urlIssues.
    try { registerSecret(password === undefined ? undefined : decodeURIComponent(password)); } catch { /* see urlIssues */ }
  }
  if (merged.PGOPS_DATABASE_SECRET_JSON) {
    try { registerSecret((JSON.parse(merged.PGOPS_DATABASE_SECRET_JSON) as { password?: string }).password); } catch { /* reported when used */ }
  }
}

/**
 * The parts of a database URL that are decoded (user, password, host, database) must be valid
 * percent-encoding; the issue names the part, never its value.
 */
function urlIssues(merged: Record<string, string | undefined>): string[] {
  const raw = merged.DATABASE_URL;
  if (!raw) return [];
  let u: URL;
  try { u = new URL(raw); } catch { return []; /* reported by the schema */ }
  const parts: Array<[string, string]> = [['user name', u.username], ['password', u.password], ['host', u.hostname], ['database name', u.pathname.replace(/^\//, '')]];
  return parts.flatMap(([what, value]) => {
    try { decodeURIComponent(value); return []; } catch { return [`${FLAG_NAMES.DATABASE_URL}: the ${what} is not valid percent-encoding: encode % as %25`]; }
  });
}

/** Settings that exclude each other. */
function conflicts(merged: Record<string, string | undefined>): string[] {
  const issues: string[] = [];
  const sources = [ENV.databaseUrl, ENV.databaseSecretId, ENV.databaseSecretJson].filter((k) => merged[k] !== undefined);
  if (sources.length > 1) issues.push(`${sources.join(' and ')} are ${sources.length === 2 ? 'both' : 'all'} set: use one`);
  const endpoint = [ENV.databaseHost, ENV.databasePort, ENV.databaseName].filter((k) => merged[k] !== undefined);
  if (merged.DATABASE_URL !== undefined && endpoint.length > 0) {
    issues.push(`${endpoint.join(', ')} complete${endpoint.length === 1 ? 's' : ''} a Secrets Manager secret; --database-url / DATABASE_URL carries its own host, port and database: use one`);
  }
  if (merged.PGOPS_CONFIG && merged.PGOPS_CONFIG_JSON) issues.push('--config / PGOPS_CONFIG and PGOPS_CONFIG_JSON are both set: use one');
  return issues;
}

/** The JSON text of a config file (or PGOPS_CONFIG_JSON), validated; `unreadable` says why there is no text. */
function parseConfigText(read: () => string, source: string, unreadable: (err: unknown) => string): { config?: FileConfig; issues: string[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(read());
  } catch (err) {
    return { issues: [unreadable(err)] };
  }
  return parseFileConfig(raw, source);
}

function describeReadError(configFile: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  const why = code === 'ENOENT' ? 'not found' : err instanceof SyntaxError ? `not valid JSON (${err.message})` : (err as Error).message;
  return `config file ${configFile}: ${why}`;
}

/** The config from --config / PGOPS_CONFIG, else PGOPS_CONFIG_JSON, else the defaults. */
function loadFileConfig(merged: Record<string, string | undefined>, cwd: string): { config?: FileConfig; configFile?: string; issues: string[] } {
  const configFile = merged.PGOPS_CONFIG ? resolve(cwd, merged.PGOPS_CONFIG) : undefined;
  if (configFile) {
    return { configFile, ...parseConfigText(() => readFileSync(configFile, 'utf8'), 'config', (err) => describeReadError(configFile, err)) };
  }
  const inline = merged.PGOPS_CONFIG_JSON;
  if (inline) {
    return parseConfigText(() => inline, 'PGOPS_CONFIG_JSON', (err) => `PGOPS_CONFIG_JSON: not valid JSON (${(err as Error).message})`);
  }
  return { config: fileConfigSchema.parse({}), issues: [] };
}

/** The Fargate long-job task: all of its variables or none. */
function fargateSettings(e: EnvValues): FargateSettings | undefined {
  const { PGOPS_ECS_CLUSTER: cluster, PGOPS_ECS_TASK_DEFINITION: taskDefinition, PGOPS_ECS_CONTAINER_NAME: containerName, PGOPS_ECS_SUBNETS: subnets } = e;
  if (cluster !== undefined && taskDefinition !== undefined && containerName !== undefined && subnets !== undefined) {
    return { cluster, taskDefinition, containerName, subnets: subnets.split(','), securityGroups: e.PGOPS_ECS_SECURITY_GROUPS?.split(',') ?? [] };
  }
  if ([cluster, taskDefinition, containerName, subnets].some((v) => v !== undefined)) {
    throw new ConfigError('invalid configuration', ['PGOPS_ECS_CLUSTER, PGOPS_ECS_TASK_DEFINITION, PGOPS_ECS_CONTAINER_NAME and PGOPS_ECS_SUBNETS go together: set all or none']);
  }
  return undefined;
}

function settingsFrom(e: EnvValues, config: FileConfig, configFile: string | undefined, cwd: string): Settings {
  const dir = e.PGOPS_MIGRATIONS_DIR ?? 'migrations';
  return {
    databaseUrl: e.DATABASE_URL,
    databaseSecretId: e.PGOPS_DATABASE_SECRET_ID,
    databaseSecretJson: e.PGOPS_DATABASE_SECRET_JSON,
    databaseHost: e.PGOPS_DATABASE_HOST,
    databasePort: e.PGOPS_DATABASE_PORT === undefined ? undefined : Number(e.PGOPS_DATABASE_PORT),
    databaseName: e.PGOPS_DATABASE_NAME,
    sslMode: e.PGOPS_DATABASE_SSLMODE,
    caFile: e.PGOPS_DATABASE_CA_FILE,
    databaseId: e.PGOPS_DATABASE_ID,
    pgBinDir: e.PGOPS_PG_BINDIR,
    storage: e.PGOPS_STORAGE,
    s3Endpoint: e.PGOPS_S3_ENDPOINT,
    migrationsDir: isAbsolute(dir) ? dir : resolve(cwd, dir),
    snsTopicArn: e.PGOPS_SNS_TOPIC_ARN,
    slackWebhookUrl: e.PGOPS_SLACK_WEBHOOK_URL,
    slackWebhookSecretId: e.PGOPS_SLACK_WEBHOOK_SECRET_ID,
    logLevel: e.PGOPS_LOG_LEVEL ?? 'info',
    tracing: e.POWERTOOLS_TRACE_ENABLED?.toLowerCase() !== 'false',
    fargate: fargateSettings(e),
    backupFunction: e.PGOPS_BACKUP_FUNCTION,
    region: e.AWS_REGION,
    metrics: e.PGOPS_METRICS,
    taskDeadlines: e.PGOPS_TASK_DEADLINES === undefined ? undefined : JSON.parse(e.PGOPS_TASK_DEADLINES) as Record<string, number>,
    config: e.PGOPS_ENVIRONMENT ? { ...config, environment: e.PGOPS_ENVIRONMENT } : config,
    configFile,
  };
}

/**
 * Build the settings from flags, the environment and the config file, validating all three.
 * Throws a ConfigError naming every bad field.
 */
export function loadSettings(flags: Flags = {}, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Settings {
  const merged = mergeFlags(flags, env);
  registerSecrets(merged);
  const envParsed = envSchema.safeParse(merged);
  // Never echo the value: a malformed URL may still contain a password.
  const issues = envParsed.success ? [] : formatIssues(envParsed.error, '', FLAG_NAMES);
  issues.push(...urlIssues(merged), ...conflicts(merged));
  const file = loadFileConfig(merged, cwd);
  issues.push(...file.issues);
  if (issues.length > 0 || !envParsed.success || !file.config) throw new ConfigError('invalid configuration', issues);
  return settingsFrom(envParsed.data, file.config, file.configFile, cwd);
}

/**
 * What a child tool (pg_dump, pg_restore) inherits: this process's environment without libpq's
 * PG* variables (a stray PGSERVICE or PGOPTIONS must not redirect the job) and without pgops'
 * own settings and secrets, which the tool does not need.
 */
export function childEnvironment(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) {
    if (k.startsWith('PG') || k === 'DATABASE_URL') continue;
    out[k] = v;
  }
  return out;
}

/** Settings with defaults only: for tests and embedded runs. */
export function defaultFileConfig(overrides: unknown = {}): FileConfig {
  const r = parseFileConfig(overrides);
  if (!r.config) throw new ConfigError('invalid configuration', r.issues);
  return r.config;
}
