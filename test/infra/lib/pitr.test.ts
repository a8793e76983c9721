// Point-in-time recovery in the stacks (opt-in per database, `pitr`): configuration, the WAL
// receiver service (stream), the base-backup schedule and task, the host policy (archive-command),
// least privilege on the new prefixes, the alarms, cdk-nag, and a database without `pitr` built
// exactly as before. Synthesized without bundling.
import { Validations } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENV, loadSettings, type Settings } from '../../../functions/core/config.ts';
import { DEFAULT_BASE_BACKUP_SCHEDULE, parsePgopsConfig, PgopsConfigError, pitrSettingsFor, runtimeConfigFor } from '../../../lib/config.ts';
import { TASK_ENTRYPOINT } from '../../../lib/constructs/job-image.ts';
import {
  actionsOf, flat, propertiesOf, resources, roleStatements, sampleConfig, synth,
  type AlarmProperties, type ContainerDefinition, type Resources, type ScheduleProperties, type Statement, type Synth,
} from '../helpers.ts';

const BUCKET = 'arn:<AWS::Partition>:s3:::pgops-staging-backups-<AWS::AccountId>-<AWS::Region>';
const prefixOf = (db: string) => `${BUCKET}/pgops/${db}/`;

function issuesOf(raw: unknown): string[] {
  try {
    parsePgopsConfig(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(PgopsConfigError);
    return (err as PgopsConfigError).issues;
  }
  throw new Error('the configuration was accepted');
}

/** The sample (database "auth", no pitr) plus "billing" streaming its WAL and "ledger" archiving through archive_command. */
function pitrConfig() {
  const raw = sampleConfig();
  const db = (id: string, suffix: string) => ({
    id,
    secretArn: `arn:aws:secretsmanager:eu-west-1:123456789012:secret:pgops/staging/${id}-${suffix}`,
    vpcId: 'vpc-0aaaaaaaaaaaaaaaa',
    subnetIds: ['subnet-0aaaaaaaaaaaaaaaa'],
    securityGroupIds: ['sg-0aaaaaaaaaaaaaaaa'],
  });
  raw.databases.push(
    { ...db('billing', 'XyZ123'), pitr: { walArchiving: 'stream' } },
    { ...db('ledger', 'AbC456'), pitr: { walArchiving: 'archive-command', baseBackupSchedule: 'cron(30 0 ? * MON-FRI *)', maxWalArchiveAgeMinutes: 30 } },
  );
  return raw;
}

describe('configuration', () => {
  it('fills the defaults: slot pgops_<id>, a daily base backup at 01:00, the health threshold', () => {
    const raw = sampleConfig();
    raw.databases[0]!.id = 'auth-db';
    raw.databases[0]!.pitr = { walArchiving: 'stream' };
    const c = parsePgopsConfig(raw);
    expect(pitrSettingsFor(c, c.databases[0]!)).toEqual({ walArchiving: 'stream', slot: 'pgops_auth_db', baseBackupSchedule: 'cron(0 1 * * ? *)', maxWalArchiveAgeMinutes: 15 });
    expect(DEFAULT_BASE_BACKUP_SCHEDULE).toBe('cron(0 1 * * ? *)');
  });

  it('keeps the given slot, schedule and threshold; archive-command has no slot', () => {
    const raw = sampleConfig();
    raw.databases[0]!.pitr = { walArchiving: 'stream', slot: 'auth_archive', baseBackupSchedule: 'rate(12 hours)', maxWalArchiveAgeMinutes: 5 };
    const c = parsePgopsConfig(raw);
    expect(pitrSettingsFor(c, c.databases[0]!)).toEqual({ walArchiving: 'stream', slot: 'auth_archive', baseBackupSchedule: 'rate(12 hours)', maxWalArchiveAgeMinutes: 5 });
    const ledger = parsePgopsConfig(pitrConfig());
    expect(pitrSettingsFor(ledger, ledger.databases[2]!)).toEqual({ walArchiving: 'archive-command', baseBackupSchedule: 'cron(30 0 ? * MON-FRI *)', maxWalArchiveAgeMinutes: 30 });
    expect(pitrSettingsFor(ledger, ledger.databases[0]!)).toBeUndefined();
  });

  it('names every bad pitr field', () => {
    const raw = sampleConfig();
    raw.databases[0]!.pitr = { walArchiving: 'wal-g', slot: 'Auth-Slot', baseBackupSchedule: 'weekly', maxWalArchiveAgeMinutes: 0, retention: 3 };
    expect(issuesOf(raw).sort()).toEqual([
      expect.stringMatching(/^pgops\.databases\[0\]\.pitr\.baseBackupSchedule: must be cron\(/),
      expect.stringMatching(/^pgops\.databases\[0\]\.pitr\.maxWalArchiveAgeMinutes: /),
      'pgops.databases[0].pitr.retention: unknown field',
      expect.stringMatching(/^pgops\.databases\[0\]\.pitr\.slot: must be a replication slot name/),
      'pgops.databases[0].pitr.walArchiving: must be "stream" (a Fargate receiver) or "archive-command" (pgops wal push on the database host)',
    ]);
  });

  it('requires walArchiving, and refuses a slot in archive-command mode', () => {
    const raw = sampleConfig();
    raw.databases[0]!.pitr = {};
    expect(issuesOf(raw)).toEqual([expect.stringMatching(/^pgops\.databases\[0\]\.pitr\.walArchiving: /)]);
    raw.databases[0]!.pitr = { walArchiving: 'archive-command', slot: 'pgops_auth' };
    expect(issuesOf(raw)).toEqual(['pgops.databases[0].pitr.slot: only for walArchiving "stream" (archive_command uses no replication slot)']);
  });

  it('gives the database\'s threshold to its health check, and only to it', () => {
    const c = parsePgopsConfig(pitrConfig());
    expect(runtimeConfigFor(c, c.databases[2]!).health).toEqual({ ...c.health, maxWalArchiveAgeMinutes: 30 });
    expect(runtimeConfigFor(c, c.databases[1]!).health).toBe(c.health);
    expect(runtimeConfigFor(c, c.databases[0]!).health).toBe(c.health);
  });
});

describe('PITR resources', () => {
  let s: Synth;
  let plain: Synth;
  beforeAll(() => {
    s = synth({ pgops: pitrConfig(), bundle: false });
    // The committed sample: "auth" alone, without pitr.
    plain = synth({ bundle: false });
  });
  afterAll(() => {
    s?.dispose();
    plain?.dispose();
  });

  const DATABASES = ['auth', 'billing', 'ledger'];
  /** Every template: the ops stack and the three database stacks (their logical ids do not collide). */
  const templates = () => [s.opsTemplate, ...DATABASES.map((d) => s.dbTemplate(d))];
  const all = (type?: string): Resources => Object.assign({}, ...templates().map((t) => resources(t, type))) as Resources;
  /** A database's role (Db<database>...) is in that database's stack. */
  const roles = (role: string) => roleStatements(s.dbTemplate(DATABASES.find((d) => role.startsWith(`Db${d}`))!), role);
  function only(type: string, prefix: string): [string, Resources[string]] {
    const found = Object.entries(all(type)).filter(([id]) => id.startsWith(prefix));
    expect(found.map(([id]) => id), `exactly one ${type} ${prefix}*`).toHaveLength(1);
    return found[0]!;
  }
  const container = (prefix: string) => (only('AWS::ECS::TaskDefinition', prefix)[1].Properties!.ContainerDefinitions as Array<ContainerDefinition & Record<string, unknown>>)[0]!;
  const schedule = (name: string) => templates().flatMap((t) => propertiesOf<ScheduleProperties>(t, 'AWS::Scheduler::Schedule')).find((x) => x.Name === name)!;
  const alarm = (name: string) => templates().flatMap((t) => propertiesOf<AlarmProperties & Record<string, unknown>>(t, 'AWS::CloudWatch::Alarm')).find((x) => x.AlarmName === name);
  function s3Statements(role: string) {
    return roles(role)
      .filter((st) => actionsOf(st).some((a) => a.startsWith('s3:')))
      .map((st) => ({ actions: actionsOf(st).sort(), resource: flat(st.Resource) }));
  }

  /** The runtime's own loader on a container's variables (tokens replaced by plausible values). */
  function loadContainer(c: ContainerDefinition): Settings {
    const env = Object.fromEntries(c.Environment.map((e) => [e.Name, flat(e.Value)
      .replace(/<AWS::AccountId>/g, '123456789012').replace(/<AWS::Region>/g, 'eu-west-1')
      .replace(/<AlertsTopic[0-9A-F]{8}>/g, 'arn:aws:sns:eu-west-1:123456789012:pgops-staging-alerts')]));
    for (const v of Object.values(env)) expect(v).not.toMatch(/<[A-Za-z:.0-9]+>/);
    return loadSettings({}, { ...env, [ENV.databaseSecretJson]: '{"host":"h","port":5432,"username":"u","password":"p","dbname":"d"}' }, '/tmp');
  }

  describe('stream mode: the WAL receiver service', () => {
    it('keeps exactly one receiver: desired count 1, stop before start, circuit breaker with rollback', () => {
      const [, service] = only('AWS::ECS::Service', 'DbbillingPitrWalReceiverService');
      expect(service.Properties).toMatchObject({
        ServiceName: 'pgops-staging-billing-wal-receiver',
        LaunchType: 'FARGATE',
        DesiredCount: 1,
        DeploymentConfiguration: { MinimumHealthyPercent: 0, MaximumPercent: 100, DeploymentCircuitBreaker: { Enable: true, Rollback: true } },
        AvailabilityZoneRebalancing: 'DISABLED',
        NetworkConfiguration: { AwsvpcConfiguration: { AssignPublicIp: 'DISABLED', Subnets: ['subnet-0aaaaaaaaaaaaaaaa'], SecurityGroups: ['sg-0aaaaaaaaaaaaaaaa'] } },
      });
      expect(flat(service.Properties!.Cluster)).toBe('<Cluster.Arn>');
      expect(flat(service.Properties!.TaskDefinition)).toMatch(/^<DbbillingPitrWalReceiverTaskTaskDefinition[0-9A-F]{8}>$/);
      // Its first task must find the roles' policies (image pull, secret, storage) in place.
      const dependsOn = (service as { DependsOn?: string[] }).DependsOn ?? [];
      expect(dependsOn).toEqual(expect.arrayContaining([expect.stringMatching(/^DbbillingPitrWalReceiverTaskTaskRoleDefaultPolicy/), expect.stringMatching(/^DbbillingPitrWalReceiverTaskExecutionRoleDefaultPolicy/)]));
      // One service in the whole stack: only billing streams.
      expect(Object.keys(all('AWS::ECS::Service'))).toHaveLength(1);
    });

    it('runs `wal receive` through the slot, with the secret injected by ECS, time to upload on SIGTERM, and its own log group', () => {
      const [, td] = only('AWS::ECS::TaskDefinition', 'DbbillingPitrWalReceiverTask');
      expect(td.Properties).toMatchObject({ Family: 'pgops-staging-billing-wal-receiver', Cpu: '512', Memory: '1024', RequiresCompatibilities: ['FARGATE'], RuntimePlatform: { CpuArchitecture: 'ARM64' } });
      expect(td.Properties!.EphemeralStorage).toBeUndefined();
      const c = container('DbbillingPitrWalReceiverTask');
      expect(c.Name).toBe('pgops');
      expect(c.EntryPoint).toEqual(TASK_ENTRYPOINT);
      expect(c.Command).toEqual(['wal', 'receive', '--slot', 'pgops_billing', '--create-slot']);
      expect(c.StopTimeout).toBe(120);
      expect(c.Secrets.map((x) => [x.Name, x.ValueFrom])).toEqual([[ENV.databaseSecretJson, 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:pgops/staging/billing-XyZ123']]);
      const logGroup = (c.LogConfiguration as unknown as { Options: Record<string, { Ref: string }> }).Options['awslogs-group']!.Ref;
      expect(all('AWS::Logs::LogGroup')[logGroup]?.Properties?.RetentionInDays).toBe(90);
      expect(logGroup).toMatch(/^DbbillingPitrWalReceiverTaskLogs/);
      const settings = loadContainer(c);
      expect(settings).toMatchObject({ databaseId: 'billing', storage: 's3://pgops-staging-backups-123456789012-eu-west-1/pgops' });
      expect(settings.databaseSecretId).toBeUndefined();
      expect(settings.config.physical).toEqual({ compression: 'gzip', archiveWaitSeconds: 120 });
    });

    it('archives WAL under its wal/ prefix only', () => {
      expect(s3Statements('DbbillingPitrWalReceiverTaskTaskRole')).toEqual([
        { actions: ['s3:ListBucket'], resource: BUCKET },
        { actions: ['s3:AbortMultipartUpload', 's3:DeleteObject', 's3:GetObject', 's3:PutObject'], resource: `${prefixOf('billing')}wal/*` },
      ]);
      const st = roles('DbbillingPitrWalReceiverTaskTaskRole');
      expect([...new Set(st.flatMap(actionsOf))].sort()).toEqual(['kms:Decrypt', 'kms:GenerateDataKey', 's3:AbortMultipartUpload', 's3:DeleteObject', 's3:GetObject', 's3:ListBucket', 's3:PutObject', 'sns:Publish']);
    });

    it('alarms when no receiver task runs, from the free AWS/ECS metrics, silence breaching', () => {
      const a = alarm('pgops-staging-billing-wal-receiver-not-running')!;
      expect(a).toMatchObject({
        Namespace: 'AWS/ECS',
        MetricName: 'CPUUtilization',
        Statistic: 'SampleCount',
        Period: 300,
        EvaluationPeriods: 2,
        DatapointsToAlarm: 2,
        Threshold: 1,
        ComparisonOperator: 'LessThanThreshold',
        TreatMissingData: 'breaching',
      });
      expect((a.Dimensions as Array<{ Name: string; Value: unknown }>).map((d) => [d.Name, flat(d.Value)])).toEqual([['ClusterName', '<Cluster>'], ['ServiceName', 'pgops-staging-billing-wal-receiver']]);
      expect(a.AlarmActions.map(flat)).toEqual([expect.stringMatching(/^<AlertsTopic/)]);
      expect((a.OKActions as unknown[]).map(flat)).toEqual([expect.stringMatching(/^<AlertsTopic/)]);
      expect(flat(a.AlarmDescription)).toContain('pgops_billing');
      expect(flat(a.AlarmDescription).length).toBeLessThanOrEqual(1024);
    });

    it('exports the receiver service\'s name and the task pitr runs on', () => {
      s.dbTemplate('billing').hasOutput('WalReceiverServiceBilling', { Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('^DbbillingPitrWalReceiverService'), 'Name'] } });
      s.dbTemplate('billing').hasOutput('PitrTaskDefinitionArnBilling', { Value: { Ref: Match.stringLikeRegexp('^DbbillingTaskTaskDefinition') } });
    });
  });

  describe('base backups', () => {
    it('runs `basebackup` on its own task on schedule (default daily at 01:00, or the database\'s own), with retries and the DLQ', () => {
      for (const [db, expression] of [['billing', 'cron(0 1 * * ? *)'], ['ledger', 'cron(30 0 ? * MON-FRI *)']] as const) {
        const x = schedule(`${db}-basebackup`);
        expect(x.ScheduleExpression, db).toBe(expression);
        expect(flat(x.Target.Arn), db).toBe('<Cluster.Arn>');
        expect(JSON.parse(x.Target.Input), db).toEqual({ containerOverrides: [{ name: 'pgops', command: ['basebackup'] }] });
        expect(x.Target.EcsParameters, db).toMatchObject({
          LaunchType: 'FARGATE',
          TaskCount: 1,
          NetworkConfiguration: { AwsvpcConfiguration: { AssignPublicIp: 'DISABLED', Subnets: ['subnet-0aaaaaaaaaaaaaaaa'], SecurityGroups: ['sg-0aaaaaaaaaaaaaaaa'] } },
        });
        expect(flat(x.Target.EcsParameters!.TaskDefinitionArn), db).toMatch(new RegExp(`^<Db${db}PitrBaseBackupTaskTaskDefinition[0-9A-F]{8}>$`));
        expect(x.Target.RetryPolicy.MaximumRetryAttempts, db).toBeGreaterThan(0);
        expect(flat(x.Target.DeadLetterConfig.Arn), db).toMatch(/^<ScheduleDeadLetters[0-9A-F]{8}\.Arn>$/);
        expect(flat(x.Target.RoleArn), db).toMatch(new RegExp(`^<Db${db}SchedulesRole`));
      }
    });

    it('lets the scheduler run exactly that task on the cluster and pass its two roles', () => {
      const st = roles('DbbillingSchedulesRole');
      const run = st.find((x) => x.Sid === 'RunBaseBackupTask')!;
      expect(run.Action).toBe('ecs:RunTask');
      expect(flat(run.Resource)).toMatch(/^<DbbillingPitrBaseBackupTaskTaskDefinition[0-9A-F]{8}>$/);
      expect(flat((run.Condition as { ArnEquals: Record<string, unknown> }).ArnEquals['ecs:cluster'])).toBe('<Cluster.Arn>');
      const pass = st.find((x) => x.Sid === 'PassBaseBackupTaskRoles')!;
      expect((pass.Resource as unknown[]).map(flat).sort()).toEqual([expect.stringMatching(/^<DbbillingPitrBaseBackupTaskExecutionRole/), expect.stringMatching(/^<DbbillingPitrBaseBackupTaskTaskRole/)]);
      expect(pass.Condition).toEqual({ StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } });
      // The restore test's statements are still there, apart.
      expect(flat(st.find((x) => x.Sid === 'RunLongJobTask')!.Resource)).toMatch(/^<DbbillingTaskTaskDefinition/);
    });

    it('is a task with the secret injected by ECS and the physical settings', () => {
      const [, td] = only('AWS::ECS::TaskDefinition', 'DbbillingPitrBaseBackupTask');
      expect(td.Properties).toMatchObject({ Family: 'pgops-staging-billing-basebackup', Cpu: '1024', Memory: '4096' });
      expect(td.Properties!.EphemeralStorage).toBeUndefined();
      const c = container('DbbillingPitrBaseBackupTask');
      expect(c.EntryPoint).toEqual(TASK_ENTRYPOINT);
      expect(c.Command).toEqual(['basebackup']);
      expect(c.Secrets.map((x) => x.Name)).toEqual([ENV.databaseSecretJson]);
      expect(loadContainer(c).config.physical).toEqual({ compression: 'gzip', archiveWaitSeconds: 120 });
    });

    it('writes under its physical/ prefix and lists the bucket (the WAL it waits for), nothing else', () => {
      expect(s3Statements('DbbillingPitrBaseBackupTaskTaskRole')).toEqual([
        { actions: ['s3:ListBucket'], resource: BUCKET },
        { actions: ['s3:AbortMultipartUpload', 's3:DeleteObject', 's3:PutObject'], resource: `${prefixOf('billing')}physical/*` },
      ]);
    });

    it('reports a failed base-backup (or receiver) task like every task on the cluster', () => {
      // One rule for the cluster, whatever the task definition: the base-backup and receiver tasks run there.
      const rules = Object.values(all('AWS::Events::Rule')).filter((r) => JSON.stringify(r.Properties!.EventPattern).includes('ECS Task State Change'));
      expect(rules).toHaveLength(1);
      const detail = (rules[0]!.Properties!.EventPattern as { detail: Record<string, unknown> }).detail;
      expect(detail).toEqual({
        clusterArn: [{ 'Fn::GetAtt': ['Cluster', 'Arn'] }],
        lastStatus: ['STOPPED'],
        $or: [{ containers: { exitCode: [{ 'anything-but': 0 }] } }, { stopCode: ['TaskFailedToStart'] }],
      });
    });
  });

  describe('recovery and retention', () => {
    it('lets the long-job task (pgops pitr) read base backups and WAL, besides its logical backups', () => {
      for (const db of ['billing', 'ledger']) {
        expect(s3Statements(`Db${db}TaskTaskRole`), db).toEqual([
          { actions: ['s3:ListBucket'], resource: BUCKET },
          { actions: ['s3:GetObject'], resource: `${prefixOf(db)}logical/*` },
          { actions: ['s3:AbortMultipartUpload', 's3:DeleteObject', 's3:PutObject'], resource: `${prefixOf(db)}logical/*` },
          { actions: ['s3:GetObject'], resource: `${prefixOf(db)}physical/*` },
          { actions: ['s3:GetObject'], resource: `${prefixOf(db)}wal/*` },
        ]);
      }
    });

    it('lets cleanup expire base backups and the WAL no kept backup needs', () => {
      const pitrRights = s3Statements('DbledgerCleanupRole').filter((x) => x.resource !== BUCKET && !x.resource.endsWith('/logical/*'));
      expect(pitrRights).toEqual([
        { actions: ['s3:GetObject'], resource: `${prefixOf('ledger')}physical/*` },
        { actions: ['s3:AbortMultipartUpload', 's3:DeleteObject'], resource: `${prefixOf('ledger')}physical/*` },
        { actions: ['s3:GetObject'], resource: `${prefixOf('ledger')}wal/*` },
        { actions: ['s3:DeleteObject'], resource: `${prefixOf('ledger')}wal/*` },
      ]);
    });

    it('never reaches another database\'s prefix', () => {
      for (const db of ['billing', 'ledger']) {
        for (const role of ['TaskTaskRole', 'CleanupRole', 'PitrBaseBackupTaskTaskRole']) {
          for (const x of s3Statements(`Db${db}${role}`)) {
            if (x.resource !== BUCKET) expect(x.resource.startsWith(prefixOf(db)), `${db} ${role} ${x.resource}`).toBe(true);
          }
        }
      }
    });
  });

  describe('archive-command mode: the host policy', () => {
    it('is a managed policy for the host: list, put and get under wal/, the bucket key through S3; attached to nothing here', () => {
      const [id, policy] = only('AWS::IAM::ManagedPolicy', 'DbledgerPitrWalArchiveHostPolicy');
      const p = policy.Properties!;
      expect(p.ManagedPolicyName).toBe('pgops-staging-ledger-wal-archive');
      expect(p.Roles ?? p.Users ?? p.Groups).toBeUndefined();
      const statements = (p.PolicyDocument as { Statement: Statement[] }).Statement;
      expect(statements.map((st) => ({ sid: st.Sid, actions: actionsOf(st).sort(), resource: flat(st.Resource) }))).toEqual([
        { sid: 'ListOwnPrefix', actions: ['s3:ListBucket'], resource: BUCKET },
        { sid: 'EncryptAndDecryptBackups', actions: ['kms:Decrypt', 'kms:GenerateDataKey'], resource: expect.stringMatching(/BackupKey/) },
        { sid: 'ArchiveWal', actions: ['s3:GetObject', 's3:PutObject'], resource: `${prefixOf('ledger')}wal/*` },
      ]);
      expect(statements[0]!.Condition).toEqual({ StringLike: { 's3:prefix': ['pgops/ledger/*'] } });
      expect(flat((statements[1]!.Condition as { StringEquals: Record<string, unknown> }).StringEquals['kms:ViaService'])).toBe('s3.<AWS::Region>.amazonaws.com');
      s.dbTemplate('ledger').hasOutput('WalArchivePolicyArnLedger', { Value: { Ref: id } });
      // The only managed policy: stream mode needs none.
      expect(Object.keys(all('AWS::IAM::ManagedPolicy'))).toEqual([id]);
    });

    it('deploys no receiver for it', () => {
      expect(Object.keys(all()).filter((id) => id.startsWith('DbledgerPitrWalReceiver'))).toEqual([]);
      expect(alarm('pgops-staging-ledger-wal-receiver-not-running')).toBeUndefined();
      expect(s.dbTemplate('ledger').findOutputs('WalReceiverServiceLedger')).toEqual({});
    });
  });

  describe('the WAL archive age alarm', () => {
    it('fires above the database\'s threshold (health default 15, or its own), silence breaching, over the health window', () => {
      for (const [db, threshold] of [['billing', 15], ['ledger', 30]] as const) {
        const a = alarm(`pgops-staging-${db}-wal-archive-age`)!;
        expect(a, db).toMatchObject({
          Namespace: 'pgops',
          MetricName: 'WalArchiveAgeMinutes',
          Dimensions: [{ Name: 'database', Value: db }],
          Statistic: 'Maximum',
          Period: 3600,
          EvaluationPeriods: 2,
          DatapointsToAlarm: 2,
          Threshold: threshold,
          ComparisonOperator: 'GreaterThanThreshold',
          TreatMissingData: 'breaching',
        });
        expect(a.AlarmActions.map(flat), db).toEqual([expect.stringMatching(/^<AlertsTopic/)]);
        expect(flat(a.AlarmDescription).length, db).toBeLessThanOrEqual(1024);
      }
      expect(flat(alarm('pgops-staging-billing-wal-archive-age')!.AlarmDescription)).toContain('pgops-staging-billing-wal-receiver');
      expect(flat(alarm('pgops-staging-ledger-wal-archive-age')!.AlarmDescription)).toContain('pg_stat_archiver');
    });
  });

  describe('a database without pitr', () => {
    it('is synthesized exactly as without any PITR database in the app', () => {
      // The image's asset hash aside: it follows the files under functions/ and bin/, not the configuration.
      const of = (t: Synth, db: string) => JSON.parse(JSON.stringify(Object.fromEntries(Object.entries(resources(t.dbTemplate(db))).filter(([id]) => id.startsWith(`Db${db}`))))
        .replace(/:[0-9a-f]{64}"/g, ':<image-hash>"')) as Resources;
      const before = of(plain, 'auth');
      expect(Object.keys(before).length).toBeGreaterThan(20);
      expect(of(s, 'auth')).toEqual(before);
      expect(s.dbTemplate('auth').findOutputs('*')).toEqual(plain.dbTemplate('auth').findOutputs('*'));
    });

    it('gets no PITR resource, schedule, alarm, output or right', () => {
      expect(Object.keys(all()).filter((id) => id.startsWith('DbauthPitr'))).toEqual([]);
      expect(propertiesOf<ScheduleProperties>(s.dbTemplate('auth'), 'AWS::Scheduler::Schedule').map((x) => x.Name).filter((n) => n.startsWith('auth-')).sort())
        .toEqual(['auth-backup', 'auth-cleanup', 'auth-health', 'auth-restore-test']);
      expect(propertiesOf<AlarmProperties>(s.dbTemplate('auth'), 'AWS::CloudWatch::Alarm').map((x) => x.AlarmName).filter((n) => n.includes('-auth-') && n.includes('wal'))).toEqual([]);
      expect(Object.keys(s.dbTemplate('auth').findOutputs('*'))).toEqual(['MigrateFunctionArnAuth']);
      for (const role of ['DbauthTaskTaskRole', 'DbauthCleanupRole']) {
        for (const x of s3Statements(role)) expect(x.resource, role).not.toMatch(/\/(physical|wal)\//);
      }
    });
  });

  describe('cdk-nag', () => {
    it('AwsSolutions: no unacknowledged finding', () => {
      const report = new AwsSolutionsChecks().validateScope(s.app);
      expect(report.violations.map((v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.resourceLogicalId ?? r.constructPath).join(', ')}`)).toEqual([]);
      expect(report.success).toBe(true);
    });

    it('acknowledges the new wildcards one prefix at a time, with a reason', () => {
      const acks = s.app.node.findAll().flatMap((c) => c.node.metadata
        .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
        .flatMap((m) => Object.entries(m.data as Record<string, string>).map(([id, reason]) => ({ path: c.node.path, id, reason }))));
      const pitrAcks = acks.filter((a) => /\/(physical|wal)\/\*\]$/.test(a.id));
      expect(pitrAcks.length).toBeGreaterThan(0);
      for (const a of pitrAcks) {
        expect(a.id, a.path).toMatch(/^Annotation::AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:s3:::pgops-staging-backups-<AWS::AccountId>-<AWS::Region>\/pgops\/(billing|ledger)\/(physical|wal)\/\*\]$/);
        expect(a.reason.length, a.id).toBeGreaterThan(60);
      }
      // The host policy carries its own.
      expect(pitrAcks.some((a) => a.path.endsWith('WalArchiveHostPolicy') && a.id.endsWith('/pgops/ledger/wal/*]'))).toBe(true);
    });
  });
});
