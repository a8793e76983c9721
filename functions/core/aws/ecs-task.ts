// Starting the long-job task on Fargate (ECS RunTask). The task reads its database credentials
// from ECS secrets: nothing secret is ever put in the overrides, which CloudTrail records.
import { RunTaskCommand, type ECSClient } from '@aws-sdk/client-ecs';
import type { FargateSettings } from '../config.ts';
import { PgopsError } from '../errors.ts';

export class DispatchError extends PgopsError {}

export interface TaskRequest {
  /** The task's command line after the entry point, e.g. ["backup", "--database", "auth"]. */
  command: string[];
  /** Plain, non-secret environment additions (database id, options). */
  environment?: Record<string, string>;
  startedBy?: string;
}

const SECRET_NAME = /pass|secret|token|key|credential|webhook/i;

export async function startFargateTask(ecs: ECSClient, settings: FargateSettings, req: TaskRequest): Promise<{ taskArn: string }> {
  const environment = Object.entries(req.environment ?? {}).map(([name, value]) => {
    if (SECRET_NAME.test(name)) throw new DispatchError(`refusing to pass ${name} in the task overrides: secrets reach the task through ECS secrets`);
    return { name, value };
  });
  let res;
  try {
    res = await ecs.send(new RunTaskCommand({
      cluster: settings.cluster,
      taskDefinition: settings.taskDefinition,
      launchType: 'FARGATE',
      count: 1,
      startedBy: (req.startedBy ?? 'pgops').slice(0, 128),
      networkConfiguration: { awsvpcConfiguration: { subnets: settings.subnets, securityGroups: settings.securityGroups, assignPublicIp: 'DISABLED' } },
      overrides: { containerOverrides: [{ name: settings.containerName, command: req.command, environment }] },
    }));
  } catch (err) {
    throw new DispatchError(`could not start the Fargate task on cluster ${settings.cluster}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  // RunTask answers 200 with `failures` when no task could be placed (capacity, bad subnet, ...).
  const failures = res.failures ?? [];
  const taskArn = res.tasks?.[0]?.taskArn;
  if (failures.length > 0 || !taskArn) {
    const why = failures.map((f) => `${f.reason ?? 'unknown'}${f.detail ? ` (${f.detail})` : ''}${f.arn ? ` on ${f.arn}` : ''}`).join('; ') || 'no task was returned';
    throw new DispatchError(`the Fargate task did not start: ${why}`);
  }
  return { taskArn };
}
