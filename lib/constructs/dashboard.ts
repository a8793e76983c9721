// The environment's CloudWatch dashboard, `pgops-<env>`: a header, then one row per database with its
// backups, restore tests, health checks, WAL archive and cleanup. It reads the metrics the jobs emit
// (namespace pgops, dimension database) by name, so it needs nothing from the database stacks.
// One resource however many databases; only past CloudWatch's quotas per dashboard does it continue
// on `pgops-<env>-2`, `-3`, ... (each page a resource, each listed in every header).
import { Aws, Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';

/** CloudWatch's quotas per dashboard (docs: "CloudWatch service quotas", Dashboards; not adjustable). */
export const DASHBOARD_LIMITS = { widgets: 500, metrics: 2500, metricsPerWidget: 500 } as const;

export const METRIC_NAMESPACE = 'pgops';

// The runtime's contract, restated (infrastructure imports no job code): the health checks, each a
// HealthStatus.<check> metric (functions/core/health/types.ts CHECK_NAMES), and the dashboard's name
// and link as alerts carry them (functions/core/alerts/dashboard.ts). Tests hold both copies equal.
export const HEALTH_CHECKS = [
  'connection', 'migrations', 'backup-age', 'backup-size', 'restore-test', 'connections', 'long-running-queries',
  'blocked-queries', 'bloat', 'database-size', 'unused-indexes', 'wal-archiving', 'restore-window', 'replication', 'replica',
] as const;

/** `pgops-<environment>`: the environment's (first) dashboard. */
export function dashboardName(environment: string): string {
  return `pgops-${environment}`;
}

/** The console page of a dashboard; `region` may be a token (the stack's). */
export function dashboardConsoleUrl(region: string, name: string): string {
  return `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#dashboards/dashboard/${name}`;
}

export interface DashboardDatabase {
  id: string;
  /** The WAL archive age threshold (minutes) when the database has point-in-time recovery; absent without. */
  maxWalArchiveAgeMinutes?: number;
}

export interface PgopsDashboardProps {
  environment: string;
  databases: DashboardDatabase[];
  /** health.maxBackupAgeHours: drawn on the backup-age graph, where its alarm fires. */
  maxBackupAgeHours: number;
}

// Every graph: hourly points (the health check's default schedule) over two weeks (two weekly restore tests).
const PERIOD = Duration.hours(1);
const ROW_HEIGHT = 6;

interface Line {
  metric: string;
  label: string;
  /** Default Maximum: the worst value in the hour. */
  stat?: 'Sum';
  right?: boolean;
}

interface Axis { min?: number; max?: number; showUnits?: boolean }

interface GraphSpec {
  database: string;
  title: string;
  width: number;
  lines: Line[];
  left?: Axis;
  right?: Axis;
  /** Horizontal lines on the left axis (alarm thresholds, status levels). */
  annotations?: Array<{ value: number; label: string; color: string }>;
  legendRight?: boolean;
}

/**
 * A metric graph in CloudWatch's compact form: statistic and period once per widget, "." for
 * what repeats from the line above. CDK's GraphWidget writes both on every line, which at 100
 * databases doubles the body (and the ops stack's template) for nothing.
 */
export class MetricGraph extends cloudwatch.ConcreteWidget {
  constructor(private readonly spec: GraphSpec) {
    super(spec.width, ROW_HEIGHT);
  }

  toJson(): unknown[] {
    const { spec } = this;
    const metrics = spec.lines.map((l, i) => [
      ...(i === 0 ? [METRIC_NAMESPACE, l.metric, 'database', spec.database] : ['.', l.metric, '.', '.']),
      { label: l.label, ...(l.stat ? { stat: l.stat } : {}), ...(l.right ? { yAxis: 'right' } : {}) },
    ]);
    return [{
      type: 'metric', width: this.width, height: this.height, x: this.x, y: this.y,
      properties: {
        view: 'timeSeries', title: spec.title, region: Aws.REGION, stat: 'Maximum', period: PERIOD.toSeconds(), metrics,
        yAxis: { left: spec.left ?? { min: 0, showUnits: false }, ...(spec.right ? { right: spec.right } : {}) },
        ...(spec.annotations ? { annotations: { horizontal: spec.annotations } } : {}),
        ...(spec.legendRight ? { legend: { position: 'right' } } : {}),
      },
    }];
  }
}

/** The row of one database: four graphs side by side (24 columns), titled by the database id. */
export function databaseRow(db: DashboardDatabase, maxBackupAgeHours: number): MetricGraph[] {
  const { id: database } = db;
  const counts = { min: 0, showUnits: false };
  const cleanup: Line = { metric: 'CleanupRowsDeleted', label: 'cleanup rows deleted', stat: 'Sum' };
  return [
    new MetricGraph({
      database, title: `${database} · last successful backup: age (h) and size`, width: 6,
      lines: [{ metric: 'BackupAgeHours', label: 'age (h)' }, { metric: 'BackupBytes', label: 'size', right: true }],
      right: { min: 0 },
      annotations: [{ value: maxBackupAgeHours, label: 'backup-age alarm', color: cloudwatch.Color.RED }],
    }),
    new MetricGraph({
      database, title: `${database} · backup duration, restore test result and RTO (s)`, width: 6,
      lines: [
        { metric: 'BackupDurationSeconds', label: 'backup (s)' },
        { metric: 'RestoreTestDurationSeconds', label: 'restore test = RTO (s)' },
        { metric: 'RestoreTestSucceeded', label: 'restore test passed', stat: 'Sum', right: true },
        { metric: 'RestoreTestFailed', label: 'restore test failed', stat: 'Sum', right: true },
      ],
      right: counts,
    }),
    new MetricGraph({
      database, title: `${database} · health per check (0 ok, 1 warning, 2 critical, 3 unknown)`, width: 8,
      lines: HEALTH_CHECKS.map((check) => ({ metric: `HealthStatus.${check}`, label: check })),
      left: { min: 0, max: 3, showUnits: false },
      annotations: [{ value: 1, label: 'warning', color: cloudwatch.Color.ORANGE }, { value: 2, label: 'critical', color: cloudwatch.Color.RED }],
      legendRight: true,
    }),
    db.maxWalArchiveAgeMinutes === undefined
      ? new MetricGraph({ database, title: `${database} · cleanup rows deleted`, width: 4, lines: [cleanup] })
      : new MetricGraph({
        database, title: `${database} · WAL archive age (min), cleanup rows deleted`, width: 4,
        lines: [{ metric: 'WalArchiveAgeMinutes', label: 'WAL archive age (min)' }, { ...cleanup, right: true }],
        right: counts,
        annotations: [{ value: db.maxWalArchiveAgeMinutes, label: 'wal-archive-age alarm', color: cloudwatch.Color.RED }],
      }),
  ];
}

/** The metrics widgets read, as their JSON lists them (the quota counts each line). */
export function metricsOf(widgets: cloudwatch.IWidget[]): number {
  return widgets.flatMap((w) => w.toJson() as Array<{ properties?: { metrics?: unknown[] } }>).reduce((n, j) => n + (j.properties?.metrics?.length ?? 0), 0);
}

/**
 * Databases in configuration order, cut into pages that each stay within the quotas with the
 * header: a page ends when the next database's row would pass the widget or metric quota.
 */
export function paginate(rows: cloudwatch.IWidget[][], headerWidgets = 1): cloudwatch.IWidget[][][] {
  const pages: cloudwatch.IWidget[][][] = [[]];
  let widgets = headerWidgets;
  let metrics = 0;
  for (const row of rows) {
    const page = pages.at(-1)!;
    if (page.length > 0 && (widgets + row.length > DASHBOARD_LIMITS.widgets || metrics + metricsOf(row) > DASHBOARD_LIMITS.metrics)) {
      pages.push([row]);
      widgets = headerWidgets + row.length;
      metrics = metricsOf(row);
    } else {
      page.push(row);
      widgets += row.length;
      metrics += metricsOf(row);
    }
  }
  return pages;
}

/** `pgops-<env>`, then `pgops-<env>-2`, ... */
export function pageName(environment: string, page: number): string {
  return page === 0 ? dashboardName(environment) : `${dashboardName(environment)}-${page + 1}`;
}

const consoleUrl = (fragment: string) => `https://${Aws.REGION}.console.aws.amazon.com/cloudwatch/home?region=${Aws.REGION}#${fragment}`;

function header(props: PgopsDashboardProps, pages: string[][], page: number): cloudwatch.TextWidget {
  const env = props.environment;
  const ids = pages[page]!;
  const pageLinks = pages.length === 1 ? '' : `\n\nPage ${page + 1} of ${pages.length}: ${pages.map((p, i) => {
    const label = `${p[0]} … ${p.at(-1)}`;
    return i === page ? `**${label}**` : `[${label}](${dashboardConsoleUrl(Aws.REGION, pageName(env, i))})`;
  }).join(' · ')}`;
  const markdown = [
    `# pgops ${env}: ${ids.length === props.databases.length ? `${ids.length} database${ids.length === 1 ? '' : 's'}` : `databases ${ids[0]} … ${ids.at(-1)} of ${props.databases.length}`}`,
    'One row per database, from the metrics its jobs emit (namespace `pgops`, dimension `database`), hourly over two weeks: '
      + '**last successful backup** (age in hours, left, with the backup-age alarm threshold; size, right) · '
      + '**backup duration and restore test** (seconds, the restore test\'s is the RTO; passed and failed runs, right) · '
      + '**health per check** (0 ok, 1 warning, 2 critical, 3 unknown) · '
      + '**WAL archive age** (databases with point-in-time recovery) and **cleanup rows deleted**. A graph without points: the job has not reported in the range.',
    `[Alarms](${consoleUrl('alarmsV2:')}): those of ${env} are named \`pgops-${env}-…\` (type it in the search box) · every alert links here.${pageLinks}`,
  ].join('\n\n');
  return new cloudwatch.TextWidget({ markdown, width: 24, height: pages.length === 1 ? 4 : 5 });
}

export class PgopsDashboard extends Construct {
  /** One per page: `pgops-<env>` first. */
  readonly dashboards: cloudwatch.Dashboard[];

  constructor(scope: Construct, id: string, props: PgopsDashboardProps) {
    super(scope, id);
    const rows = props.databases.map((db) => databaseRow(db, props.maxBackupAgeHours));
    const pages = paginate(rows);
    let next = 0;
    const idsOf = pages.map((page) => page.map(() => props.databases[next++]!.id));
    this.dashboards = pages.map((page, i) => new cloudwatch.Dashboard(this, i === 0 ? 'Dashboard' : `Dashboard${i + 1}`, {
      dashboardName: pageName(props.environment, i),
      start: '-P14D',
      periodOverride: cloudwatch.PeriodOverride.INHERIT,
      widgets: [[header(props, idsOf, i)], ...page],
    }));
  }
}
