// Rendering the events AWS sends to the alert topic as alerts (moved from the notify-slack handler's tests).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Alert } from '../../../../../functions/core/alerts/alerter.ts';
import { toAlert } from '../../../../../functions/core/alerts/aws-events.ts';
import { renderSlackMessage, type SlackMessage } from '../../../../../functions/core/alerts/slack.ts';
import { REPO_ROOT } from '../../../../helpers/cli.ts';

const fixture = (name: string): string => readFileSync(join(REPO_ROOT, 'test', 'fixtures', name), 'utf8');
const alarmEvent = JSON.parse(fixture('sns-cloudwatch-alarm.json')) as { Records: Array<{ Sns: { Message: string; Subject: string } }> };
const ecsEvent = JSON.parse(fixture('ecs-task-stopped.json')) as Record<string, unknown> & { detail: Record<string, unknown> };
const pgopsAlert = JSON.parse(fixture('pgops-alert.json')) as Alert;

const texts = (m: SlackMessage): string => JSON.stringify(m.blocks);

describe('AWS events as alerts', () => {
  it('renders a CloudWatch alarm state change', () => {
    const r = alarmEvent.Records[0]!.Sns;
    const a = toAlert(r.Message, r.Subject, 'production')!;
    expect(a).toMatchObject({
      severity: 'critical',
      job: 'cloudwatch-alarm',
      database: 'app',
      environment: 'production',
      time: '2026-11-22T05:05:12.345Z',
      runbook: 'https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#alarmsV2:alarm/pgops-production-app-health-status',
    });
    expect(a.summary).toMatch(/^pgops-production-app-health-status is ALARM \(pgops health check reports CRITICAL/);
    expect(a.summary).toContain('Threshold Crossed: 1 out of the last 1 datapoints');
    const m = renderSlackMessage(a);
    expect(m.blocks[0]).toMatchObject({ type: 'header', text: { text: ':red_circle: CRITICAL · production · app · cloudwatch-alarm' } });
    expect(texts(m)).toContain('*metric*\\npgops/HealthStatus');
    expect(texts(m)).toContain('*condition*\\nGreaterThanOrEqualToThreshold 2');
    expect(texts(m)).toContain('*state*\\nOK → ALARM');
    expect(texts(m)).toContain('<https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#alarmsV2:alarm/pgops-production-app-health-status|Runbook>');

    const ok = JSON.parse(r.Message) as Record<string, unknown>;
    expect(toAlert(JSON.stringify({ ...ok, NewStateValue: 'OK', OldStateValue: 'ALARM' }), undefined, 'production')!.severity).toBe('resolved');
    expect(toAlert(JSON.stringify({ ...ok, NewStateValue: 'INSUFFICIENT_DATA' }), undefined, 'production')!.severity).toBe('warning');
  });

  it('renders an ECS task-stopped event with exit code 1', () => {
    const a = toAlert(JSON.stringify(ecsEvent), undefined, 'production')!;
    expect(a).toMatchObject({ severity: 'critical', job: 'fargate backup --jobs 4', database: 'app', environment: 'production', time: '2026-11-22T02:47:31.264Z' });
    expect(a.summary).toBe('ECS task pgopsproductionJobTaskDef8C1F3E2A:7 stopped: pgops exited with code 1. Essential container in task exited');
    expect(a.details).toMatchObject({ cluster: 'pgops-production', task: '0b69d5c0d655403899f5bd3a0ad8a4c5', stopCode: 'EssentialContainerExited', startedBy: 'pgops-backup' });
    expect(a.runbook).toBe('https://eu-west-1.console.aws.amazon.com/ecs/v2/clusters/pgops-production/tasks/0b69d5c0d655403899f5bd3a0ad8a4c5?region=eu-west-1');
    const m = renderSlackMessage(a);
    expect(m.text).toBe('[CRITICAL] pgops fargate backup --jobs 4 production/app: ECS task pgopsproductionJobTaskDef8C1F3E2A:7 stopped: pgops exited with code 1. Essential container in task exited');
  });

  it('does not post a task that stopped cleanly or a non-STOPPED transition', () => {
    const clean = structuredClone(ecsEvent);
    (clean.detail.containers as Array<{ exitCode: number }>)[0]!.exitCode = 0;
    expect(toAlert(JSON.stringify(clean), undefined, 'p')).toBeNull();
    const running = structuredClone(ecsEvent);
    running.detail.lastStatus = 'RUNNING';
    expect(toAlert(JSON.stringify(running), undefined, 'p')).toBeNull();
    const oom = structuredClone(ecsEvent);
    Object.assign((oom.detail.containers as Array<Record<string, unknown>>)[0]!, { exitCode: 137, reason: 'OutOfMemoryError: Container killed due to memory usage' });
    expect(toAlert(JSON.stringify(oom), undefined, 'p')!.summary).toContain('pgops exited with code 137 (OutOfMemoryError: Container killed due to memory usage)');
  });

  it('renders a pgops alert as sent and unknown text as info', () => {
    expect(toAlert(JSON.stringify(pgopsAlert), 'x', 'ignored')).toEqual(pgopsAlert);
    expect(toAlert('disk almost full', 'Heads up', 'production')).toMatchObject({ severity: 'info', job: 'sns', summary: 'Heads up: disk almost full' });
  });
});

