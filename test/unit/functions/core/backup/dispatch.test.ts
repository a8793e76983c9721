// The inline-vs-Fargate policy and the RunTask adapter behind it (ECS mocked; the size query is
// stubbed by mode: only auto mode asks the database).
import { ECSClient, RunTaskCommand } from '@aws-sdk/client-ecs';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { DispatchError } from '../../../../../functions/core/aws/ecs-task.ts';
import { chooseBackupPlace, dispatchBackup, taskCommand, type DispatchDeps } from '../../../../../functions/core/backup/dispatch.ts';
import type { BackupManifest } from '../../../../../functions/core/catalog/manifest.ts';
import { ConfigError } from '../../../../../functions/core/errors.ts';
import { silentLogger } from '../../../../../functions/core/logger.ts';

const ecs = mockClient(ECSClient);
const TASK_ARN = 'arn:aws:ecs:eu-west-1:123456789012:task/pgops/0123456789abcdef';
const FARGATE = { cluster: 'pgops', taskDefinition: 'pgops-long-job:3', containerName: 'pgops', subnets: ['subnet-0a1'], securityGroups: ['sg-0c3'] };

beforeEach(() => ecs.reset());

function deps(overrides: Partial<DispatchDeps> = {}): DispatchDeps & { inline: unknown[] } {
  const inline: unknown[] = [];
  return {
    inline,
    target: () => Promise.reject(new Error('auto mode is not used here: no database')),
    session: { lockTimeoutMs: 5000, statementTimeoutMs: 0, connectTimeoutMs: 1000 },
    logger: silentLogger,
    databaseId: () => 'orders',
    inlineMaxBytes: 1024,
    fargate: FARGATE,
    ecs: () => new ECSClient({ region: 'eu-west-1' }),
    backupInline: (o) => { inline.push(o); return Promise.resolve({ id: 'b1' } as BackupManifest); },
    ...overrides,
  };
}

describe('chooseBackupPlace', () => {
  it('auto: inline up to inlineMaxBytes, Fargate above it', () => {
    expect(chooseBackupPlace('auto', 1024, 1024)).toBe('inline');
    expect(chooseBackupPlace('auto', 1025, 1024)).toBe('fargate');
    expect(chooseBackupPlace('auto', undefined, 1024)).toBe('inline');
  });

  it('an explicit mode wins over the size', () => {
    expect(chooseBackupPlace('inline', 10 ** 12, 1024)).toBe('inline');
    expect(chooseBackupPlace('fargate', 1, 1024)).toBe('fargate');
  });
});

describe('dispatchBackup', () => {
  it('inline mode runs the backup here, asking ECS nothing', async () => {
    const d = deps();
    await expect(dispatchBackup(d, 'inline', { tables: ['items'] })).resolves.toEqual({ id: 'b1' });
    expect(d.inline).toEqual([{ tables: ['items'] }]);
    expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(0);
  });

  it('fargate mode starts the task with the same command line and the database id, no secret', async () => {
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }], failures: [] });
    await expect(dispatchBackup(deps(), 'fargate', { schemaOnly: true, excludeTables: ['audit_logs'] })).resolves.toEqual({ dispatched: 'fargate', taskArn: TASK_ARN, databaseBytes: undefined });
    const input = ecs.commandCalls(RunTaskCommand)[0]!.args[0].input;
    expect(input).toMatchObject({
      cluster: 'pgops', taskDefinition: 'pgops-long-job:3', launchType: 'FARGATE', startedBy: 'pgops-backup-orders',
      overrides: { containerOverrides: [{ name: 'pgops', command: ['backup', '--schema-only', '--exclude-table', 'audit_logs'], environment: [{ name: 'PGOPS_DATABASE_ID', value: 'orders' }] }] },
    });
  });

  it('fargate mode without the Fargate settings is a configuration error', async () => {
    await expect(dispatchBackup(deps({ fargate: undefined }), 'fargate', {})).rejects.toThrow(ConfigError);
    await expect(dispatchBackup(deps({ fargate: undefined }), 'fargate', {})).rejects.toThrow(/Fargate task is not configured/);
  });

  it('a RunTask answer with failures, or a rejected call, is a DispatchError naming the reason', async () => {
    ecs.on(RunTaskCommand).resolves({ tasks: [], failures: [{ reason: 'RESOURCE:ENI', arn: 'arn:x' }] });
    await expect(dispatchBackup(deps(), 'fargate', {})).rejects.toThrow(/the Fargate task did not start: RESOURCE:ENI on arn:x/);
    ecs.reset();
    ecs.on(RunTaskCommand).rejects(new Error('AccessDeniedException: not authorized to perform ecs:RunTask'));
    const err = await dispatchBackup(deps(), 'fargate', {}).catch((e: unknown) => e) as DispatchError;
    expect(err).toBeInstanceOf(DispatchError);
    expect(err.message).toMatch(/could not start the Fargate task on cluster pgops: AccessDeniedException/);
    expect(err.cause).toBeInstanceOf(Error);
  });

  it('maps options to the task command line', () => {
    expect(taskCommand({ dataOnly: true, tables: ['a', 'b'] })).toEqual(['backup', '--data-only', '--table', 'a', '--table', 'b']);
    expect(taskCommand({ rowCounts: 'exact' })).toEqual(['backup', '--row-counts', 'exact']);
  });
});
