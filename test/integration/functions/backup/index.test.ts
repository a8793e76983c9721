// The backup Lambda entry (inline or dispatched to Fargate) and the Fargate task entry.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ECSClient, RunTaskCommand } from '@aws-sdk/client-ecs';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTextLogger } from '../../../../functions/core/logger.ts';
import { createBackupHandler, taskCommand } from '../../../../functions/backup/index.ts';
import { useTestCluster } from '../../../helpers/postgres.ts';

const cluster = useTestCluster();
const ecs = mockClient(ECSClient);
const sns = mockClient(SNSClient);
const secrets = mockClient(SecretsManagerClient);
const work = mkdtempSync(join(tmpdir(), 'pgops-bh-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:pgops-alerts';
const TASK_ARN = 'arn:aws:ecs:eu-west-1:123456789012:task/pgops/0123456789abcdef';
let db = '';

beforeAll(async () => {
  db = await cluster.createDatabase('orders');
  await cluster.query('CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 1000) g;', [], db);
});

beforeEach(() => {
  ecs.reset();
  sns.reset();
  secrets.reset();
  sns.on(PublishCommand).resolves({ MessageId: 'm' });
  secrets.on(GetSecretValueCommand).resolves({
    SecretString: JSON.stringify({ host: '127.0.0.1', port: cluster.pg.port, username: 'postgres', password: cluster.pg.password, dbname: db }),
  });
});

function handlerWith(config: object, extraEnv: Record<string, string> = {}) {
  const cfg = join(work, `cfg-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(cfg, JSON.stringify(config));
  const lines: string[] = [];
  const store = mkdtempSync(join(work, 'store-'));
  const handler = createBackupHandler({
    env: {
      PGOPS_DATABASE_SECRET_ID: 'pgops/orders', PGOPS_DATABASE_SSLMODE: 'disable', PGOPS_DATABASE_ID: 'orders',
      PGOPS_STORAGE: `file://${store}`, PGOPS_CONFIG: cfg, PGOPS_SNS_TOPIC_ARN: TOPIC,
      PGOPS_ECS_CLUSTER: 'pgops', PGOPS_ECS_TASK_DEFINITION: 'pgops-long-job:3', PGOPS_ECS_CONTAINER_NAME: 'pgops',
      PGOPS_ECS_SUBNETS: 'subnet-0a1,subnet-0b2', PGOPS_ECS_SECURITY_GROUPS: 'sg-0c3', ...extraEnv,
    },
    ecs: () => new ECSClient({ region: 'eu-west-1' }),
    sns: () => new SNSClient({ region: 'eu-west-1' }),
    secrets: () => new SecretsManagerClient({ region: 'eu-west-1' }),
    logger: createTextLogger({ write: (l) => lines.push(l) }),
  });
  return { handler, lines, store };
}

