// Alarms for silence (issue 13, item 4): every scheduled job's "has not succeeded within its schedule
// plus slack" alarm (its metric, period, missing data, topic), the Fargate task-failure metric and
// alarm, the tasks' metric publishing (PutMetricData limited to the pgops namespace) and deadlines,
// the schedule windows within CloudWatch's limits, and cdk-nag. Synthesized without bundling.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENV } from '../../../functions/core/config.ts';
import { parsePgopsConfig, PgopsConfigError, taskDeadlinesFor } from '../../../lib/config.ts';
import { scheduleGapHours, silenceWindow } from '../../../lib/schedule-window.ts';
import { allFindings, deadAcknowledgments } from '../nag-audit.ts';
import {
  actionsOf, flat, propertiesOf, resources, roleStatements, sampleConfig, synth,
  type AlarmProperties, type ContainerDefinition, type Synth,
} from '../helpers.ts';
import { AwsSolutionsChecks } from 'cdk-nag';

type Alarm = AlarmProperties & Record<string, unknown>;

/** The sample ("auth") plus "billing" with PITR (stream) and a restore test every day. */
function config(overrides: Record<string, unknown> = {}) {
  const raw = sampleConfig();
  raw.databases.push({
    id: 'billing',
    secretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:pgops/staging/billing-XyZ123',
    vpcId: 'vpc-0aaaaaaaaaaaaaaaa',
    subnetIds: ['subnet-0aaaaaaaaaaaaaaaa'],
    securityGroupIds: ['sg-0aaaaaaaaaaaaaaaa'],
    pitr: { walArchiving: 'stream' },
  });
  return { ...raw, ...overrides };
}

