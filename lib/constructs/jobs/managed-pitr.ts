// Point-in-time recovery of an RDS instance or Aurora cluster in AWS (config `managed`): a Step
// Functions state machine that restores a temporary copy, waits for it (a bounded loop on
// DescribeDBClusters / DescribeDBInstances; Aurora: the cluster, then its one instance), runs the
// output (`pgops pitr --from-state`: --target-db or --export) on the database's long-job task,
// deletes the copy and notifies the alert topic. Its input is the run's state document
// (functions/core/pitr/managed/state.ts), as `pgops pitr ... --dry-run --json` prints it under
// plan.state and `pgops pitr ... --in-aws` sends it: no secret, the task reads the database's.
//
// One state machine per database, not per environment: the restore may only name this database's
// source, the task only this database's task definition and roles, the delete only its copies
// (pgops-pitr-<source>-*, tagged pgops:purpose=pitr). A per-environment machine would hold every
// database's rights at once, and, living in the ops stack, would have to reference the database
// stacks that reference it (a cycle).
//
// Every failure (restore refused, a broken or vanished copy, the wait's bound, the task failing)
// is caught and goes to the delete steps, then to the failure notice and a failed execution (the
// ExecutionsFailed alarm). The delete steps delete only resources carrying this run's pgops:run tag.
import { Arn, ArnFormat, Aws, Duration, Stack } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { ManagedConfig } from '../../../functions/core/config.ts';
import { acknowledge, NAG } from '../../nag.ts';
import { runTaskStatements } from '../../permissions.ts';
import { topicAlarm } from '../alarm.ts';
import { TASK_CONTAINER_NAME, type LongJobTask } from '../long-job-task.ts';
import type { JobContext } from './context.ts';

// The runtime's contract with the copies, restated here (infrastructure imports no runtime logic);
// test/infra/lib/constructs/jobs/managed-pitr.test.ts holds them equal to pitr/managed/naming.ts and steps.ts.
export const COPY_TAG = { purpose: 'pgops:purpose', run: 'pgops:run' } as const;
export const COPY_PURPOSE = 'pitr';
/** Statuses a copy does not come back from by itself: the wait loop stops on them. */
export const BROKEN_COPY_STATUSES = [
  'failed', 'incompatible-restore', 'incompatible-parameters', 'incompatible-network', 'incompatible-option-group', 'restore-error',
  'storage-full', 'inaccessible-encryption-credentials', 'inaccessible-encryption-credentials-recoverable', 'insufficient-capacity',
  'migration-failed', 'deleting', 'stopped', 'stopping',
] as const;

/**
 * What every copy of `source` is named before its minute stamp: pgops-pitr-<source, lower case,
 * shortened to leave room for the stamp and (Aurora) the instance's "-1">-.
 */
export function copyNamePrefix(source: string, reserve: number): string {
  const room = 63 - reserve - 'pgops-pitr-'.length - '-yyyymmddhhmm'.length;
  const cleaned = source.toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/-{2,}/g, '-');
  return `pgops-pitr-${cleaned.slice(0, room).replace(/^-+|-+$/g, '') || 'db'}-`;
}

/** How long the output task may run (a large --export or --target-db). */
export const OUTPUT_TASK_TIMEOUT = Duration.hours(12);

/** The state names the tests and the README refer to. */
export const PITR_STATES = {
  start: 'Start',
  restoreInstance: 'RestoreInstance',
  restoreCluster: 'RestoreCluster',
  describeCluster: 'DescribeCluster',
  createClusterInstance: 'CreateClusterInstance',
  describeInstance: 'DescribeInstance',
  output: 'ProduceOutput',
  deleteCopy: 'DeleteCopy',
  deleteInstance: 'DeleteInstance',
  deleteClusterInstance: 'DeleteClusterInstance',
  deleteCluster: 'DeleteCluster',
  notifySuccess: 'NotifySuccess',
  notifyFailure: 'NotifyFailure',
  failed: 'Failed',
} as const;

/** The copy's source: an RDS instance or an Aurora cluster. */
export interface ManagedSourceRef {
  kind: 'instance' | 'cluster';
  id: string;
}

/** The database's managed source, when its config names one. */
export function managedSourceOfConfig(managed: ManagedConfig | undefined): ManagedSourceRef | undefined {
  if (managed?.rdsInstance) return { kind: 'instance', id: managed.rdsInstance };
  if (managed?.auroraCluster) return { kind: 'cluster', id: managed.auroraCluster };
  return undefined;
}