describe('backup function', () => {
  it('in auto mode backs a small database up inline and returns the manifest, with exact row counts (the scheduled backup)', async () => {
    const { handler, store } = handlerWith({});
    const m = await handler({ database: 'orders' }) as { id: string; database: string; bytes: number };
    expect(m).toMatchObject({ database: 'orders', bytes: expect.any(Number), options: { rowCounts: 'exact' } });
    expect(readdirSync(join(store, 'orders', 'logical', m.id)).sort()).toEqual(['dump', 'manifest.json']);
    expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(0);
  });

  it('in auto mode dispatches a database above backup.inlineMaxBytes to Fargate, with no secret in the overrides', async () => {
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }], failures: [] });
    const { handler, store } = handlerWith({ backup: { inlineMaxBytes: 1024 } });
    const r = await handler({ database: 'orders', tables: ['items'] });
    expect(r).toMatchObject({ dispatched: 'fargate', taskArn: TASK_ARN, databaseBytes: expect.any(Number) });
    const input = ecs.commandCalls(RunTaskCommand)[0]!.args[0].input;
    expect(input).toMatchObject({
      cluster: 'pgops', taskDefinition: 'pgops-long-job:3', launchType: 'FARGATE',
      networkConfiguration: { awsvpcConfiguration: { subnets: ['subnet-0a1', 'subnet-0b2'], securityGroups: ['sg-0c3'], assignPublicIp: 'DISABLED' } },
      overrides: { containerOverrides: [{ name: 'pgops', command: ['backup', '--table', 'items', '--row-counts', 'exact'], environment: [{ name: 'PGOPS_DATABASE_ID', value: 'orders' }] }] },
    });
    expect(JSON.stringify(input)).not.toContain(cluster.pg.password);
    expect(readdirSync(store)).toEqual([]);
  });

  it('a RunTask answer with failures is an error, with an alert naming the reason', async () => {
    ecs.on(RunTaskCommand).resolves({ tasks: [], failures: [{ arn: 'arn:aws:ecs:eu-west-1:123456789012:container-instance/x', reason: 'RESOURCE:ENI' }] });
    const { handler } = handlerWith({});
    await expect(handler({ mode: 'fargate' })).rejects.toThrow(/the Fargate task did not start: RESOURCE:ENI/);
    const alert = JSON.parse(sns.commandCalls(PublishCommand)[0]!.args[0].input.Message!);
    expect(alert).toMatchObject({ severity: 'critical', job: 'backup', database: 'orders' });
  });

  it('refuses an event for another database, and a malformed event, naming the field', async () => {
    const { handler } = handlerWith({});
    await expect(handler({ database: 'billing' })).rejects.toThrow(/serves database "orders", not "billing"/);
    const err = (await handler({ mode: 'sideways', schemaOnly: 'yes' }).then(() => undefined, (e: unknown) => e)) as Error;
    expect(err.message).toMatch(/- mode: /);
    expect(err.message).toMatch(/- schemaOnly: /);
  });

  it('a failing pg_dump alerts once (the job alerts; the handler does not alert again) and throws', async () => {
    const { handler } = handlerWith({}, { PGOPS_DATABASE_ID: 'orders' });
    await expect(handler({ mode: 'inline', tables: ['no_such_table_anywhere'] })).rejects.toThrow(/backup failed/);
    expect(sns.commandCalls(PublishCommand)).toHaveLength(1);
  });

  it('maps events to the task command line', () => {
    expect(taskCommand({ mode: 'fargate', schemaOnly: true, excludeTables: ['audit_logs'] })).toEqual(['backup', '--schema-only', '--exclude-table', 'audit_logs']);
    expect(taskCommand({ mode: 'fargate', rowCounts: 'estimate' })).toEqual(['backup', '--row-counts', 'estimate']);
  });
});

describe('Fargate task entry', () => {
  // What the container runs: bin/pgops.ts bundled as docker/Dockerfile bundles it (the flags of
  // lib/bundling.ts, which an infra test holds the Dockerfile to), started as the task's entry point.
  it('runs the bundled CLI with --json: a backup exits 0 with its manifest; an unknown command exits 2', async () => {
    const { spawnSync } = await import('node:child_process');
    const { bundleCliFlags } = await import('../../../../lib/bundling.ts');
    const { TASK_ENTRYPOINT } = await import('../../../../lib/constructs/job-image.ts');
    const dist = mkdtempSync(join(work, 'image-'));
    const esbuild = join(process.cwd(), 'node_modules', '.bin', 'esbuild');
    const built = spawnSync(esbuild, ['pgops=bin/pgops.ts', ...bundleCliFlags(), '--out-extension:.js=.mjs', `--outdir=${dist}`, '--log-level=warning'], { encoding: 'utf8' });
    expect(built.status, built.stderr).toBe(0);
    const [node, entry, ...entryArgs] = TASK_ENTRYPOINT;
    expect([node, entry]).toEqual(['node', '/var/task/pgops.mjs']);
    const script = join(dist, 'pgops.mjs');

    const store = mkdtempSync(join(work, 'task-'));
    // A clean environment, as in the container: nothing of this test process's settings leaks in.
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: cluster.url(db), PGOPS_STORAGE: `file://${store}` };
    const run = (args: string[]) => spawnSync(process.execPath, [script, ...entryArgs, ...args], { env, cwd: dist, encoding: 'utf8' });
    const good = run(['backup']);
    expect(good.status, good.stderr).toBe(0);
    const manifest = JSON.parse(good.stdout);
    expect(manifest).toMatchObject({ database: db, kind: 'full' });
    expect(manifest.bytes).toBeGreaterThan(0);
    expect(readdirSync(join(store, db, 'logical', manifest.id)).sort()).toEqual(['dump', 'manifest.json']);
    const bad = run(['launch-missiles']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/unknown command ['"]launch-missiles['"]/);
  });
});
