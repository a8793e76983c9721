// Where every alert goes: one SNS topic encrypted with its own key (whose policy lets CloudWatch
// alarms and EventBridge publish), e-mail subscriptions, and the notify-slack function.
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';

export interface AlertingProps {
  environmentName: string;
  emails: string[];
}

export class Alerting extends Construct {
  readonly topic: sns.Topic;
  readonly key: kms.Key;
  /** The environment whose alerts this topic carries (topicAlarm links its dashboard). */
  readonly environmentName: string;

  constructor(scope: Construct, id: string, props: AlertingProps) {
    super(scope, id);
    this.environmentName = props.environmentName;
    this.key = new kms.Key(this, 'TopicKey', {
      description: `pgops ${props.environmentName}: encrypts the alert topic`,
      enableKeyRotation: true,
      // Protects messages in flight only: it goes with the (stateless) ops stack, after KMS's waiting period.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // SNS encrypts with the publisher's rights on the key: the services that publish need them
    // in the key policy (the functions get theirs from their own roles). EventBridge: see
    // alertOnFailedTasks.
    this.key.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'AllowCloudWatchAlarmsToPublish',
      principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
      resources: ['*'],
    }));

    this.topic = new sns.Topic(this, 'Topic', {
      displayName: `pgops ${props.environmentName} alerts`,
      masterKey: this.key,
      enforceSSL: true,
    });
    for (const email of props.emails) this.topic.addSubscription(new subscriptions.EmailSubscription(email));
  }

  /** Statements a publishing role needs: the topic and its key. */
  publishStatements(): iam.PolicyStatement[] {
    return [
      new iam.PolicyStatement({ sid: 'PublishAlerts', actions: ['sns:Publish'], resources: [this.topic.topicArn] }),
      new iam.PolicyStatement({ sid: 'EncryptAlerts', actions: ['kms:GenerateDataKey', 'kms:Decrypt'], resources: [this.key.keyArn] }),
    ];
  }

  /**
   * ECS tasks of `clusterArn` that stopped with a non-zero exit code (or never started) reach the
   * topic as the raw EventBridge event, which notify-slack renders.
   */
  alertOnFailedTasks(clusterArn: string): events.Rule {
    const rule = new events.Rule(this, 'FailedTaskRule', {
      description: 'pgops: a long-job task stopped with a non-zero exit code or failed to start',
      eventPattern: {
        source: ['aws.ecs'],
        detailType: ['ECS Task State Change'],
        detail: {
          clusterArn: [clusterArn],
          lastStatus: ['STOPPED'],
          $or: [
            { containers: { exitCode: [{ 'anything-but': 0 }] } },
            { stopCode: ['TaskFailedToStart'] },
          ],
        },
      },
    });
    // The target also adds events.amazonaws.com to the topic policy and to the key policy.
    rule.addTarget(new targets.SnsTopic(this.topic, { retryAttempts: 8, maxEventAge: Duration.hours(6) }));
    return rule;
  }

  subscribeFunction(fn: lambda.IFunction): void {
    this.topic.addSubscription(new subscriptions.LambdaSubscription(fn));
  }
}