/** The wait loop's bound: restoreTimeoutMinutes in polls of pollSeconds. */
export function maxPolls(managed: ManagedConfig): number {
  return Math.max(1, Math.ceil((managed.pitr.restoreTimeoutMinutes * 60) / managed.pitr.pollSeconds));
}

export interface ManagedPitrProps {
  ctx: JobContext;
  managed: ManagedConfig;
  source: ManagedSourceRef;
  /** The database's long-job task: the output runs on it. */
  task: LongJobTask;
}

const rdsArn = (scope: Construct, type: 'db' | 'cluster' | 'subgrp' | 'pg' | 'cluster-pg' | 'og', name: string) =>
  Arn.format({ service: 'rds', resource: type, resourceName: name, arnFormat: ArnFormat.COLON_RESOURCE_NAME }, Stack.of(scope));

/** A task state calling an RDS API through the AWS SDK integration (its IAM is granted separately, with conditions). */
function rdsTask(scope: Construct, id: string, action: string, args: unknown, extra: Record<string, unknown> = {}): sfn.CustomState {
  return new sfn.CustomState(scope, id, {
    stateJson: { Type: 'Task', Resource: `arn:${Aws.PARTITION}:states:::aws-sdk:rds:${action}`, Arguments: args, ...extra },
  });
}

const jsonata = (expr: string) => `{% ${expr} %}`;

/** The alert the notify states publish (alerts/alerter.ts's shape), as JSONata. */
function alertExpression(severity: 'info' | 'critical', summary: string, details: string): string {
  return `{'severity': '${severity}', 'job': 'pitr', 'database': $database, 'environment': $pitr.environment, 'summary': ${summary}, 'details': ${details}, 'runbook': 'README: Point-in-time recovery for RDS and Aurora', 'time': $states.context.State.EnteredTime}`;
}

const failWith = (what: string) => ({
  errors: ['States.ALL'],
  assign: { failure: jsonata(`{'step': '${what}', 'error': $states.errorOutput.Error, 'cause': $substring($string($states.errorOutput.Cause), 0, 1500)}`) },
});

const TAGS = `[$each($pitr.restored.tags, function($v, $k) { {'Key': $k, 'Value': $v} })]`;
const POINT_IN_TIME = `($pitr.target.type = 'time' ? {'RestoreTime': $pitr.target.value} : {'UseLatestRestorableTime': true})`;

/** The two restore calls, the copy's settings taken from the input (optional ones only when present). */
function restoreStates(scope: Construct): { instance: sfn.CustomState; cluster: sfn.CustomState } {
  const instance = rdsTask(scope, PITR_STATES.restoreInstance, 'restoreDBInstanceToPointInTime', jsonata(`$merge([{
    'SourceDBInstanceIdentifier': $pitr.source.id, 'TargetDBInstanceIdentifier': $pitr.restored.instance,
    'DBInstanceClass': $pitr.restored.instanceClass, 'DBSubnetGroupName': $pitr.restored.subnetGroup, 'VpcSecurityGroupIds': $pitr.restored.securityGroups,
    'PubliclyAccessible': false, 'MultiAZ': false, 'DeletionProtection': false, 'AutoMinorVersionUpgrade': false, 'CopyTagsToSnapshot': false,
    'BackupRetentionPeriod': 0, 'Tags': ${TAGS}
  }, ${POINT_IN_TIME}, $exists($pitr.restored.parameterGroup) ? {'DBParameterGroupName': $pitr.restored.parameterGroup} : {}])`), { Output: {} });
  const cluster = rdsTask(scope, PITR_STATES.restoreCluster, 'restoreDBClusterToPointInTime', jsonata(`$merge([{
    'SourceDBClusterIdentifier': $pitr.source.id, 'DBClusterIdentifier': $pitr.restored.cluster, 'RestoreType': 'full-copy',
    'DBSubnetGroupName': $pitr.restored.subnetGroup, 'VpcSecurityGroupIds': $pitr.restored.securityGroups,
    'DeletionProtection': false, 'CopyTagsToSnapshot': false, 'Tags': ${TAGS}
  }, ${POINT_IN_TIME},
  $exists($pitr.restored.clusterParameterGroup) ? {'DBClusterParameterGroupName': $pitr.restored.clusterParameterGroup} : {},
  $exists($pitr.restored.serverlessV2) ? {'ServerlessV2ScalingConfiguration': {'MinCapacity': $pitr.restored.serverlessV2.minCapacity, 'MaxCapacity': $pitr.restored.serverlessV2.maxCapacity}} : {}])`), { Output: {} });
  for (const t of [instance, cluster]) t.addCatch(deleteEntry(scope), failWith(t.stateId));
  return { instance, cluster };
}

