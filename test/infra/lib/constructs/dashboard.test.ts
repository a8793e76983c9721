// The environment's dashboard (lib/constructs/dashboard.ts): one row of graphs per database reading
// the pgops metrics by name and `database` dimension, a header linking the alarms, pages only past
// CloudWatch's quotas; and the dashboard's link at the end of every alarm description.
import { App, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dashboardUrl } from '../../../../functions/core/alerts/dashboard.ts';
import { CHECK_NAMES } from '../../../../functions/core/health/types.ts';
import { ALARM_DESCRIPTION_MAX, topicAlarm } from '../../../../lib/constructs/alarm.ts';
import { Alerting } from '../../../../lib/constructs/alerting.ts';
import { DASHBOARD_LIMITS, HEALTH_CHECKS, PgopsDashboard, type DashboardDatabase } from '../../../../lib/constructs/dashboard.ts';
import { dashboardsOf, flat, propertiesOf, resources, sampleConfig, synth, type AlarmProperties, type Synth, type WidgetJson } from '../../helpers.ts';

/** The metric lines of a widget with CloudWatch's "." (same as the line above) filled in. */
function resolvedLines(w: WidgetJson): unknown[][] {
  const out: unknown[][] = [];
  for (const m of w.properties.metrics ?? []) out.push(m.map((v, i) => (v === '.' ? out.at(-1)![i] : v)));
  return out;
}

/** [metric name, database] of every metric line of a widget; each line's namespace and dimension checked. */
function metricLines(w: WidgetJson): Array<[string, string]> {
  return resolvedLines(w).map((m) => {
    expect(m[0]).toBe('pgops');
    expect(m[2]).toBe('database');
    expect(m).toHaveLength(5);
    return [String(m[1]), String(m[3])];
  });
}

const metricCount = (widgets: WidgetJson[]) => widgets.reduce((n, w) => n + (w.properties.metrics?.length ?? 0), 0);
const HEALTH = CHECK_NAMES.map((c) => `HealthStatus.${c}`);
const DASHBOARD_LINK = 'Dashboard: https://<AWS::Region>.console.aws.amazon.com/cloudwatch/home?region=<AWS::Region>#dashboards/dashboard/pgops-staging';

