// The events AWS sends to the alert topic, as alerts: CloudWatch alarm state changes and EventBridge
// ECS "Task State Change" STOPPED events, besides pgops' own alerts (the alert shape as JSON).
// Anything else becomes an `info` alert with the message as its summary.
import type { Alert, Severity } from './alerter.ts';
import { dashboardUrl, isDashboardUrl } from './dashboard.ts';

export type Json = Record<string, unknown>;

const SEVERITIES: Severity[] = ['critical', 'warning', 'info', 'resolved'];

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export function pgopsAlert(m: Json): Alert | undefined {
  if (!SEVERITIES.includes(m.severity as Severity) || !str(m.job) || !str(m.summary)) return undefined;
  return {
    severity: m.severity as Severity,
    job: String(m.job),
    database: str(m.database) ?? '-',
    environment: str(m.environment) ?? '-',
    summary: String(m.summary),
    ...(isObject(m.details) ? { details: m.details } : {}),
    ...(str(m.runbook) ? { runbook: String(m.runbook) } : {}),
    ...(str(m.time) ? { time: String(m.time) } : {}),
    ...(isDashboardUrl(m.dashboard) ? { dashboard: m.dashboard } : {}),
  };
}

/** arn:aws:cloudwatch:<region>:<account>:alarm:<name> -> the console page of the alarm. */
function alarmConsoleUrl(arn: string | undefined, name: string): string | undefined {
  const region = arn?.split(':')[3];
  if (!region) return undefined;
  return `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#alarmsV2:alarm/${encodeURIComponent(name)}`;
}

/** The last line of a pgops alarm description (lib/constructs/alarm.ts). */
const DASHBOARD_LINE = /\s*Dashboard: (https:\/\/\S+)\s*$/;

const dashboardOf = (url: string | undefined): { dashboard?: string } => (url ? { dashboard: url } : {});

/** CloudWatch writes "2026-11-22T05:05:12.345+0000". */
function isoTime(v: string | undefined): string | undefined {
  const t = v ? Date.parse(v.replace(/([+-]\d\d)(\d\d)$/, '$1:$2')) : Number.NaN;
  return Number.isNaN(t) ? undefined : new Date(t).toISOString();
}

export function cloudWatchAlarmAlert(m: Json, environment: string): Alert | undefined {
  const name = str(m.AlarmName);
  const state = str(m.NewStateValue);
  if (!name || !state) return undefined;
  const trigger = isObject(m.Trigger) ? m.Trigger : {};
  const dims = Array.isArray(trigger.Dimensions) ? (trigger.Dimensions as Array<{ name?: string; value?: string }>) : [];
  const database = dims.find((d) => d.name === 'database')?.value ?? dims.find((d) => /db|database/i.test(d.name ?? ''))?.value ?? '-';
  const severity: Severity = state === 'ALARM' ? 'critical' : state === 'OK' ? 'resolved' : 'warning';
  const metric = str(trigger.MetricName) ? `${str(trigger.Namespace) ?? ''}${str(trigger.Namespace) ? '/' : ''}${String(trigger.MetricName)}` : undefined;
  const condition = str(trigger.ComparisonOperator) && trigger.Threshold !== undefined ? `${String(trigger.ComparisonOperator)} ${JSON.stringify(trigger.Threshold)}` : undefined;
  // topicAlarm ends every description with the dashboard's link: shown as a link, not in the summary.
  const described = str(m.AlarmDescription);
  const link = described?.match(DASHBOARD_LINE);
  const linked = link?.[1];
  const description = link ? described!.slice(0, link.index).trim() || undefined : described;
  const region = str(m.AlarmArn)?.split(':')[3];
  return {
    severity,
    job: 'cloudwatch-alarm',
    database,
    environment,
    summary: `${name} is ${state}${description ? ` (${description})` : ''}: ${str(m.NewStateReason) ?? ''}`.trim(),
    time: isoTime(str(m.StateChangeTime)),
    details: {
      alarm: name,
      state: `${str(m.OldStateValue) ?? '?'} → ${state}`,
      ...(metric ? { metric } : {}),
      ...(condition ? { condition } : {}),
      ...(str(m.Region) ? { region: String(m.Region) } : {}),
      ...(str(m.AWSAccountId) ? { account: String(m.AWSAccountId) } : {}),
    },
    runbook: alarmConsoleUrl(str(m.AlarmArn), name),
    ...dashboardOf(isDashboardUrl(linked) ? linked : dashboardUrl(environment, region)),
  };
}

