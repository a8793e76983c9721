// Lambda entry subscribed to the alert topic: posts each SNS message to Slack as Block Kit. Which
// alert a message is (pgops, CloudWatch alarm, ECS task stopped, plain text) is decided by
// core/alerts/aws-events.ts.
// It never publishes alerts itself (that would loop through the topic); a failed post throws, so
// Lambda's asynchronous retries apply.
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { defaultSecretsClient, type ClientFactory } from '../core/aws/clients.ts';
import { isObject, toAlert } from '../core/alerts/aws-events.ts';
import { withDashboard } from '../core/alerts/dashboard.ts';
import { loadSettings, type Settings } from '../core/config.ts';
import { ConfigError, UsageError, errorMessage } from '../core/errors.ts';
import { createLambdaLogger } from '../shared/logger.ts';
import { withHandlerTracing, type HandlerTracing } from '../shared/tracing.ts';
import type { Logger } from '../core/logger.ts';
import { redactString } from '../core/redact.ts';
import { postToSlack, renderSlackMessage, resolveSlackWebhook, SlackError, type SlackPostOptions } from '../core/alerts/slack.ts';

export interface NotifySlackDeps {
  env?: NodeJS.ProcessEnv;
  secrets?: ClientFactory<SecretsManagerClient>;
  logger?: Logger;
  fetch?: typeof fetch;
  timeoutMs?: number;
  sleep?: SlackPostOptions['sleep'];
  /** X-Ray tracing (tests pass their own); by default this function's. */
  tracing?: HandlerTracing;
}

interface SnsRecord {
  Sns?: { Message?: string; Subject?: string | null; Timestamp?: string; MessageId?: string; TopicArn?: string };
}

/** The messages to post; a null or empty event, or an SNS record without a Message, is refused before anything is posted. */
function messagesOf(event: unknown): Array<{ message: string; subject?: string }> {
  if (event === null || event === undefined || event === '' || (isObject(event) && Object.keys(event).length === 0)) {
    throw new UsageError('notify-slack: the event is empty: expected SNS records or an alert object');
  }
  if (isObject(event) && Array.isArray(event.Records)) {
    const records = event.Records as SnsRecord[];
    if (records.length === 0) throw new UsageError('notify-slack: the event has no SNS records');
    const bad = records.flatMap((r, i) => (typeof r.Sns?.Message === 'string' && r.Sns.Message.trim() !== '' ? [] : [i]));
    if (bad.length > 0) throw new UsageError(`notify-slack: SNS record${bad.length > 1 ? 's' : ''} ${bad.join(', ')} ha${bad.length > 1 ? 've' : 's'} no Message; nothing was posted`);
    return records.map((r) => ({ message: r.Sns!.Message!, subject: r.Sns?.Subject ?? undefined }));
  }
  // Invoked directly (an EventBridge target, or by hand).
  return [{ message: JSON.stringify(event) }];
}

export function createNotifySlackHandler(deps: NotifySlackDeps = {}) {
  let webhook: Promise<string | undefined> | undefined;
  return async (event: unknown): Promise<{ posted: number; skipped: number }> => {
    const messages = messagesOf(event);
    const settings = loadSettings({}, deps.env);
    return withHandlerTracing('notify-slack', settings, deps.tracing, () => post(messages, settings));
  };

  async function post(messages: Array<{ message: string; subject?: string }>, settings: Settings): Promise<{ posted: number; skipped: number }> {
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
    for (const m of messages) {
      const alert = toAlert(m.message, m.subject, settings.config.environment);
      if (!alert) {
        skipped++;
        logger.info('message not posted (not a failure)', { subject: m.subject });
        continue;
      }
      try {
        await postToSlack(url, renderSlackMessage(withDashboard(alert, settings.region)), { timeoutMs: deps.timeoutMs, fetch: deps.fetch, sleep: deps.sleep, logger });
        posted++;
      } catch (err) {
        const message = redactString(errorMessage(err));
        logger.error('could not post to Slack', { error: message, job: alert.job, severity: alert.severity });
        throw new SlackError(`notify-slack: ${message}`, { cause: err });
      }
    }
    logger.info('posted to Slack', { posted, skipped });
    return { posted, skipped };
  }
}

export const handler = createNotifySlackHandler();