/** The one entry of the delete steps (created once per scope). */
function deleteEntry(scope: Construct): sfn.Pass {
  const existing = scope.node.tryFindChild(PITR_STATES.deleteCopy);
  return existing instanceof sfn.Pass ? existing : sfn.Pass.jsonata(scope, PITR_STATES.deleteCopy, { comment: 'Entry of the delete steps, from success and from every failure' });
}

/**
 * The wait loop: one Describe per poll, `maxPolls` in all (cluster and instance together); a broken
 * copy or the bound ends it as a failure. Aurora: the cluster, then its instance is created.
 */
function waitStates(scope: Construct, pollSeconds: number, bound: number, timeoutMinutes: number, output: sfn.IChainable): { instance: sfn.Wait; cluster: sfn.Wait } {
  const S = PITR_STATES;
  const broken = `[${BROKEN_COPY_STATUSES.map((s) => `'${s}'`).join(', ')}]`;
  const poll = sfn.WaitTime.duration(Duration.seconds(pollSeconds));
  // A copy invisible for a moment after its restore was accepted, or a throttled call: retried, then caught.
  const describeRetry = { errors: ['States.TaskFailed'], interval: Duration.seconds(15), maxAttempts: 4, backoffRate: 2 };
  const waitCluster = sfn.Wait.jsonata(scope, 'WaitForCluster', { time: poll });
  const describeCluster = rdsTask(scope, S.describeCluster, 'describeDBClusters', { DBClusterIdentifier: jsonata('$pitr.restored.cluster') }, {
    Assign: { polls: jsonata('$polls + 1'), cluster: jsonata('$states.result.DBClusters[0]') }, Output: {},
  });
  const createClusterInstance = rdsTask(scope, S.createClusterInstance, 'createDBInstance', jsonata(`$merge([{
    'DBInstanceIdentifier': $pitr.restored.instance, 'DBClusterIdentifier': $pitr.restored.cluster, 'Engine': $pitr.restored.engine,
    'DBInstanceClass': $pitr.restored.instanceClass, 'PubliclyAccessible': false, 'AutoMinorVersionUpgrade': false, 'Tags': ${TAGS}
  }, $exists($pitr.restored.parameterGroup) ? {'DBParameterGroupName': $pitr.restored.parameterGroup} : {}])`), { Output: {} });
  const waitInstance = sfn.Wait.jsonata(scope, 'WaitForInstance', { time: poll });
  const describeInstance = rdsTask(scope, S.describeInstance, 'describeDBInstances', { DBInstanceIdentifier: jsonata('$pitr.restored.instance') }, {
    Assign: { polls: jsonata('$polls + 1'), instance: jsonata('$states.result.DBInstances[0]') }, Output: {},
  });
  const timedOut = sfn.Pass.jsonata(scope, 'WaitTimedOut', {
    assign: { failure: jsonata(`{'step': 'wait', 'error': 'RestoreTimeout', 'cause': 'the restored copy was not available after ${bound} polls of ${pollSeconds} s (managed.pitr.restoreTimeoutMinutes ${timeoutMinutes})'}`) },
  }).next(deleteEntry(scope));
  const restoreBroken = sfn.Pass.jsonata(scope, 'RestoreBroken', {
    assign: { failure: jsonata(`{'step': 'wait', 'error': 'RestoreFailed', 'cause': 'the restored copy is ' & ($exists($instance.DBInstanceStatus) ? $instance.DBInstanceStatus : $cluster.Status) & ': see its RDS events'}`) },
  }).next(deleteEntry(scope));
  createClusterInstance.addCatch(deleteEntry(scope), failWith(S.createClusterInstance));
  for (const t of [describeCluster, describeInstance]) t.addRetry(describeRetry).addCatch(deleteEntry(scope), failWith(t.stateId));
  waitCluster.next(describeCluster).next(sfn.Choice.jsonata(scope, 'ClusterReady')
    .when(sfn.Condition.jsonata(jsonata(`$cluster.Status = 'available'`)), createClusterInstance)
    .when(sfn.Condition.jsonata(jsonata(`$cluster.Status in ${broken}`)), restoreBroken)
    .when(sfn.Condition.jsonata(jsonata(`$polls >= ${bound}`)), timedOut)
    .otherwise(waitCluster));
  createClusterInstance.next(waitInstance);
  waitInstance.next(describeInstance).next(sfn.Choice.jsonata(scope, 'InstanceReady')
    .when(sfn.Condition.jsonata(jsonata(`$instance.DBInstanceStatus = 'available' and $exists($instance.Endpoint.Address)`)), output)
    .when(sfn.Condition.jsonata(jsonata(`$instance.DBInstanceStatus in ${broken}`)), restoreBroken)
    .when(sfn.Condition.jsonata(jsonata(`$polls >= ${bound}`)), timedOut)
    .otherwise(waitInstance));
  return { instance: waitInstance, cluster: waitCluster };
}

