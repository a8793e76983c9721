// The WAL receiver of a database in stream mode: an ECS service that keeps exactly one
// `pgops wal receive` (pg_receivewal through the database's replication slot) running, restarts it
// when it stops, and never runs two at once (two receivers on one slot fail). Its role archives
// WAL under <prefix>/<db>/wal/ and nothing else. An alarm fires when no receiver task runs.
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type { Construct } from 'constructs';
import { allowObjects } from '../../permissions.ts';
import { topicAlarm } from '../alarm.ts';
import type { LongJobTask } from '../long-job-task.ts';
import { containerEnvironment, type JobContext } from './context.ts';
import { databaseTask } from './task.ts';

/** pg_receivewal and the uploads of 16 MB segments (gzip): half a vCPU keeps up with a busy primary. */
export const RECEIVER_SIZE = { cpu: 512, memoryMiB: 1024 } as const;

/** The receiver's command line after the task's entry point (`pgops --json`). */
export function walReceiveCommand(slot: string): string[] {
  return ['wal', 'receive', '--slot', slot, '--create-slot'];
}

export interface WalReceiver {
  task: LongJobTask;
  service: ecs.CfnService;
  serviceName: string;
  notRunningAlarm: cloudwatch.Alarm;
}

export function walReceiver(scope: Construct, ctx: JobContext, slot: string): WalReceiver {
  const { config, database: db } = ctx;
  const serviceName = `pgops-${config.environment}-${db.id}-wal-receiver`;
  const task = databaseTask(scope, 'WalReceiverTask', ctx, {
    family: serviceName,
    purpose: 'WAL receiver (pg_receivewal through a replication slot)',
    ...RECEIVER_SIZE,
    environment: containerEnvironment(ctx, ['physical']),
    command: walReceiveCommand(slot),
    // On SIGTERM it uploads the partial segment, then exits 0: ECS's longest grace period.
    stopTimeout: Duration.seconds(120),
  });
  // Get: an identical segment already archived is a success (restarts); Delete: the archived
  // `.partial` of a segment goes once the finished segment is stored.
  allowObjects(task.taskRole, 'ArchiveWal', ctx.location, ['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload', 's3:DeleteObject'], 'wal/*');
  const service = receiverService(scope, ctx, task, serviceName);
  return { task, service, serviceName, notRunningAlarm: notRunningAlarm(scope, ctx, serviceName, slot) };
}

function receiverService(scope: Construct, ctx: JobContext, task: LongJobTask, serviceName: string): ecs.CfnService {
  const service = new ecs.CfnService(scope, 'WalReceiverService', {
    serviceName,
    cluster: ctx.clusterArn,
    taskDefinition: task.taskDefinition.taskDefinitionArn,
    launchType: 'FARGATE',
    platformVersion: 'LATEST',
    desiredCount: 1,
    deploymentConfiguration: {
      // The old receiver stops before the new one starts: two on one slot would fail.
      minimumHealthyPercent: 0,
      maximumPercent: 100,
      // A revision whose task keeps failing is rolled back instead of retried forever.
      deploymentCircuitBreaker: { enable: true, rollback: true },
    },
    // One task: nothing to balance, and a rebalancing must never start a second receiver.
    availabilityZoneRebalancing: 'DISABLED',
    networkConfiguration: {
      awsvpcConfiguration: { subnets: ctx.network.subnetIds, securityGroups: ctx.network.securityGroupIds, assignPublicIp: 'DISABLED' },
    },
    propagateTags: 'SERVICE',
    enableEcsManagedTags: true,
  });
  // The first task must find its roles' policies (image pull, secret, storage) in place.
  service.node.addDependency(task.taskRole, task.executionRole);
  return service;
}

/**
 * No receiver task running. AWS/ECS reports a service's CPUUtilization every minute while one of its
 * tasks runs, and nothing otherwise (free; no Container Insights needed): its sample count below 1,
 * or no data at all, for two 5-minute periods means no receiver. A deployment's stop-then-start
 * gap stays under that.
 */
function notRunningAlarm(scope: Construct, ctx: JobContext, serviceName: string, slot: string): cloudwatch.Alarm {
  const { config, database: db } = ctx;
  return topicAlarm(scope, 'WalReceiverNotRunningAlarm', {
    alarmName: `pgops-${config.environment}-${db.id}-wal-receiver-not-running`,
    description: `No WAL receiver task of ${db.id} has run for 10 minutes: WAL is not being archived (point-in-time recovery cannot reach past the last archived segment) and the replication slot ${slot} holds WAL on the primary, whose disk fills. `
      + `Read the service's events (aws ecs describe-services --cluster <ClusterArn> --services ${serviceName}) and the last task's log: usual causes are a role without REPLICATION, no pg_hba.conf replication line for the task's subnets, or a slot that was dropped or invalidated (max_slot_wal_keep_size). `
      + 'While the slot lives, a restarted receiver resumes without a gap; if the slot was lost, `pgops wal status` names the gap: take a new base backup once the receiver runs again.',
    metric: new cloudwatch.Metric({
      namespace: 'AWS/ECS',
      metricName: 'CPUUtilization',
      dimensionsMap: { ClusterName: ctx.clusterName, ServiceName: serviceName },
      statistic: 'SampleCount',
      period: Duration.minutes(5),
    }),
    threshold: 1,
    comparison: 'below',
    evaluationPeriods: 2,
    datapointsToAlarm: 2,
    missingDataBreaches: true,
    topic: ctx.alerting.topic,
  });
}