describe('the dashboard of the sample environment', () => {
  let s: Synth;
  beforeAll(() => {
    const raw = sampleConfig();
    // A second database with point-in-time recovery (archive_command: no receiver service needed).
    raw.databases.push({ ...raw.databases[0]!, id: 'ledger', pitr: { walArchiving: 'archive-command', maxWalArchiveAgeMinutes: 30 } });
    s = synth({ pgops: raw, bundle: false });
  });
  afterAll(() => s?.dispose());

  it('is one dashboard named pgops-<env> in the ops stack, none in the database stacks', () => {
    expect(dashboardsOf(s.opsTemplate).map((d) => d.name)).toEqual(['pgops-staging']);
    expect(Object.keys(resources(s.dbTemplate('auth'), 'AWS::CloudWatch::Dashboard'))).toEqual([]);
  });

  it('opens with a header saying what it shows and linking the environment\'s alarms', () => {
    const [header] = dashboardsOf(s.opsTemplate)[0]!.widgets;
    expect(header!.type).toBe('text');
    expect(header!.width).toBe(24);
    const md = header!.properties.markdown!;
    expect(md).toMatch(/^# pgops staging: 2 databases/);
    for (const words of ['last successful backup', 'restore test', 'RTO', 'health per check', 'WAL archive age', 'cleanup rows deleted']) expect(md).toContain(words);
    expect(md).toContain('[Alarms](https://<AWS::Region>.console.aws.amazon.com/cloudwatch/home?region=<AWS::Region>#alarmsV2:): those of staging are named `pgops-staging-…`');
    expect(md).not.toMatch(/Page \d/);
  });

  it('gives each database a row of four graphs reading its own metrics', () => {
    const { widgets } = dashboardsOf(s.opsTemplate)[0]!;
    for (const id of ['auth', 'ledger']) {
      const row = widgets.filter((w) => w.properties.title?.startsWith(`${id} · `));
      expect(row.map((w) => w.width), id).toEqual([6, 6, 8, 4]);
      expect(row.reduce((n, w) => n + w.width, 0)).toBe(24);
      const lines = row.flatMap(metricLines);
      expect(new Set(lines.map(([, db]) => db)), id).toEqual(new Set([id]));
      for (const w of row) expect(w.properties.region).toBe('<AWS::Region>');
      const names = lines.map(([name]) => name);
      expect(names.slice(0, 6)).toEqual(['BackupAgeHours', 'BackupBytes', 'BackupDurationSeconds', 'RestoreTestDurationSeconds', 'RestoreTestSucceeded', 'RestoreTestFailed']);
      expect(names.slice(6, 6 + HEALTH.length)).toEqual(HEALTH);
      expect(names.slice(6 + HEALTH.length)).toEqual(id === 'ledger' ? ['WalArchiveAgeMinutes', 'CleanupRowsDeleted'] : ['CleanupRowsDeleted']);
    }
  });

  it('reads each metric with the statistic that answers its question, hourly', () => {
    const { widgets } = dashboardsOf(s.opsTemplate)[0]!;
    const graphs = widgets.filter((w) => w.type === 'metric') as Array<WidgetJson & { properties: { stat: string; period: number } }>;
    expect(new Set(graphs.map((w) => `${w.properties.stat} ${w.properties.period}`))).toEqual(new Set(['Maximum 3600']));
    const options = graphs.flatMap((w) => resolvedLines(w).map((m) => [m[1], m[4]] as [string, { stat?: string; period?: number }]));
    const stat = (name: string) => [...new Set(options.filter(([n]) => n === name).map(([, o]) => o.stat ?? 'Maximum'))];
    for (const name of ['BackupAgeHours', 'BackupBytes', 'BackupDurationSeconds', 'RestoreTestDurationSeconds', 'WalArchiveAgeMinutes', ...HEALTH]) expect(stat(name), name).toEqual(['Maximum']);
    for (const name of ['RestoreTestSucceeded', 'RestoreTestFailed', 'CleanupRowsDeleted']) expect(stat(name), name).toEqual(['Sum']);
    expect(options.filter(([, o]) => o.period !== undefined)).toEqual([]);
  });

  it('draws the alarm thresholds: backup age from health, WAL archive age from the database\'s pitr', () => {
    const { widgets } = dashboardsOf(s.opsTemplate)[0]!;
    const annotations = (title: string) => (widgets.find((w) => w.properties.title?.startsWith(title))!.properties as { annotations?: { horizontal: Array<{ value: number; label: string }> } }).annotations?.horizontal;
    expect(annotations('auth · last successful backup')).toEqual([expect.objectContaining({ value: 26, label: 'backup-age alarm' })]);
    expect(annotations('ledger · WAL archive age')).toEqual([expect.objectContaining({ value: 30, label: 'wal-archive-age alarm' })]);
    expect(annotations('auth · health per check')!.map((a) => a.value)).toEqual([1, 2]);
  });

  it('ends every alarm description with the dashboard link, within CloudWatch\'s 1024 characters', () => {
    const alarms = [s.opsTemplate, s.dbTemplate('auth'), s.dbTemplate('ledger')].flatMap((t) => propertiesOf<AlarmProperties>(t, 'AWS::CloudWatch::Alarm'));
    expect(alarms.length).toBeGreaterThan(10);
    for (const a of alarms) {
      const description = flat(a.AlarmDescription);
      expect(description.endsWith(`\n\n${DASHBOARD_LINK}`), a.AlarmName).toBe(true);
      // <AWS::Region> stands for a region of 13 characters; the longest is 14.
      expect(description.length + 2, a.AlarmName).toBeLessThanOrEqual(ALARM_DESCRIPTION_MAX);
    }
  });
});

function dashboardApp(databases: DashboardDatabase[]): Template {
  const stack = new Stack(new App(), 'Ops');
  new PgopsDashboard(stack, 'Dashboard', { environment: 'prod', databases, maxBackupAgeHours: 26 });
  return Template.fromStack(stack);
}

describe('CloudWatch\'s quotas per dashboard', () => {
  const many = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `db${String(i).padStart(3, '0')}`, ...(i % 5 === 0 ? { maxWalArchiveAgeMinutes: 15 } : {}) }));

  it('keep 100 databases on one dashboard', () => {
    const [only, ...others] = dashboardsOf(dashboardApp(many(100)));
    expect(others).toEqual([]);
    expect(only!.widgets.length).toBeLessThanOrEqual(DASHBOARD_LIMITS.widgets);
    expect(metricCount(only!.widgets)).toBeLessThanOrEqual(DASHBOARD_LIMITS.metrics);
  });

  it('continue on pgops-<env>-2 past them, every database on one page, each page linking the others', () => {
    const databases = many(250);
    const pages = dashboardsOf(dashboardApp(databases));
    expect(pages.map((p) => p.name)).toEqual(['pgops-prod', 'pgops-prod-2', 'pgops-prod-3']);
    const seen: string[] = [];
    for (const [i, page] of pages.entries()) {
      expect(page.widgets.length, page.name).toBeLessThanOrEqual(DASHBOARD_LIMITS.widgets);
      expect(metricCount(page.widgets), page.name).toBeLessThanOrEqual(DASHBOARD_LIMITS.metrics);
      for (const w of page.widgets) expect(w.properties.metrics?.length ?? 0).toBeLessThanOrEqual(DASHBOARD_LIMITS.metricsPerWidget);
      const ids = [...new Set(page.widgets.flatMap(metricLines).map(([, db]) => db))];
      seen.push(...ids);
      const md = page.widgets[0]!.properties.markdown!;
      expect(md).toContain(`Page ${i + 1} of 3`);
      expect(md).toContain(`databases ${ids[0]} … ${ids.at(-1)} of 250`);
      for (const [j, other] of pages.entries()) {
        if (j !== i) expect(md, `${page.name} -> ${other.name}`).toContain(`#dashboards/dashboard/${other.name})`);
      }
    }
    expect(seen).toEqual(databases.map((d) => d.id));
  });
});