/** `pgops pitr --from-state <the input, available, with the copy's endpoint>` on the database's long-job task. */
function outputState(scope: Construct, ctx: JobContext, task: LongJobTask): sfn.CustomState {
  const stateForTask = `$merge([$pitr, {'phase': 'available', 'endpoint': {'host': $instance.Endpoint.Address, 'port': $instance.Endpoint.Port}}])`;
  const state = new sfn.CustomState(scope, PITR_STATES.output, {
    stateJson: {
      Type: 'Task',
      Resource: `arn:${Aws.PARTITION}:states:::ecs:runTask.sync`,
      Arguments: {
        Cluster: ctx.clusterArn,
        TaskDefinition: task.taskDefinition.taskDefinitionArn,
        LaunchType: 'FARGATE',
        NetworkConfiguration: { AwsvpcConfiguration: { Subnets: ctx.network.subnetIds, SecurityGroups: ctx.network.securityGroupIds, AssignPublicIp: 'DISABLED' } },
        Overrides: { ContainerOverrides: [{ Name: TASK_CONTAINER_NAME, Command: jsonata(`['pitr', '--from-state', $string(${stateForTask})]`) }] },
        StartedBy: 'pgops-pitr',
      },
      TimeoutSeconds: OUTPUT_TASK_TIMEOUT.toSeconds(),
      // The task's exit code, checked next (-1: none reported, e.g. the container never started).
      Assign: { outputTask: jsonata('$states.result.TaskArn'), outputExit: jsonata(`($c := $states.result.Containers[Name = '${TASK_CONTAINER_NAME}']; $exists($c.ExitCode) ? $c.ExitCode : -1)`) },
      Output: {},
    },
  });
  state.addCatch(deleteEntry(scope), failWith(PITR_STATES.output));
  return state;
}

/** Publish the alert (alerts/alerter.ts's shape) built once in a JSONata block: its subject and message. */
function publishState(scope: Construct, id: string, topicArn: string, alert: string): sfn.CustomState {
  return new sfn.CustomState(scope, id, {
    stateJson: {
      Type: 'Task',
      Resource: `arn:${Aws.PARTITION}:states:::sns:publish`,
      Arguments: jsonata(`($alert := ${alert}; {
        'TopicArn': '${topicArn}',
        'Subject': $substring('[' & $uppercase($alert.severity) & '] pgops pitr ' & $pitr.environment & '/' & $database & ': ' & $alert.summary, 0, 100),
        'Message': $string($alert),
        'MessageAttributes': {'severity': {'DataType': 'String', 'StringValue': $alert.severity}, 'job': {'DataType': 'String', 'StringValue': 'pitr'}}
      })`),
      Output: {},
    },
  });
}

