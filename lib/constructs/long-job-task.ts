// The Fargate task for jobs that outlive Lambda's 15 minutes (large pg_dump, restores, restore
// tests, base backups, point-in-time recovery) and for the WAL receiver service, one task
// definition per database and job, on the shared cluster.
import type { Duration } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type * as ecrAssets from 'aws-cdk-lib/aws-ecr-assets';
import { acknowledge, NAG } from '../nag.ts';
import { TASK_DEFAULT_COMMAND, TASK_ENTRYPOINT } from './job-image.ts';

export const TASK_CONTAINER_NAME = 'pgops';

export interface LongJobTaskProps {
  family: string;
  image: ecrAssets.DockerImageAsset;
  architecture: 'arm64' | 'x86_64';
  cpu: number;
  memoryMiB: number;
  /** 21 to 200 GiB; without it, Fargate's free 20 GiB. */
  ephemeralStorageGiB?: number;
  /** Plain settings only: ids, ARNs, names. The database password never appears here. */
  environment: Record<string, string>;
  /** Values injected by ECS from Secrets Manager at task start (never plain environment). */
  secrets?: Record<string, ecs.Secret>;
  logRetention: logs.RetentionDays;
  /** What the roles are for, in their descriptions (default "long-job task"). */
  purpose?: string;
  /** The command after the entry point when none is given at start (default: TASK_DEFAULT_COMMAND). */
  command?: string[];
  /** Between SIGTERM and SIGKILL (ECS's default: 30 s). */
  stopTimeout?: Duration;
}

export class LongJobTask extends Construct {
  readonly taskDefinition: ecs.FargateTaskDefinition;
  readonly taskRole: iam.Role;
  readonly executionRole: iam.Role;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: LongJobTaskProps) {
    super(scope, id);
    this.logGroup = new logs.LogGroup(this, 'Logs', { retention: props.logRetention });
    // The job's own rights (storage, secret, alerts) are added by the caller.
    this.taskRole = new iam.Role(this, 'TaskRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: `pgops ${props.family} ${props.purpose ?? 'long-job task'}`,
    });
    // Pulls the image, writes the logs, resolves `secrets`: granted below by CDK, nothing else.
    this.executionRole = new iam.Role(this, 'ExecutionRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: `pgops ${props.family} task execution (image pull, logs)`,
    });

    this.taskDefinition = new ecs.FargateTaskDefinition(this, 'TaskDefinition', {
      family: props.family,
      cpu: props.cpu,
      memoryLimitMiB: props.memoryMiB,
      ephemeralStorageGiB: props.ephemeralStorageGiB,
      runtimePlatform: {
        cpuArchitecture: props.architecture === 'arm64' ? ecs.CpuArchitecture.ARM64 : ecs.CpuArchitecture.X86_64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
      taskRole: this.taskRole,
      executionRole: this.executionRole,
    });
    this.taskDefinition.addContainer('Container', {
      containerName: TASK_CONTAINER_NAME,
      image: ecs.ContainerImage.fromDockerImageAsset(props.image),
      entryPoint: TASK_ENTRYPOINT,
      command: props.command ?? TASK_DEFAULT_COMMAND,
      environment: props.environment,
      secrets: props.secrets,
      logging: ecs.LogDrivers.awsLogs({ streamPrefix: 'job', logGroup: this.logGroup }),
      essential: true,
      stopTimeout: props.stopTimeout,
    });
    acknowledge(this.taskDefinition, NAG.taskEnvironment);
    acknowledge(this.executionRole, NAG.ecrAuthorizationToken);
  }

  /** The two roles whoever starts the task must be allowed to pass. */
  get passRoleArns(): string[] {
    return [this.taskRole.roleArn, this.executionRole.roleArn];
  }
}
