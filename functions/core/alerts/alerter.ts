// One alert shape (DESIGN.md "Alerts"), several destinations. Sending an alert never fails a job:
// a broken destination is logged and the job's own outcome stands.
import type { SNSClient } from '@aws-sdk/client-sns';
import type { ClientFactory } from '../aws/clients.ts';
import { AlertError } from '../errors.ts';
import { withDashboard } from './dashboard.ts';
import type { Logger } from '../logger.ts';
import { redactFields, redactString } from '../redact.ts';

export type Severity = 'critical' | 'warning' | 'info' | 'resolved';

export interface Alert {
  severity: Severity;
  job: string;
  database: string;
  environment: string;
  summary: string;
  details?: Record<string, unknown>;
  runbook?: string;
  /** ISO time; filled in when sent if absent. */
  time?: string;
  /** The environment's CloudWatch dashboard (dashboard.ts); filled in when sent if the region is known. */
  dashboard?: string;
}

export interface Alerter {
  send(alert: Alert): Promise<void>;
}

/** SNS subjects: at most 100 characters, printable ASCII, no newlines. */
export function alertSubject(a: Alert): string {
  const raw = `[${a.severity.toUpperCase()}] pgops ${a.job} ${a.environment}/${a.database}: ${a.summary}`;
  const ascii = raw.replace(/[^\x20-\x7e]/g, '?');
  return ascii.length <= 100 ? ascii : `${ascii.slice(0, 97)}...`;
}

function finalize(a: Alert, now: () => Date): Alert {
  return redactFields({ ...a, time: a.time ?? now().toISOString() });
}

/** With no destination configured, alerts go to stderr (DESIGN.md). */
export class StderrAlerter implements Alerter {
  constructor(private readonly write: (line: string) => void = (l) => process.stderr.write(l), private readonly now: () => Date = () => new Date()) {}
  send(alert: Alert): Promise<void> {
    const a = finalize(alert, this.now);
    this.write(`pgops: ALERT ${a.severity.toUpperCase()} ${a.job} ${a.environment}/${a.database}: ${redactString(a.summary)}\n${a.dashboard ? `  dashboard: ${a.dashboard}\n` : ''}`);
    return Promise.resolve();
  }
}

export class SnsAlerter implements Alerter {
  constructor(private readonly client: SNSClient | ClientFactory<SNSClient>, private readonly topicArn: string, private readonly now: () => Date = () => new Date()) {}
  async send(alert: Alert): Promise<void> {
    const a = finalize(alert, this.now);
    const { PublishCommand } = await import('@aws-sdk/client-sns');
    const client = typeof this.client === 'function' ? await this.client() : this.client;
    await client.send(new PublishCommand({
      TopicArn: this.topicArn,
      Subject: alertSubject(a),
      Message: JSON.stringify(a),
      MessageAttributes: {
        severity: { DataType: 'String', StringValue: a.severity },
        job: { DataType: 'String', StringValue: a.job },
      },
    }));
  }
}

/**
 * Fan out to every destination. Each failure is logged; it throws only when no destination took
 * the alert, so a caller that records what it sent (health dedupe) can try again next run.
 */
export class FanoutAlerter implements Alerter {
  /** `region`: where the job runs (Settings.region); every destination gets the alert with the dashboard link of that region. */
  constructor(private readonly targets: Alerter[], private readonly logger: Logger, private readonly options: { region?: string } = {}) {}
  async send(input: Alert): Promise<void> {
    const alert = withDashboard(input, this.options.region);
    // One destination: log, then rethrow its own error, the clearest answer for the caller.
    if (this.targets.length === 1) {
      const only = this.targets[0]!;
      try {
        await only.send(alert);
      } catch (err) {
        this.logger.error(`could not send alert through ${only.constructor.name}`, { error: redactString(err instanceof Error ? err.message : String(err)) });
        throw err;
      }
      return;
    }
    const results = await Promise.allSettled(this.targets.map((t) => t.send(alert)));
    const failures: string[] = [];
    results.forEach((r, i) => {
      if (r.status === 'rejected') {
        const message = redactString(r.reason instanceof Error ? r.reason.message : String(r.reason));
        failures.push(message);
        this.logger.error(`could not send alert through ${this.targets[i]!.constructor.name}`, { error: message });
      }
    });
    if (failures.length > 0 && failures.length === this.targets.length) {
      throw new AlertError(`no alert destination accepted the alert: ${failures.join('; ')}`, { cause: results.map((r) => (r.status === 'rejected' ? r.reason as unknown : undefined)) });
    }
  }
}

/** Collects alerts in memory: for tests and for the demo's report. */
export class MemoryAlerter implements Alerter {
  readonly sent: Alert[] = [];
  send(alert: Alert): Promise<void> {
    this.sent.push(finalize(alert, () => new Date()));
    return Promise.resolve();
  }
}