/** The success and failure notices; a failure ends the execution as failed (the alarm counts it), even when publishing fails. */
function notifyStates(scope: Construct, topicArn: string): { success: sfn.CustomState; failure: sfn.CustomState } {
  const copyName = `($exists($pitr.restored.cluster) ? 'cluster ' & $pitr.restored.cluster : 'instance ' & $pitr.restored.instance)`;
  const to = `($pitr.target.type = 'time' ? $pitr.target.value : 'its latest restorable time')`;
  const okAlert = `(${alertExpression('info', `'restored ' & $pitr.source.id & ' to ' & ${to} & ': output produced' & ($pitr.keep ? ', the copy is kept until ' & $pitr.restored.expires : ', the copy is being deleted')`, `{'execution': $states.context.Execution.Id, 'copy': ${copyName}, 'outputTask': $outputTask, 'output': $pitr.output.kind}`)})`;
  const failAlert = `(${alertExpression('critical', `'point-in-time recovery of ' & $pitr.source.id & ' failed at ' & $failure.step & ': ' & $failure.error & ($count($notDeleted) > 0 ? '; the copy could not be deleted (cleanup deletes it after ' & $pitr.restored.expires & ')' : '')`, `{'execution': $states.context.Execution.Id, 'copy': ${copyName}, 'error': $failure.error, 'cause': $failure.cause, 'notDeleted': $notDeleted}`)})`;
  const success = publishState(scope, PITR_STATES.notifySuccess, topicArn, okAlert);
  const failure = publishState(scope, PITR_STATES.notifyFailure, topicArn, failAlert);
  const failed = new sfn.Fail(scope, PITR_STATES.failed, { comment: 'A failed execution: the ExecutionsFailed alarm', error: 'PitrFailed', cause: 'see the failure notice on the alert topic and the execution history' });
  failure.addCatch(failed, { errors: ['States.ALL'] }).next(failed);
  // The output is done but nobody heard of it: a failed execution, which the alarm reports.
  success.addCatch(failed, { errors: ['States.ALL'] }).next(new sfn.Succeed(scope, 'Succeeded'));
  return { success, failure };
}

/**
 * The delete steps: the instance, then (Aurora) the cluster, each only when it carries this run's
 * pgops:run tag; gone is done; any other failure is named in the notice. Then the outcome: the
 * failure recorded on the way, a copy not deleted, or success.
 */
function deleteStates(scope: Construct, notify: { success: sfn.IChainable; failure: sfn.IChainable }): void {
  const S = PITR_STATES;
  const own = `($count($found.TagList[Key = '${COPY_TAG.run}' and Value = $pitr.runId]) > 0 and $count($found.TagList[Key = '${COPY_TAG.purpose}' and Value = '${COPY_PURPOSE}']) > 0)`;
  const notDeleted = (what: 'instance' | 'cluster') => ({
    errors: ['States.ALL'],
    assign: { notDeleted: jsonata(`$append($notDeleted, ['${what} ' & $pitr.restored.${what} & ': ' & $states.errorOutput.Error])`) },
  });
  const findInstance = rdsTask(scope, 'FindCopyInstance', 'describeDBInstances', { DBInstanceIdentifier: jsonata('$pitr.restored.instance') }, { Assign: { found: jsonata('$states.result.DBInstances[0]') }, Output: {} });
  const deleteInstance = rdsTask(scope, S.deleteInstance, 'deleteDBInstance', { DBInstanceIdentifier: jsonata('$pitr.restored.instance'), SkipFinalSnapshot: true, DeleteAutomatedBackups: true }, { Output: {} });
  // An Aurora member takes neither snapshot nor backup options.
  const deleteClusterInstance = rdsTask(scope, S.deleteClusterInstance, 'deleteDBInstance', { DBInstanceIdentifier: jsonata('$pitr.restored.instance') }, { Output: {} });
  const findCluster = rdsTask(scope, 'FindCopyCluster', 'describeDBClusters', { DBClusterIdentifier: jsonata('$pitr.restored.cluster') }, { Assign: { found: jsonata('$states.result.DBClusters[0]') }, Output: {} });
  const deleteCluster = rdsTask(scope, S.deleteCluster, 'deleteDBCluster', { DBClusterIdentifier: jsonata('$pitr.restored.cluster'), SkipFinalSnapshot: true, DeleteAutomatedBackups: true }, { Output: {} });
  const copyNotDeleted = sfn.Pass.jsonata(scope, 'CopyNotDeleted', { assign: { failure: jsonata(`{'step': 'delete', 'error': 'CopyNotDeleted', 'cause': $join($notDeleted, '; ')}`) } }).next(notify.failure);
  const outcome = sfn.Choice.jsonata(scope, 'Outcome')
    .when(sfn.Condition.jsonata(jsonata('$exists($failure.error)')), notify.failure)
    .when(sfn.Condition.jsonata(jsonata('$count($notDeleted) > 0')), copyNotDeleted)
    .otherwise(notify.success);
  const isCluster = sfn.Choice.jsonata(scope, 'IsCluster').when(sfn.Condition.jsonata(jsonata('$exists($pitr.restored.cluster)')), findCluster).otherwise(outcome);
  deleteEntry(scope).next(findInstance);
  findInstance.addCatch(isCluster, { errors: ['Rds.DbInstanceNotFoundException'] }).addCatch(isCluster, notDeleted('instance'));
  findInstance.next(sfn.Choice.jsonata(scope, 'InstanceIsOwnCopy')
    .when(sfn.Condition.jsonata(jsonata(`${own} and $found.DBInstanceStatus != 'deleting' and $exists($pitr.restored.cluster)`)), deleteClusterInstance)
    .when(sfn.Condition.jsonata(jsonata(`${own} and $found.DBInstanceStatus != 'deleting'`)), deleteInstance)
    .otherwise(isCluster));
  for (const t of [deleteInstance, deleteClusterInstance]) {
    t.addRetry({ errors: ['Rds.InvalidDbInstanceStateException'], interval: Duration.seconds(30), maxAttempts: 10, backoffRate: 1.5 });
    t.addCatch(isCluster, notDeleted('instance')).next(isCluster);
  }
  findCluster.addCatch(outcome, { errors: ['Rds.DbClusterNotFoundException'] }).addCatch(outcome, notDeleted('cluster'));
  findCluster.next(sfn.Choice.jsonata(scope, 'ClusterIsOwnCopy')
    .when(sfn.Condition.jsonata(jsonata(`${own} and $found.Status != 'deleting'`)), deleteCluster)
    .otherwise(outcome));
  // The cluster refuses deletion until its instance is deleting: retried.
  deleteCluster.addRetry({ errors: ['Rds.InvalidDbClusterStateException'], interval: Duration.seconds(30), maxAttempts: 20, backoffRate: 1 });
  deleteCluster.addCatch(outcome, notDeleted('cluster')).next(outcome);
}