describe('the runtime\'s contract, restated by the infrastructure', () => {
  it('graphs every health check the health job reports', () => {
    expect([...HEALTH_CHECKS]).toEqual([...CHECK_NAMES]);
  });

  it('links the dashboard the alerts link', () => {
    const link = DASHBOARD_LINK.replace('Dashboard: ', '').replaceAll('<AWS::Region>', 'eu-west-1');
    expect(link).toBe(dashboardUrl('staging', 'eu-west-1'));
  });
});

describe('alarm descriptions', () => {
  it('are cut, not the link, when description and link would pass 1024 characters', () => {
    const stack = new Stack(new App(), 'Ops');
    const alerting = new Alerting(stack, 'Alerts', { environmentName: 'staging', emails: [] });
    topicAlarm(stack, 'Long', { alarmName: 'long', description: 'x'.repeat(2000), metric: new cloudwatch.Metric({ namespace: 'pgops', metricName: 'M' }), threshold: 1, topic: alerting.topic });
    const [a] = propertiesOf<AlarmProperties>(Template.fromStack(stack), 'AWS::CloudWatch::Alarm');
    const description = flat(a!.AlarmDescription);
    expect(description).toMatch(/^x+…\n\nDashboard: https:/);
    expect(description.endsWith(DASHBOARD_LINK)).toBe(true);
    expect(description.length + 2 * (20 - '<AWS::Region>'.length)).toBeLessThanOrEqual(ALARM_DESCRIPTION_MAX);
  });

  it('carry no link when the topic is not an environment\'s alert topic', () => {
    const stack = new Stack(new App(), 'Other');
    topicAlarm(stack, 'Plain', { alarmName: 'plain', description: 'what to do', metric: new cloudwatch.Metric({ namespace: 'pgops', metricName: 'M' }), threshold: 1, topic: new sns.Topic(stack, 'Topic') });
    expect(propertiesOf<AlarmProperties>(Template.fromStack(stack), 'AWS::CloudWatch::Alarm')[0]!.AlarmDescription).toBe('what to do');
  });
});