interface EcsContainer { name?: string; exitCode?: number; reason?: string; lastStatus?: string }

export function ecsTaskStoppedAlert(e: Json, environment: string): Alert | null | undefined {
  if (e['detail-type'] !== 'ECS Task State Change' || !isObject(e.detail)) return undefined;
  const d = e.detail;
  if (d.lastStatus !== 'STOPPED') return null; // other transitions are not news
  const containers = (Array.isArray(d.containers) ? d.containers : []) as EcsContainer[];
  const failed = containers.filter((c) => c.exitCode !== 0);
  // A job task that ended with every container at exit 0 did its work: its own result reports it.
  if (failed.length === 0 && containers.length > 0) return null;
  const family = str(d.taskDefinitionArn)?.split('/').pop() ?? str(d.group) ?? 'task';
  const taskArn = str(d.taskArn) ?? '';
  const taskId = taskArn.split('/').pop() ?? '';
  const cluster = str(d.clusterArn)?.split('/').pop() ?? '';
  const overrides = isObject(d.overrides) && Array.isArray(d.overrides.containerOverrides) ? (d.overrides.containerOverrides as Array<{ command?: string[]; environment?: Array<{ name?: string; value?: string }> }>) : [];
  const env = overrides.flatMap((o) => o.environment ?? []);
  const database = env.find((v) => v.name === 'PGOPS_DATABASE_ID')?.value ?? '-';
  const command = overrides.find((o) => Array.isArray(o.command))?.command?.join(' ');
  const exits = failed.map((c) => `${c.name ?? 'container'} exited with ${c.exitCode === undefined || c.exitCode === null ? 'no exit code' : `code ${c.exitCode}`}${c.reason ? ` (${c.reason})` : ''}`);
  const region = str(e.region);
  return {
    severity: 'critical',
    job: command ? `fargate ${command}` : 'fargate-task',
    database,
    environment,
    summary: `ECS task ${family} stopped: ${exits.join('; ') || str(d.stoppedReason) || 'no container ran'}${str(d.stoppedReason) && exits.length > 0 ? `. ${String(d.stoppedReason)}` : ''}`,
    time: str(d.stoppedAt) ?? str(e.time),
    details: {
      cluster,
      task: taskId,
      ...(str(d.stopCode) ? { stopCode: String(d.stopCode) } : {}),
      ...(str(d.startedBy) ? { startedBy: String(d.startedBy) } : {}),
      ...(str(d.startedAt) ? { startedAt: String(d.startedAt) } : {}),
      ...(str(d.stoppedAt) ? { stoppedAt: String(d.stoppedAt) } : {}),
    },
    runbook: region && cluster && taskId ? `https://${region}.console.aws.amazon.com/ecs/v2/clusters/${cluster}/tasks/${taskId}?region=${region}` : undefined,
    ...dashboardOf(dashboardUrl(environment, region)),
  };
}

/** One SNS message (or a bare event) -> the alert to post; null means "deliberately not posted". */
export function toAlert(message: string, subject: string | undefined, environment: string): Alert | null {
  let json: unknown;
  try {
    json = JSON.parse(message);
  } catch {
    json = undefined;
  }
  if (isObject(json)) {
    const a = pgopsAlert(json) ?? cloudWatchAlarmAlert(json, environment);
    if (a) return a;
    const ecs = ecsTaskStoppedAlert(json, environment);
    if (ecs !== undefined) return ecs;
  }
  return { severity: 'info', job: 'sns', database: '-', environment, summary: `${subject ? `${subject}: ` : ''}${message.slice(0, 2500)}` };
}
