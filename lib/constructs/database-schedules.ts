// One database's EventBridge Scheduler schedules, as each job's builder (jobs/*.ts) describes them:
// backup, health check and cleanup invoke their functions with { "database": id }; the weekly
// restore test (and the base backup, with PITR) run their Fargate tasks directly.
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
  /** In the schedule's name (<database>-<job>) and its construct id. */
  job: 'restore-test' | 'basebackup';
  description: string;
  /** Names the scheduler role's statements for this task (Run<name>, Pass<name>Roles). */
  statementName?: string;
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
  /** Fargate tasks started directly (the restore test, the base backup). */
  tasks: ScheduledTask[];
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

    for (const inv of props.invokes) this.schedules.push(this.invokeSchedule(props, inv));
    for (const task of props.tasks) {
      for (const s of runTaskStatements(task.taskDefinitionArn, task.clusterArn, task.passRoleArns, task.statementName)) this.role.addToPolicy(s);
      this.schedules.push(this.taskSchedule(props, task));
    }
  }

  /** What every schedule of this database shares: its group, zone, role and dead-letter queue. */
  private common(props: DatabaseSchedulesProps) {
    return {
      groupName: props.groupName,
      scheduleExpressionTimezone: props.timezone,
      flexibleTimeWindow: { mode: 'OFF' },
      state: 'ENABLED',
      target: { roleArn: this.role.roleArn, deadLetterConfig: { arn: props.deadLetterQueue.queueArn } },
    };
  }

  /** A function invoked with { "database": id }. */
  private invokeSchedule(props: DatabaseSchedulesProps, inv: ScheduledInvoke): scheduler.CfnSchedule {
    const common = this.common(props);
    return new scheduler.CfnSchedule(this, `${capitalize(inv.job)}Schedule`, {
      ...common,
      name: `${props.databaseId}-${inv.job}`,
      description: `pgops ${inv.job} of database ${props.databaseId}`,
      scheduleExpression: inv.expression,
      target: {
        ...common.target,
        arn: inv.function.functionArn,
        input: JSON.stringify({ database: props.databaseId }),
        retryPolicy: { maximumEventAgeInSeconds: inv.maxEventAgeSeconds, maximumRetryAttempts: inv.maxRetries },
      },
    });
  }

  /** A Fargate task started directly, with the job's command. */
  private taskSchedule(props: DatabaseSchedulesProps, rt: ScheduledTask): scheduler.CfnSchedule {
    const common = this.common(props);
    return new scheduler.CfnSchedule(this, `${rt.job.split('-').map(capitalize).join('')}Schedule`, {
      ...common,
      name: `${props.databaseId}-${rt.job}`,
      description: rt.description,
      scheduleExpression: rt.expression,
      target: {
        ...common.target,
        arn: rt.clusterArn,
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
      },
    });
  }
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
