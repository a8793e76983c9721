// The notify-slack function (one per environment, outside any VPC): renders what reaches the alert
// topic to Slack. It reads the webhook secret and nothing else; it never publishes alerts itself.
import { Duration } from 'aws-cdk-lib';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { ENV } from '../../../functions/core/config.ts';
import type { PgopsConfig } from '../../config.ts';
import { secretReadStatements } from '../../permissions.ts';
import type { Alerting } from '../alerting.ts';
import { lambdaArchitecture, PgopsFunction } from '../pgops-function.ts';

export interface NotifySlackProps {
  config: PgopsConfig;
  /** The configured webhook secret. */
  webhookSecretArn: string;
  repoRoot: string;
  alerting: Alerting;
  failureQueue: sqs.IQueue;
  logRetention: logs.RetentionDays;
}

export function notifySlackFunction(scope: Construct, props: NotifySlackProps): PgopsFunction {
  const { config } = props;
  const fn = new PgopsFunction(scope, 'NotifySlack', {
    job: 'notify-slack',
    environmentName: config.environment,
    description: 'pgops notify-slack: renders alerts from the topic to Slack',
    code: { node: { entry: `${props.repoRoot}/functions/notify-slack/index.ts` }, repoRoot: props.repoRoot },
    timeout: Duration.seconds(30),
    memorySize: 256,
    // Slack answers again soon after a blip; each message is posted at most three times.
    retryAttempts: 2,
    architecture: lambdaArchitecture(config.architecture),
    logRetention: props.logRetention,
    onFailure: props.failureQueue,
    alarmTopic: props.alerting.topic,
    tracing: config.tracing,
    environment: {
      [ENV.slackWebhookSecretId]: props.webhookSecretArn,
      [ENV.environment]: config.environment,
      [ENV.logLevel]: config.logLevel,
    },
    onError: 'Alerts are not reaching Slack (the webhook was revoked, the secret changed, or Slack is down); e-mail subscribers still get them. Check the function logs and the webhook secret.',
  });
  secretReadStatements(props.webhookSecretArn, config.slackWebhookSecretKmsKeyArn, 'ReadSlackWebhookSecret').forEach((s) => fn.allow(s));
  props.alerting.subscribeFunction(fn.function);
  return fn;
}
