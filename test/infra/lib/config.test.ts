// The cdk.json configuration: validation naming every bad field, one set of resources per
// database, options. Synthesized without bundling (the bundles are tested in stacks.test.ts).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as triggers from 'aws-cdk-lib/triggers';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { SUPPORTED_PG_MAJORS } from '../../../lib/base-image.ts';
import { parsePgopsConfig, PgopsConfigError, runtimeConfigFor } from '../../../lib/config.ts';
import { PROVIDER_FILES } from '../../../lib/constructs/migrate-on-deploy.ts';
import { buildPgopsApp, REPO_ROOT } from '../../../lib/pgops-app.ts';
import { healthAlarmWindow } from '../../../lib/schedule-window.ts';
import { actionsOf, assetDir, cdkJson, flat, propertiesOf, resources, roleStatements, sampleConfig, synth, type DockerImageAssets, type FunctionProperties, type ScheduleProperties, type Synth } from '../helpers.ts';
import { checkedResources } from '../nag-audit.ts';

function issuesOf(raw: unknown): string[] {
  try {
    parsePgopsConfig(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(PgopsConfigError);
    return (err as PgopsConfigError).issues;
  }
  throw new Error('the configuration was accepted');
}

describe('configuration', () => {
  it('accepts the committed sample and fills the defaults', () => {
    const c = parsePgopsConfig(cdkJson().context.pgops);
    expect(c.environment).toBe('staging');
    expect(c.schedules).toEqual({ backup: 'cron(0 2 * * ? *)', health: 'rate(1 hour)', cleanup: 'cron(30 3 * * ? *)', restoreTest: 'cron(0 4 ? * SUN *)', timezone: 'UTC' });
    expect(c.health.maxBackupAgeHours).toBe(26);
    expect(c.health.longRunningQuerySeconds).toBe(300);
    expect(c.backup.inlineMaxBytes).toBe(10 * 1024 ** 3);
    expect(c.pgMajor).toBe(17);
    expect(c.architecture).toBe('arm64');
  });

  it('defaults the schedules when none are given', () => {
    const raw = sampleConfig();
    delete raw.schedules;
    expect(parsePgopsConfig(raw).schedules).toMatchObject({ backup: 'cron(0 2 * * ? *)', health: 'rate(1 hour)', cleanup: 'cron(30 3 * * ? *)' });
  });

  it('names every bad field, at once', () => {
    const raw = sampleConfig();
    raw.databases[0]!.secretArn = 'pgops/auth';
    raw.databases[0]!.subnetIds = [];
    raw.databases[0]!.securityGroupId = 'sg-0123456789abcdef0';
    raw.schedules = { backup: 'every night' };
    raw.retention = { keepLast: -1 };
    raw.health = { maxBackupAgeHours: 26, maxBackupAge: 3 };
    raw.alertEmails = ['on-call'];
    const issues = issuesOf(raw);
    expect(issues).toEqual(expect.arrayContaining([
      expect.stringMatching(/^pgops\.databases\[0\]\.secretArn: must be a complete secretsmanager ARN/),
      expect.stringMatching(/^pgops\.databases\[0\]\.subnetIds: at least one subnet/),
      'pgops.databases[0].securityGroupId: unknown field',
      expect.stringMatching(/^pgops\.schedules\.backup: must be cron\(/),
      expect.stringMatching(/^pgops\.retention\.keepLast: /),
      'pgops.health.maxBackupAge: unknown field',
      expect.stringMatching(/^pgops\.alertEmails\[0\]: must be an e-mail address/),
    ]));
    expect(issues).toHaveLength(7);
  });

  it('names a missing required field and an empty database list', () => {
    expect(issuesOf({ databases: [] })).toEqual([
      expect.stringMatching(/^pgops\.environment: /),
      'pgops.databases: at least one database',
    ]);
    const raw = sampleConfig();
    delete raw.databases[0]!.vpcId;
    expect(issuesOf(raw)).toEqual([expect.stringMatching(/^pgops\.databases\[0\]\.vpcId: /)]);
    expect(() => parsePgopsConfig(undefined)).toThrow(/add a "pgops" object to the "context" of cdk\.json/);
  });

  it('refuses duplicate database ids and an impossible Fargate size', () => {
    const raw = sampleConfig();
    raw.databases.push({ ...raw.databases[0]! });
    raw.fargate = { cpu: 256, memoryMiB: 4096 };
    expect(issuesOf(raw)).toEqual([
      'pgops.databases[1].id: duplicate database id "auth" (also databases[0]; "-" and "_" do not count)',
      'pgops.fargate.memoryMiB: 4096 MiB is not a valid Fargate memory size for cpu 256',
    ]);
  });

  it('accepts only the PostgreSQL majors the image\'s distribution packages, and names them', () => {
    expect(SUPPORTED_PG_MAJORS).toEqual([15, 16, 17]);
    for (const pgMajor of SUPPORTED_PG_MAJORS) expect(parsePgopsConfig({ ...sampleConfig(), pgMajor }).pgMajor).toBe(pgMajor);
    for (const pgMajor of [13, 14, 18, 16.5, '17']) {
      expect(issuesOf({ ...sampleConfig(), pgMajor }), String(pgMajor)).toEqual([
        'pgops.pgMajor: must be one of 15, 16, 17: the PostgreSQL majors Amazon Linux 2023 (the image\'s base) packages',
      ]);
    }
  });

  it('validates cleanup rules with the runtime\'s own schema', () => {
    const raw = sampleConfig();
    raw.databases[0]!.cleanup = { rules: [{ name: 'x', table: 'users; drop table users', timestampColumn: 'created_at', olderThanDays: 1 }] };
    expect(issuesOf(raw)).toEqual([expect.stringMatching(/^pgops\.databases\[0\]\.cleanup\.rules\[0\]\.table: must be a plain identifier/)]);
  });

  it('fails `cdk synth` with exit code 2 and the field named, without a stack trace', () => {
    const raw = sampleConfig();
    raw.databases[0]!.vpcId = 'my-vpc';
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'bin/app.ts'], {
      cwd: REPO_ROOT,
      // How the CDK CLI hands the context to the app.
      env: { ...process.env, CDK_CONTEXT_JSON: JSON.stringify({ ...cdkJson().context, pgops: raw }), CDK_OUTDIR: '/nonexistent' },
      encoding: 'utf8',
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('invalid pgops configuration');
    expect(r.stderr).toMatch(/pgops\.databases\[0\]\.vpcId: must be a VPC id/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('per-database cleanup replaces the shared one in that database\'s settings', () => {
    const raw = sampleConfig();
    raw.databases.push({ ...raw.databases[0]!, id: 'billing', cleanup: { rules: [{ name: 'old invoices drafts', table: 'invoice_drafts', timestampColumn: 'updated_at', olderThanDays: 30 }] } });
    const c = parsePgopsConfig(raw);
    expect(runtimeConfigFor(c, c.databases[0]!).cleanup.rules).toHaveLength(4);
    expect(runtimeConfigFor(c, c.databases[1]!).cleanup.rules.map((r) => r.table)).toEqual(['invoice_drafts']);
    expect(runtimeConfigFor(c, c.databases[1]!).retention).toEqual(c.retention);
  });

  it('sizes the backup-age alarm window to the health schedule', () => {
    expect(healthAlarmWindow('rate(1 hour)')).toMatchObject({ evaluationPeriods: 2 });
    expect(healthAlarmWindow('rate(1 hour)').period.toHours()).toBe(1);
    expect(healthAlarmWindow('rate(15 minutes)').period.toHours()).toBe(1);
    expect(healthAlarmWindow('rate(6 hours)')).toMatchObject({ evaluationPeriods: 1 });
    expect(healthAlarmWindow('rate(6 hours)').period.toHours()).toBe(6);
    expect(healthAlarmWindow('cron(0 8 * * ? *)').period.toHours()).toBe(24);
  });
});

describe('two databases', () => {
  const raw = sampleConfig();
  raw.databases.push({
    id: 'billing',
    secretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:pgops/staging/billing-XyZ123',
    vpcId: 'vpc-0aaaaaaaaaaaaaaaa',
    subnetIds: ['subnet-0aaaaaaaaaaaaaaaa'],
    securityGroupIds: ['sg-0aaaaaaaaaaaaaaaa'],
  });
  raw.migrateOnDeploy = true;
  let s: Synth;
  beforeAll(() => {
    s = synth({ pgops: raw, bundle: false });
  });
  afterAll(() => s?.dispose());

  const both = () => [s.dbTemplate('auth'), s.dbTemplate('billing')];

  it('yields a stack per database, each with its own schedules, payload and functions', () => {
    expect(s.databases.map((d) => d.stackName)).toEqual(['pgops-staging-db-auth', 'pgops-staging-db-billing']);
    expect(propertiesOf<ScheduleProperties>(s.opsTemplate, 'AWS::Scheduler::Schedule')).toEqual([]);
    const schedules = both().flatMap((t) => propertiesOf<ScheduleProperties>(t, 'AWS::Scheduler::Schedule'));
    expect(schedules.map((x) => x.Name).sort()).toEqual([
      'auth-backup', 'auth-cleanup', 'auth-health', 'auth-restore-test',
      'billing-backup', 'billing-cleanup', 'billing-health', 'billing-restore-test',
    ]);
    for (const db of ['auth', 'billing']) {
      const cap = db.charAt(0).toUpperCase() + db.slice(1);
      for (const job of ['backup', 'health', 'cleanup']) {
        const x = schedules.find((y) => y.Name === `${db}-${job}`)!;
        expect(JSON.parse(x.Target.Input)).toEqual({ database: db });
        expect(flat(x.Target.Arn)).toMatch(new RegExp(`^<Db${db}${job.charAt(0).toUpperCase()}${job.slice(1)}Function`));
        expect(flat(x.Target.RoleArn)).toMatch(new RegExp(`^<Db${db}SchedulesRole`));
      }
      s.dbTemplate(db).hasOutput(`MigrateFunctionArn${cap}`, {});
    }
  });

  it('gives each database its own functions, network, task definition, prefix and alarm', () => {
    const fns = both().flatMap((t) => Object.keys(resources(t, 'AWS::Lambda::Function'))).filter((id) => /^Db(auth|billing)/.test(id));
    expect(fns).toHaveLength(8);
    const billing = Object.entries(resources(s.dbTemplate('billing'), 'AWS::Lambda::Function')).find(([id]) => id.startsWith('DbbillingHealthFunction'))![1].Properties as unknown as FunctionProperties;
    expect(billing.VpcConfig).toEqual({ SubnetIds: ['subnet-0aaaaaaaaaaaaaaaa'], SecurityGroupIds: ['sg-0aaaaaaaaaaaaaaaa'] });
    expect(billing.Environment.Variables.PGOPS_DATABASE_ID).toBe('billing');
    expect(both().flatMap((t) => Object.values(resources(t, 'AWS::ECS::TaskDefinition'))).map((t) => t.Properties!.Family).sort()).toEqual(['pgops-staging-auth', 'pgops-staging-billing']);
    const s3 = roleStatements(s.dbTemplate('billing'), 'DbbillingCleanupRole').filter((x) => x.Sid === 'DeleteExpiredBackups');
    expect(flat(s3[0]!.Resource)).toMatch(/\/pgops\/billing\/logical\/\*$/);
    expect(roleStatements(s.dbTemplate('billing'), 'DbbillingCleanupRole').find((x) => x.Sid === 'ReadDatabaseSecret')!.Resource).toBe(raw.databases[1]!.secretArn);
    expect(roleStatements(s.dbTemplate('billing'), 'DbbillingCleanupRole').find((x) => x.Sid === 'ListOwnPrefix')!.Condition).toEqual({ StringLike: { 's3:prefix': ['pgops/billing/*'] } });
    s.dbTemplate('billing').hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: 'pgops-staging-billing-backup-age', Dimensions: [{ Name: 'database', Value: 'billing' }] });
    // One cluster and one topic for all databases, in the ops stack; one image (the same asset in each database's stack).
    expect(Object.keys(resources(s.opsTemplate, 'AWS::ECS::Cluster'))).toHaveLength(1);
    expect(Object.keys(resources(s.opsTemplate, 'AWS::SNS::Topic'))).toHaveLength(1);
    for (const t of both()) expect(Object.keys(resources(t, 'AWS::ECS::Cluster')).length + Object.keys(resources(t, 'AWS::SNS::Topic')).length).toBe(0);
    const images = s.databases.map((d) => Object.keys((JSON.parse(readFileSync(join(s.app.outdir, `${d.artifactId}.assets.json`), 'utf8')) as DockerImageAssets).dockerImages));
    expect(images[0]).toHaveLength(1);
    expect(images[1]).toEqual(images[0]);
  });

  it('runs the migrations on deploy with a trigger per database, in its own stack, when migrateOnDeploy is set', () => {
    expect(Object.keys(resources(s.opsTemplate, 'Custom::Trigger'))).toEqual([]);
    for (const db of ['auth', 'billing']) {
      const t = s.dbTemplate(db);
      const [trigger, ...others] = Object.values(resources(t, 'Custom::Trigger'));
      expect(others, db).toEqual([]);
      expect(trigger!.Properties, db).toMatchObject({ InvocationType: 'RequestResponse', Timeout: String(14 * 60 * 1000), ExecuteOnHandlerChange: true });
      // The function's current version: a new one (and a new run) whenever the function changes.
      const version = (trigger!.Properties!.HandlerArn as { Ref: string }).Ref;
      expect(resources(t)[version]?.Type, db).toBe('AWS::Lambda::Version');
      expect(flat(trigger!.Properties!.ServiceToken), db).toMatch(new RegExp(`^<MigrateOnDeploy${db}Provider[0-9A-F]{8}\\.Arn>$`));
    }
  });

  it('runs them through a provider of its own: inline least privilege, its own log group, seen by cdk-nag', () => {
    const t = s.dbTemplate('billing');
    const [providerId, provider] = Object.entries(resources(t, 'AWS::Lambda::Function')).find(([id]) => id.startsWith('MigrateOnDeploybillingProvider'))!;
    const p = provider.Properties as unknown as FunctionProperties;
    expect(p).toMatchObject({ Runtime: 'nodejs24.x', Handler: '__entrypoint__.handler', Timeout: 900 });
    expect(p.VpcConfig).toBeUndefined();
    expect(resources(t)[p.LoggingConfig.LogGroup.Ref]?.Properties?.RetentionInDays).toBe(90);
    const statements = roleStatements(t, 'MigrateOnDeploybillingProviderRole');
    expect(statements.map((x) => [x.Sid, actionsOf(x).sort(), flat(x.Resource)])).toEqual([
      ['WriteOwnLogs', ['logs:CreateLogStream', 'logs:PutLogEvents'], expect.stringMatching(/^<MigrateOnDeploybillingLogs[0-9A-F]{8}\.Arn>$/)],
      ['InvokeMigrateVersion', ['lambda:InvokeFunction'], expect.stringMatching(/^<DbbillingMigrateFunctionCurrentVersion[0-9A-Fa-f]+>$/)],
    ]);
    for (const tpl of [s.opsTemplate, s.dbTemplate('auth'), t]) {
      for (const [id, role] of Object.entries(resources(tpl, 'AWS::IAM::Role'))) expect(role.Properties?.ManagedPolicyArns, id).toBeUndefined();
    }
    // CDK's own trigger provider (raw resources cdk-nag cannot see) is not there.
    expect(JSON.stringify(t.toJSON())).not.toContain('AWSCDK.TriggerCustomResourceProvider');
    // Its code is CDK's trigger handler behind CDK's custom-resource entry point, unchanged.
    const code = assetDir(s.app.outdir, p);
    for (const [name, from] of Object.entries(PROVIDER_FILES)) expect(readFileSync(join(code, name)), name).toEqual(readFileSync(from));
    // cdk-nag evaluates the provider's role and function (the rules that apply to them pass).
    const checked = checkedResources(s.app);
    expect(checked).toEqual(expect.arrayContaining([
      expect.stringMatching(/\/MigrateOnDeploy-billing\/ProviderRole\/Resource$/),
      expect.stringMatching(/\/MigrateOnDeploy-billing\/Provider\/Resource$/),
    ]));
    expect(providerId).toMatch(/^MigrateOnDeploybillingProvider/);
  });

  it('(why: CDK\'s triggers.Trigger gives its provider a managed policy that cdk-nag never sees)', () => {
    const app = new App();
    const stack = new Stack(app, 'TriggerProbe');
    const handler = new lambda.Function(stack, 'Handler', { runtime: lambda.Runtime.NODEJS_24_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = async () => {}') });
    new triggers.Trigger(stack, 'Trigger', { handler });
    const roles = Object.values(resources(Template.fromStack(stack), 'AWS::IAM::Role')).filter((r) => r.Properties?.ManagedPolicyArns !== undefined);
    expect(JSON.stringify(roles.map((r) => r.Properties!.ManagedPolicyArns))).toContain('AWSLambdaBasicExecutionRole');
    expect(checkedResources(stack).some((path) => path.includes('TriggerCustomResourceProvider'))).toBe(false);
  });

  it('stays free of unacknowledged cdk-nag findings', () => {
    const report = new AwsSolutionsChecks().validateScope(s.app);
    expect(report.violations.map((v) => v.ruleName)).toEqual([]);
  });
});

describe('options', () => {
  it('omits notify-slack without a webhook secret, and the restore test when its schedule is null', () => {
    const raw = sampleConfig();
    delete raw.slackWebhookSecretArn;
    raw.schedules = { restoreTest: null };
    raw.architecture = 'x86_64';
    const s = synth({ pgops: raw, bundle: false });
    onTestFinished(() => s.dispose());
    const fns = Object.keys(resources(s.opsTemplate, 'AWS::Lambda::Function'));
    expect(fns.some((id) => id.startsWith('NotifySlack'))).toBe(false);
    const auth = s.dbTemplate('auth');
    expect(Object.values(resources(auth, 'AWS::Scheduler::Schedule')).map((r) => r.Properties!.Name).sort()).toEqual(['auth-backup', 'auth-cleanup', 'auth-health']);
    for (const f of Object.values(resources(auth, 'AWS::Lambda::Function'))) expect(f.Properties!.Architectures).toEqual(['x86_64']);
    auth.hasResourceProperties('AWS::ECS::TaskDefinition', { RuntimePlatform: { CpuArchitecture: 'X86_64' } });
  });

  it('reads the configuration from a file named by the pgopsConfigFile context', () => {
    const outdir = mkdtempSync(join(tmpdir(), 'pgops-infra-test-'));
    onTestFinished(() => rmSync(outdir, { recursive: true, force: true }));
    const app = new App({ outdir, context: { ...cdkJson().context, pgopsConfigFile: 'test/infra/does-not-exist.json' } });
    expect(() => buildPgopsApp(app)).toThrow(/pgopsConfigFile .*does-not-exist\.json/);
  });
});
