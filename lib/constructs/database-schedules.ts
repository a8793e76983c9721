// One database's EventBridge Scheduler schedules: backup, health check and cleanup invoke their
// functions with { "database": id }; the weekly restore test runs the Fargate task directly.
// Each schedule retries delivery and sends what it could not deliver to the dead-letter queue.
import { Aws } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { runTaskStatements } from '../permissions.ts';
import type { NetworkPlacement } from './pgops-function.ts';

export interface ScheduledInvoke {
  job: 'backup' | 'health' | 'cleanup';
  expression: string;
  function: lambda.IFunction;
  /** How long and how often the scheduler retries a delivery it could not make. */
  maxEventAgeSeconds: number;
  maxRetries: number;
}

export interface ScheduledTask {
  expression: string;
  clusterArn: string;
  taskDefinitionArn: string;
  containerName: string;
  command: string[];
  passRoleArns: string[];
  network: NetworkPlacement;
}

export interface DatabaseSchedulesProps {
  databaseId: string;
  groupName: string;
  timezone: string;
  deadLetterQueue: sqs.IQueue;
  invokes: ScheduledInvoke[];
  restoreTest?: ScheduledTask;
}

export class DatabaseSchedules extends Construct {
  readonly schedules: scheduler.CfnSchedule[] = [];
  readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: DatabaseSchedulesProps) {
    super(scope, id);
    // L1 schedules with one explicit role: the L2 targets grant InvokeFunction on "<arn>:*" too.
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.PrincipalWithConditions(new iam.ServicePrincipal('scheduler.amazonaws.com'), {
        StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
      }),
      description: `pgops schedules of database ${props.databaseId}`,
    });
    this.role.addToPolicy(new iam.PolicyStatement({
      sid: 'InvokeJobFunctions',
      actions: ['lambda:InvokeFunction'],
      resources: props.invokes.map((i) => i.function.functionArn),
    }));
    this.role.addToPolicy(new iam.PolicyStatement({ sid: 'SendUndeliveredToDeadLetterQueue', actions: ['sqs:SendMessage'], resources: [props.deadLetterQueue.queueArn] }));

    const deadLetterConfig = { arn: props.deadLetterQueue.queueArn };
    const input = JSON.stringify({ database: props.databaseId });
    for (const inv of props.invokes) {
      this.schedules.push(new scheduler.CfnSchedule(this, `${capitalize(inv.job)}Schedule`, {
        name: `${props.databaseId}-${inv.job}`,
        groupName: props.groupName,
        description: `pgops ${inv.job} of database ${props.databaseId}`,
        scheduleExpression: inv.expression,
        scheduleExpressionTimezone: props.timezone,
        flexibleTimeWindow: { mode: 'OFF' },
        state: 'ENABLED',
        target: {
          arn: inv.function.functionArn,
          roleArn: this.role.roleArn,
          input,
          retryPolicy: { maximumEventAgeInSeconds: inv.maxEventAgeSeconds, maximumRetryAttempts: inv.maxRetries },
          deadLetterConfig,
        },
      }));
    }

    const rt = props.restoreTest;
    if (rt) {
      for (const s of runTaskStatements(rt.taskDefinitionArn, rt.clusterArn, rt.passRoleArns)) this.role.addToPolicy(s);
      this.schedules.push(new scheduler.CfnSchedule(this, 'RestoreTestSchedule', {
        name: `${props.databaseId}-restore-test`,
        groupName: props.groupName,
        description: `pgops restore test of the latest backup of database ${props.databaseId} (Fargate)`,
        scheduleExpression: rt.expression,
        scheduleExpressionTimezone: props.timezone,
        flexibleTimeWindow: { mode: 'OFF' },
        state: 'ENABLED',
        target: {
          arn: rt.clusterArn,
          roleArn: this.role.roleArn,
          ecsParameters: {
            taskDefinitionArn: rt.taskDefinitionArn,
            launchType: 'FARGATE',
            taskCount: 1,
            platformVersion: 'LATEST',
            networkConfiguration: {
              awsvpcConfiguration: { subnets: rt.network.subnetIds, securityGroups: rt.network.securityGroupIds, assignPublicIp: 'DISABLED' },
            },
          },
          input: JSON.stringify({ containerOverrides: [{ name: rt.containerName, command: rt.command }] }),
          retryPolicy: { maximumEventAgeInSeconds: 3600, maximumRetryAttempts: 3 },
          deadLetterConfig,
        },
      }));
    }
  }
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