function issuesOf(raw: unknown): string[] {
  try {
    parsePgopsConfig(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(PgopsConfigError);
    return (err as PgopsConfigError).issues;
  }
  throw new Error('the configuration was accepted');
}

describe('silence windows (lib/schedule-window.ts)', () => {
  it('measures the longest gap of rate() and cron() schedules; at() runs once', () => {
    expect(scheduleGapHours('rate(1 hour)')).toBe(1);
    expect(scheduleGapHours('rate(3 days)')).toBe(72);
    expect(scheduleGapHours('cron(0 2 * * ? *)')).toBe(24);
    expect(scheduleGapHours('cron(0 8,20 * * ? *)')).toBe(12);
    expect(scheduleGapHours('cron(0 */6 * * ? *)')).toBe(6);
    expect(scheduleGapHours('cron(15 * * * ? *)')).toBe(1);
    expect(scheduleGapHours('cron(0 4 ? * SUN *)')).toBe(168);
    expect(scheduleGapHours('cron(0 2 ? * MON-FRI *)')).toBe(72);
    expect(scheduleGapHours('cron(0 2 1 * ? *)')).toBe(744);
    expect(scheduleGapHours('at(2027-01-01T00:00:00)')).toBeUndefined();
  });

  it('sums over the gap plus half of it, whole-hour periods, within 7 days (1 day under an hour)', () => {
    const hours = (e: string) => {
      const w = silenceWindow(e);
      if (w.kind !== 'sum') throw new Error(`${e}: ${w.kind}`);
      return { period: w.period.toHours(), n: w.evaluationPeriods, window: w.windowHours };
    };
    expect(hours('cron(0 2 * * ? *)')).toEqual({ period: 2, n: 18, window: 36 });
    expect(hours('rate(1 hour)')).toEqual({ period: 1, n: 2, window: 2 });
    expect(hours('rate(5 minutes)')).toEqual({ period: 1, n: 2, window: 2 });
    expect(hours('cron(0 2 ? * MON-FRI *)')).toEqual({ period: 6, n: 18, window: 108 });
    // 120 h plus 60 would pass 7 days: the window stops at 168 h.
    expect(hours('rate(5 days)')).toEqual({ period: 8, n: 21, window: 168 });
    for (const e of ['rate(1 minute)', 'rate(2 hours)', 'cron(0 2 * * ? *)', 'rate(6 days)', 'cron(0 9 ? * MON,THU *)']) {
      const w = silenceWindow(e);
      if (w.kind !== 'sum') throw new Error(e);
      expect(w.period.toSeconds() % 3600, e).toBe(0);
      expect(w.period.toSeconds() * w.evaluationPeriods, e).toBeLessThanOrEqual(7 * 86400);
      expect(w.windowHours, e).toBeGreaterThan(scheduleGapHours(e)!);
    }
    expect(silenceWindow('cron(0 4 ? * SUN *)')).toEqual({ kind: 'too-long', gapHours: 168 });
    expect(silenceWindow('at(2027-01-01T00:00:00)')).toEqual({ kind: 'once' });
  });
});

describe('configuration', () => {
  it('refuses a job schedule too sparse for its silence alarm, naming the field', () => {
    const raw = config({ schedules: { cleanup: 'cron(0 3 ? * SUN *)' } });
    (raw.databases[1] as { pitr: Record<string, unknown> }).pitr.baseBackupSchedule = 'rate(8 days)';
    const issues = issuesOf(raw);
    expect(issues).toEqual(expect.arrayContaining([
      expect.stringMatching(/^pgops\.schedules\.cleanup: runs every 168 h at most: .*7 days/),
      expect.stringMatching(/^pgops\.databases\[1\]\.pitr\.baseBackupSchedule: runs every 192 h/),
    ]));
    // The weekly restore test is fine: it is watched by its age.
    expect(() => parsePgopsConfig(config({ schedules: { restoreTest: 'cron(0 4 ? * SUN *)' } }))).not.toThrow();
  });

  it('has a deadline per Fargate job, in seconds by the CLI job that runs it', () => {
    const c = parsePgopsConfig(config());
    expect(c.tasks.deadlineMinutes).toEqual({ backup: 360, restoreTest: 240, baseBackup: 360, restore: 720, pitr: 720 });
    expect(taskDeadlinesFor(parsePgopsConfig(config({ tasks: { deadlineMinutes: { backup: 90 } } })))).toEqual({ backup: 5400, verify: 14400, basebackup: 21600, restore: 43200, pitr: 43200 });
    expect(issuesOf(config({ tasks: { deadlineMinutes: { backup: 0, restoreTest: 1.5, nightly: 3 } } }))).toEqual(expect.arrayContaining([
      expect.stringMatching(/^pgops\.tasks\.deadlineMinutes\.backup: /),
      expect.stringMatching(/^pgops\.tasks\.deadlineMinutes\.restoreTest: /),
      'pgops.tasks.deadlineMinutes.nightly: unknown field',
    ]));
  });
});

describe('silence alarms in the stacks', () => {
  let s: Synth;
  let daily: Synth;
  beforeAll(() => {
    s = synth({ pgops: config(), bundle: false });
    daily = synth({ pgops: config({ schedules: { restoreTest: 'cron(0 5 * * ? *)' } }), bundle: false });
  });
  afterAll(() => {
    s?.dispose();
    daily?.dispose();
  });

  const alarmIn = (x: Synth, db: string, name: string): Alarm | undefined =>
    propertiesOf<Alarm>(x.dbTemplate(db), 'AWS::CloudWatch::Alarm').find((a) => a.AlarmName === name);
  const dims = (a: Alarm) => (a.Dimensions as Array<{ Name: string; Value: unknown }>).map((d) => [d.Name, flat(d.Value)]);

  function expectSumAlarm(a: Alarm | undefined, db: string, metric: string, period: number, n: number) {
    expect(a, metric).toBeDefined();
    expect(a).toMatchObject({
      Namespace: 'pgops', MetricName: metric, Statistic: 'Sum', Period: period,
      EvaluationPeriods: n, DatapointsToAlarm: n, Threshold: 1, ComparisonOperator: 'LessThanThreshold', TreatMissingData: 'breaching',
    });
    expect(dims(a!)).toEqual([['database', db]]);
    expect(a!.AlarmActions.map(flat)).toEqual([expect.stringMatching(/^<AlertsTopic/)]);
    expect((a!.OKActions as unknown[]).map(flat)).toEqual([expect.stringMatching(/^<AlertsTopic/)]);
    expect(flat(a!.AlarmDescription).length).toBeLessThanOrEqual(1024);
  }

  it('watches backup, health and cleanup of every database: the success metric summed over the schedule plus slack, silence breaching', () => {
    for (const db of ['auth', 'billing']) {
      // Backup and cleanup nightly (2 h x 18 = 36 h), health hourly (1 h x 2).
      expectSumAlarm(alarmIn(s, db, `pgops-staging-${db}-backup-silent`), db, 'BackupSucceeded', 7200, 18);
      expectSumAlarm(alarmIn(s, db, `pgops-staging-${db}-health-silent`), db, 'HealthSucceeded', 3600, 2);
      expectSumAlarm(alarmIn(s, db, `pgops-staging-${db}-cleanup-silent`), db, 'CleanupSucceeded', 7200, 18);
    }
    expect(flat(alarmIn(s, 'auth', 'pgops-staging-auth-backup-silent')!.AlarmDescription)).toMatch(/has not succeeded for 36 h .*Invoke the backup function with \{"database": "auth"\}/);
  });

  it('watches the base backup of a database with pitr only', () => {
    expectSumAlarm(alarmIn(s, 'billing', 'pgops-staging-billing-basebackup-silent'), 'billing', 'BaseBackupSucceeded', 7200, 18);
    expect(alarmIn(s, 'auth', 'pgops-staging-auth-basebackup-silent')).toBeUndefined();
  });

  it('watches a weekly restore test by the age of its last success, which the health check reports (no sum fits 7 days plus slack)', () => {
    const a = alarmIn(s, 'auth', 'pgops-staging-auth-restore-test-silent');
    expect(a).toMatchObject({
      Namespace: 'pgops', MetricName: 'RestoreTestAgeHours', Statistic: 'Maximum', Period: 3600,
      EvaluationPeriods: 2, DatapointsToAlarm: 2, Threshold: 168 + 24, ComparisonOperator: 'GreaterThanThreshold', TreatMissingData: 'breaching',
    });
    expect(dims(a!)).toEqual([['database', 'auth']]);
    expect(a!.AlarmActions.map(flat)).toEqual([expect.stringMatching(/^<AlertsTopic/)]);
  });

  it('watches a daily restore test by its success metric; none when the restore test is turned off', () => {
    expectSumAlarm(alarmIn(daily, 'auth', 'pgops-staging-auth-restore-test-silent'), 'auth', 'RestoreTestSucceeded', 7200, 18);
    const off = synth({ pgops: config({ schedules: { restoreTest: null } }), bundle: false });
    try {
      expect(alarmIn(off, 'auth', 'pgops-staging-auth-restore-test-silent')).toBeUndefined();
      expect(alarmIn(off, 'auth', 'pgops-staging-auth-backup-silent')).toBeDefined();
    } finally {
      off.dispose();
    }
  });

  it('keeps the WAL archive age alarm breaching on silence', () => {
    expect(alarmIn(s, 'billing', 'pgops-staging-billing-wal-archive-age')).toMatchObject({ MetricName: 'WalArchiveAgeMinutes', TreatMissingData: 'breaching' });
  });

  describe('the Fargate tasks', () => {
    const container = (db: string, prefix: string) => {
      const found = Object.entries(resources(s.dbTemplate(db), 'AWS::ECS::TaskDefinition')).filter(([id]) => id.startsWith(prefix));
      expect(found, prefix).toHaveLength(1);
      return (found[0]![1].Properties!.ContainerDefinitions as ContainerDefinition[])[0]!;
    };
    const env = (c: ContainerDefinition) => Object.fromEntries(c.Environment.map((e) => [e.Name, flat(e.Value)]));

    it('the long-job and base-backup tasks publish metrics to CloudWatch and carry their deadlines; the WAL receiver neither', () => {
      const deadlines = JSON.stringify({ backup: 21600, verify: 14400, basebackup: 21600, restore: 43200, pitr: 43200 });
      for (const prefix of ['DbbillingTaskTaskDefinition', 'DbbillingPitrBaseBackupTaskTaskDefinition']) {
        expect(env(container('billing', prefix))).toMatchObject({ [ENV.metrics]: 'cloudwatch', [ENV.taskDeadlines]: deadlines });
      }
      const receiver = env(container('billing', 'DbbillingPitrWalReceiverTaskTaskDefinition'));
      expect(receiver[ENV.metrics]).toBeUndefined();
      expect(receiver[ENV.taskDeadlines]).toBeUndefined();
    });

    it('lets only those task roles put metric data, and only in the pgops namespace', () => {
      const put = (role: string) => roleStatements(s.dbTemplate('billing'), role).filter((st) => actionsOf(st).includes('cloudwatch:PutMetricData'));
      for (const role of ['DbbillingTaskTaskRole', 'DbbillingPitrBaseBackupTaskTaskRole']) {
        expect(put(role)).toEqual([{ Sid: 'PublishJobMetrics', Effect: 'Allow', Action: 'cloudwatch:PutMetricData', Resource: '*', Condition: { StringEquals: { 'cloudwatch:namespace': 'pgops' } } }]);
      }
      expect(put('DbbillingPitrWalReceiverTaskTaskRole')).toEqual([]);
    });
  });

  describe('Fargate task failures', () => {
    it('sends the failed-task events to a log group too, whose policy lets EventBridge write', () => {
      const rule = Object.values(resources(s.opsTemplate, 'AWS::Events::Rule'))[0]!;
      const targets = (rule.Properties!.Targets as Array<{ Arn: unknown }>).map((t) => flat(t.Arn));
      expect(targets).toEqual(expect.arrayContaining([
        expect.stringMatching(/^<AlertsTopic/),
        'arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/events/pgops-staging-task-failures',
      ]));
      const groups = propertiesOf<{ LogGroupName?: string; RetentionInDays: number }>(s.opsTemplate, 'AWS::Logs::LogGroup');
      expect(groups.filter((g) => g.LogGroupName === '/aws/events/pgops-staging-task-failures')).toHaveLength(1);
      const policies = propertiesOf<{ PolicyDocument: string }>(s.opsTemplate, 'AWS::Logs::ResourcePolicy');
      expect(policies).toHaveLength(1);
      const doc = flat(policies[0]!.PolicyDocument);
      expect(doc).toContain('events.amazonaws.com');
      expect(doc).toContain('logs:PutLogEvents');
    });

    it('counts them as pgops/TaskFailures per cluster and alarms on the first one, per environment', () => {
      const filters = propertiesOf<{ FilterPattern: string; MetricTransformations: Array<Record<string, unknown>> }>(s.opsTemplate, 'AWS::Logs::MetricFilter');
      expect(filters).toHaveLength(1);
      expect(filters[0]!.FilterPattern).toBe('{ $.detail.lastStatus = "STOPPED" }');
      expect(filters[0]!.MetricTransformations).toEqual([{ MetricNamespace: 'pgops', MetricName: 'TaskFailures', MetricValue: '1', Unit: 'Count', Dimensions: [{ Key: 'cluster', Value: '$.detail.clusterArn' }] }]);
      const a = propertiesOf<Alarm>(s.opsTemplate, 'AWS::CloudWatch::Alarm').find((x) => x.AlarmName === 'pgops-staging-task-failures');
      expect(a).toMatchObject({ Namespace: 'pgops', MetricName: 'TaskFailures', Statistic: 'Sum', Period: 300, EvaluationPeriods: 1, Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold', TreatMissingData: 'notBreaching' });
      expect(dims(a!)).toEqual([['cluster', '<Cluster.Arn>']]);
      expect(a!.AlarmActions.map(flat)).toEqual([expect.stringMatching(/^<AlertsTopic/)]);
      expect(flat(a!.AlarmDescription)).toContain('124');
    });
  });

  describe('cdk-nag', () => {
    it('AwsSolutions: no unacknowledged finding', () => {
      const report = new AwsSolutionsChecks().validateScope(s.app);
      expect(report.violations.map((v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.resourceLogicalId ?? r.constructPath).join(', ')}`)).toEqual([]);
    });

    it('has no acknowledgment left that matches no finding', () => {
      expect(deadAcknowledgments(s.app, allFindings(s.app)).map((a) => `${a.path}: ${a.id}`)).toEqual([]);
    });
  });
});