/** The whole machine: start -> restore -> wait -> output -> (keep?) delete -> notify. */
function definition(scope: Construct, props: ManagedPitrProps, bound: number): sfn.IChainable {
  const { ctx, managed } = props;
  const notify = notifyStates(scope, ctx.alerting.topic.topicArn);
  deleteStates(scope, notify);
  const output = outputState(scope, ctx, props.task);
  const outputFailed = sfn.Pass.jsonata(scope, 'OutputFailed', {
    assign: { failure: jsonata(`{'step': '${PITR_STATES.output}', 'error': 'TaskExitCode', 'cause': 'the output task ' & $outputTask & ' exited with ' & $string($outputExit) & ': see its log (stream prefix job)'}`) },
  }).next(deleteEntry(scope));
  output.next(sfn.Choice.jsonata(scope, 'OutputSucceeded')
    .when(sfn.Condition.jsonata(jsonata('$outputExit != 0')), outputFailed)
    .otherwise(sfn.Choice.jsonata(scope, 'KeepCopy').when(sfn.Condition.jsonata(jsonata('$pitr.keep = true')), notify.success).otherwise(deleteEntry(scope))));
  const wait = waitStates(scope, managed.pitr.pollSeconds, bound, managed.pitr.restoreTimeoutMinutes, output);
  const restore = restoreStates(scope);
  restore.instance.next(wait.instance);
  restore.cluster.next(wait.cluster);
  const start = sfn.Pass.jsonata(scope, PITR_STATES.start, {
    comment: 'The input is the run\'s state document (pgops pitr --dry-run --json: plan.state)',
    // Every variable is set here, so each later state reads a defined one (null until known).
    assign: { pitr: jsonata('$states.input'), database: ctx.database.id, polls: 0, failure: null, notDeleted: jsonata('[]'), cluster: null, instance: null, found: null, outputTask: null, outputExit: null },
  });
  return start.next(sfn.Choice.jsonata(scope, 'SourceKind')
    .when(sfn.Condition.jsonata(jsonata(`$pitr.source.kind = 'cluster'`)), restore.cluster)
    .when(sfn.Condition.jsonata(jsonata(`$pitr.source.kind = 'instance'`)), restore.instance)
    .otherwise(sfn.Pass.jsonata(scope, 'BadInput', {
      assign: { failure: jsonata(`{'step': 'input', 'error': 'InvalidInput', 'cause': 'source.kind must be instance or cluster: start the execution with pgops pitr --in-aws, or with the plan.state of pgops pitr --dry-run --json'}`) },
    }).next(notify.failure)));
}

