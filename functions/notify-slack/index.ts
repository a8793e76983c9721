// Lambda entry subscribed to the alert topic: renders each SNS message to Slack Block Kit.
// Understands pgops alerts (the alert shape as JSON), CloudWatch alarm state changes and
// EventBridge ECS "Task State Change" STOPPED events; anything else is posted as plain text.
// It never publishes alerts itself (that would loop through the topic); a failed post throws, so
// Lambda's asynchronous retries apply.
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { defaultSecretsClient, type ClientFactory } from '../core/aws/clients.ts';
import type { Alert, Severity } from '../core/alerts/alerter.ts';
import { loadSettings } from '../core/config.ts';
import { ConfigError, errorMessage } from '../core/errors.ts';
import { createLambdaLogger } from '../shared/logger.ts';
import type { Logger } from '../core/logger.ts';
import { redactString } from '../core/redact.ts';
import { postToSlack, renderSlackMessage, resolveSlackWebhook, type SlackPostOptions } from '../core/alerts/slack.ts';

export interface NotifySlackDeps {
  env?: NodeJS.ProcessEnv;
  secrets?: ClientFactory<SecretsManagerClient>;
  logger?: Logger;
  fetch?: typeof fetch;
  timeoutMs?: number;
  sleep?: SlackPostOptions['sleep'];
}

interface SnsRecord {
  Sns?: { Message?: string; Subject?: string | null; Timestamp?: string; MessageId?: string; TopicArn?: string };
}

type Json = Record<string, unknown>;

const SEVERITIES: Severity[] = ['critical', 'warning', 'info', 'resolved'];

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

function pgopsAlert(m: Json): Alert | undefined {
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
  };
}

/** arn:aws:cloudwatch:<region>:<account>:alarm:<name> -> the console page of the alarm. */
function alarmConsoleUrl(arn: string | undefined, name: string): string | undefined {
  const region = arn?.split(':')[3];
  if (!region) return undefined;
  return `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#alarmsV2:alarm/${encodeURIComponent(name)}`;
}

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
  const condition = str(trigger.ComparisonOperator) && trigger.Threshold !== undefined ? `${String(trigger.ComparisonOperator)} ${String(trigger.Threshold)}` : undefined;
  const description = str(m.AlarmDescription);
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

function messagesOf(event: unknown): Array<{ message: string; subject?: string }> {
  if (isObject(event) && Array.isArray(event.Records)) {
    return (event.Records as SnsRecord[]).map((r) => ({ message: r.Sns?.Message ?? '', subject: r.Sns?.Subject ?? undefined }));
  }
  // Invoked directly (an EventBridge target, or by hand).
  return [{ message: JSON.stringify(event ?? {}) }];
}

export function createNotifySlackHandler(deps: NotifySlackDeps = {}) {
  let webhook: Promise<string | undefined> | undefined;
  return async (event: unknown): Promise<{ posted: number; skipped: number }> => {
    const env = deps.env ?? process.env;
    const settings = loadSettings({}, env);
    const logger = deps.logger ?? createLambdaLogger('pgops-notify-slack', settings.logLevel);
    // Cached across warm invocations; a failed lookup is retried next time.
    webhook ??= resolveSlackWebhook(settings, deps.secrets ?? defaultSecretsClient);
    let url: string | undefined;
    try {
      url = await webhook;
    } catch (err) {
      webhook = undefined;
      throw err;
    }
    if (!url) throw new ConfigError('no Slack webhook: set PGOPS_SLACK_WEBHOOK_URL or PGOPS_SLACK_WEBHOOK_SECRET_ID');
    let posted = 0;
    let skipped = 0;
    for (const m of messagesOf(event)) {
      const alert = toAlert(m.message, m.subject, settings.config.environment);
      if (!alert) {
        skipped++;
        logger.info('message not posted (not a failure)', { subject: m.subject });
        continue;
      }
      try {
        await postToSlack(url, renderSlackMessage(alert), { timeoutMs: deps.timeoutMs, fetch: deps.fetch, sleep: deps.sleep, logger });
        posted++;
      } catch (err) {
        const message = redactString(errorMessage(err));
        logger.error('could not post to Slack', { error: message, job: alert.job, severity: alert.severity });
        throw new Error(`notify-slack: ${message}`);
      }
    }
    logger.info('posted to Slack', { posted, skipped });
    return { posted, skipped };
  };
}

export const handler = createNotifySlackHandler();
