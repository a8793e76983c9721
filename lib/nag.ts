// cdk-nag acknowledgments, each for one exact finding id, with the reason in one place so a
// reviewer reads them all together. Ids carry no "AwsSolutions::" namespace: cdk-nag 3.0.2 only
// matches the plain form (which CDK records as Annotation::<id>).
import { Validations, type Acknowledgment } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

export function acknowledge(scope: IConstruct, ...acks: Acknowledgment[]): void {
  Validations.of(scope).acknowledge(...acks);
}

export const NAG = {
  vpcNetworkInterfaces: {
    id: 'AwsSolutions-IAM5[Resource::*]',
    reason: 'Only the ec2 network-interface actions Lambda needs to place a function in a VPC (those of AWSLambdaVPCAccessExecutionRole); EC2 Describe* calls have no resource-level permissions and the interfaces do not exist before Lambda creates them.',
  },
  taskEnvironment: {
    id: 'AwsSolutions-ECS2',
    reason: 'The variables are non-secret settings (database id, secret ARN, bucket URL, topic ARN, the job settings JSON); the database credentials are read by the task role from Secrets Manager at run time and never appear in the task definition.',
  },
  ecrAuthorizationToken: {
    id: 'AwsSolutions-IAM5[Resource::*]',
    reason: 'ecr:GetAuthorizationToken, added by CDK so ECS can pull the image, has no resource-level permissions; the pull actions themselves are limited to the asset repository.',
  },
  queueIsDeadLetterQueue: {
    id: 'AwsSolutions-SQS3',
    reason: 'This queue is itself the dead-letter destination (Lambda on-failure records, EventBridge Scheduler undeliverable events); nothing consumes it automatically, an alarm fires on its first message.',
  },
  xrayTraces: {
    id: 'AwsSolutions-IAM5[Resource::*]',
    reason: 'xray:PutTraceSegments and xray:PutTelemetryRecords, added by CDK for active tracing (config tracing: true), have no resource-level permissions; they write trace data and read nothing.',
  },
  putMetricData: {
    id: 'AwsSolutions-IAM5[Resource::*]',
    reason: 'cloudwatch:PutMetricData has no resource-level permissions; the statement is limited by the condition cloudwatch:namespace = pgops, so the task can only publish pgops\' own job metrics.',
  },
} satisfies Record<string, Acknowledgment>;