export class ManagedPitrStateMachine extends Construct {
  readonly stateMachine: sfn.StateMachine;
  readonly failedAlarm: cloudwatch.Alarm;
  readonly logGroup: logs.LogGroup;
  readonly maxPolls: number;

  constructor(scope: Construct, id: string, props: ManagedPitrProps) {
    super(scope, id);
    const { ctx, source } = props;
    const { config, database: db } = ctx;
    const name = `pgops-${config.environment}-${db.id}-pitr`;
    this.maxPolls = maxPolls(props.managed);
    this.logGroup = new logs.LogGroup(this, 'Logs', { retention: ctx.logRetention });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineName: name,
      comment: `pgops ${config.environment}: point-in-time recovery of ${source.kind === 'instance' ? 'RDS instance' : 'Aurora cluster'} ${source.id} (database ${db.id}): restore a copy, produce the output on the long-job task, delete the copy, notify`,
      queryLanguage: sfn.QueryLanguage.JSONATA,
      definitionBody: sfn.DefinitionBody.fromChainable(definition(this, props, this.maxPolls)),
      tracingEnabled: true,
      logs: { destination: this.logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
    });
    this.grant(props);
    this.failedAlarm = topicAlarm(this, 'FailedAlarm', {
      alarmName: `${name}-failed`,
      description: `A point-in-time recovery of ${source.id} (database ${db.id}) failed in AWS: the failure notice on this topic names the step and the error; the execution history of ${name} shows it. The copy was deleted unless the notice says otherwise (cleanup deletes it after its pgops:expires tag).`,
      metric: this.stateMachine.metricFailed({ period: Duration.minutes(5), statistic: 'Sum' }),
      threshold: 1,
      topic: ctx.alerting.topic,
    });
  }

  /** Least privilege: this database's source, copies named pgops-pitr-<source>-* and tagged pgops:purpose=pitr, its task. */
  private grant(props: ManagedPitrProps): void {
    const { ctx, source, task } = props;
    const add = (s: iam.PolicyStatement) => this.stateMachine.addToRolePolicy(s);
    const isCluster = source.kind === 'cluster';
    const prefix = copyNamePrefix(source.id, isCluster ? 2 : 0);
    const copyDb = rdsArn(this, 'db', `${prefix}*`);
    const copyCluster = rdsArn(this, 'cluster', `${prefix}*`);
    const requestTag = { StringEquals: { [`aws:RequestTag/${COPY_TAG.purpose}`]: COPY_PURPOSE } };
    const resourceTag = { StringEquals: { [`aws:ResourceTag/${COPY_TAG.purpose}`]: COPY_PURPOSE } };
    // The copy's subnet group and parameter groups come from the source (or config) at plan time.
    const network = [rdsArn(this, 'subgrp', '*'), rdsArn(this, 'pg', '*'), rdsArn(this, 'og', '*')];
    if (isCluster) {
      add(new iam.PolicyStatement({
        sid: 'RestoreCopyCluster',
        actions: ['rds:RestoreDBClusterToPointInTime', 'rds:AddTagsToResource'],
        resources: [rdsArn(this, 'cluster', source.id), copyCluster, rdsArn(this, 'cluster-pg', '*'), ...network],
        conditions: requestTag,
      }));
      add(new iam.PolicyStatement({
        sid: 'CreateCopyClusterInstance',
        actions: ['rds:CreateDBInstance', 'rds:AddTagsToResource'],
        resources: [copyDb, copyCluster, ...network],
        conditions: requestTag,
      }));
      add(new iam.PolicyStatement({ sid: 'DeleteCopyCluster', actions: ['rds:DeleteDBCluster'], resources: [copyCluster], conditions: resourceTag }));
      add(new iam.PolicyStatement({ sid: 'DescribeCopyCluster', actions: ['rds:DescribeDBClusters'], resources: [copyCluster] }));
    } else {
      add(new iam.PolicyStatement({
        sid: 'RestoreCopyInstance',
        actions: ['rds:RestoreDBInstanceToPointInTime', 'rds:AddTagsToResource'],
        resources: [rdsArn(this, 'db', source.id), copyDb, ...network],
        conditions: requestTag,
      }));
    }
    add(new iam.PolicyStatement({ sid: 'DeleteCopyInstance', actions: ['rds:DeleteDBInstance'], resources: [copyDb], conditions: resourceTag }));
    add(new iam.PolicyStatement({ sid: 'DescribeCopyInstance', actions: ['rds:DescribeDBInstances'], resources: [copyDb] }));

    for (const s of runTaskStatements(task.taskDefinition.taskDefinitionArn, ctx.clusterArn, task.passRoleArns, 'PitrOutputTask')) add(s);
    add(new iam.PolicyStatement({
      sid: 'FollowPitrOutputTask',
      actions: ['ecs:DescribeTasks', 'ecs:StopTask'],
      resources: [Arn.format({ service: 'ecs', resource: 'task', resourceName: '*' }, Stack.of(this))],
      conditions: { ArnEquals: { 'ecs:cluster': ctx.clusterArn } },
    }));
    // runTask.sync learns of the task's end through this managed EventBridge rule.
    add(new iam.PolicyStatement({
      sid: 'EcsSyncRule',
      actions: ['events:PutTargets', 'events:PutRule', 'events:DescribeRule'],
      resources: [Arn.format({ service: 'events', resource: 'rule', resourceName: 'StepFunctionsGetEventsForECSTaskRule' }, Stack.of(this))],
    }));
    for (const s of ctx.alerting.publishStatements()) add(s);

    // The output task may give the copy the secret's master password (the copy holds the one of its restore time).
    const modify = isCluster ? { action: 'rds:ModifyDBCluster', arn: copyCluster, describe: 'rds:DescribeDBClusters' } : { action: 'rds:ModifyDBInstance', arn: copyDb, describe: 'rds:DescribeDBInstances' };
    task.taskRole.addToPolicy(new iam.PolicyStatement({ sid: 'ResetCopyMasterPassword', actions: [modify.action], resources: [modify.arn], conditions: resourceTag }));
    task.taskRole.addToPolicy(new iam.PolicyStatement({ sid: 'DescribePitrCopy', actions: [...new Set([modify.describe, 'rds:DescribeDBInstances'])], resources: [...new Set([modify.arn, copyDb])] }));
    this.acknowledgeWildcards(prefix, isCluster, task);
  }

  private acknowledgeWildcards(prefix: string, isCluster: boolean, task: LongJobTask): void {
    const id = (resource: string) => `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:${resource}]`;
    const rds = (type: string, name: string) => id(`rds:<AWS::Region>:<AWS::AccountId>:${type}:${name}`);
    const copies = {
      reason: `Each run names its copy pgops-pitr-<source>-<minute> (not known in advance); the wildcard stops at ${prefix}, this database's source, and delete and modify also require the tag ${COPY_TAG.purpose}=${COPY_PURPOSE}.`,
    };
    const role = this.stateMachine.role;
    acknowledge(role, {
      id: NAG.xrayTraces.id,
      reason: `${NAG.xrayTraces.reason} Likewise the CloudWatch Logs delivery actions Step Functions needs to log executions (logs:CreateLogDelivery and the like), which have no resource-level permissions either.`,
    });
    const copyIds = [rds('db', `${prefix}*`), ...(isCluster ? [rds('cluster', `${prefix}*`)] : [])];
    for (const ackId of copyIds) acknowledge(role, { id: ackId, ...copies });
    acknowledge(task.taskRole, { id: rds(isCluster ? 'cluster' : 'db', `${prefix}*`), ...copies });
    if (isCluster) acknowledge(task.taskRole, { id: rds('db', `${prefix}*`), ...copies });
    const groups = {
      reason: 'The restore names the subnet group and parameter/option groups the plan took from the source (or config) at run time; the grant is for restore and create calls only, which must carry the tag pgops:purpose=pitr, and attaching a group changes nothing in it.',
    };
    for (const type of ['subgrp', 'pg', 'og', ...(isCluster ? ['cluster-pg'] : [])]) acknowledge(role, { id: rds(type, '*'), ...groups });
    acknowledge(role, {
      id: id('ecs:<AWS::Region>:<AWS::AccountId>:task/*'),
      reason: 'runTask.sync follows and, on a timeout, stops the output task, whose id is not known in advance; the condition ecs:cluster limits it to tasks of the pgops cluster.',
    });
  }
}
