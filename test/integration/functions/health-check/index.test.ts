import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildProgram } from '../../../../bin/pgops.ts';
import type { Io } from '../../../../bin/commands/run-command.ts';
import { deliverHealthAlerts } from '../../../../functions/core/health/alert-dedupe.ts';
import { defaultFileConfig } from '../../../../functions/core/config.ts';
import { DEFAULT_SESSION } from '../../../../functions/core/db.ts';
import { runHealth } from '../../../../functions/core/health/index.ts';
import { createTextLogger } from '../../../../functions/core/logger.ts';
import { SlackAlerter, type SlackMessage } from '../../../../functions/core/alerts/slack.ts';
import { createHealthHandler, type MetricsSink } from '../../../../functions/health-check/index.ts';
import { useTestCluster } from '../../../helpers/postgres.ts';
import { fileStorage, useTempDirs, writeBackup } from '../../../helpers/health.ts';

const cluster = useTestCluster();
const tempDir = useTempDirs();

// A local stand-in for Slack: records every post; `mode` decides the answer.
let server: Server;
let mode: 'ok' | '500' | 'hang' = 'ok';
const posts: SlackMessage[] = [];
const rawBodies: string[] = [];
let hookBase = '';
const HOOK_SECRET = 'XyZzy0SlackHookSecret';

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      rawBodies.push(body);
      if (mode === 'hang') return;
      posts.push(JSON.parse(body) as SlackMessage);
      if (mode === '500') { res.writeHead(500); res.end('internal_error'); return; }
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  hookBase = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  mode = 'ok';
  posts.length = 0;
  rawBodies.length = 0;
});
afterEach(() => {
  vi.unstubAllEnvs();
  process.exitCode = undefined;
});

const webhook = () => `${hookBase}/services/T0001/B0001/${HOOK_SECRET}`;
const header = (m: SlackMessage) => (m.blocks[0] as { text: { text: string } }).text.text;

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = { out: (s) => { out += s; }, err: (s) => { err += s; }, isTTY: false };
  const program = buildProgram(io);
  process.exitCode = undefined;
  await program.parseAsync(['node', 'pgops', ...args]);
  const code = typeof process.exitCode === 'number' ? process.exitCode : 0;
  process.exitCode = undefined;
  return { code, out, err };
}

describe('pgops health with a Slack webhook', () => {
  it('critical sends one Block Kit message, the same failure none, the recovery a resolved one; exit codes 2/2/0', async () => {
    const db = await cluster.createDatabase();
    const dir = tempDir();
    const storage = fileStorage(dir);
    const migrations = tempDir();
    vi.stubEnv('PGOPS_SLACK_WEBHOOK_URL', webhook());
    vi.stubEnv('PGOPS_ENVIRONMENT', 'staging');
    const args = ['health', '--database-url', cluster.url(db), '--storage', storage.url, '--dir', migrations];

    const r1 = await cli(args);
    expect(r1.code).toBe(2);
    expect(r1.out.split('\n')[0]).toMatch(new RegExp(`^CRITICAL - staging/${db}: 1 critical, 1 warning \\(13 checks, \\d+ ms\\)$`));
    expect(r1.out).toMatch(/backup-age\s+CRITICAL\s+no backup of/);
    expect(posts).toHaveLength(1);
    expect(header(posts[0]!)).toBe(`:red_circle: CRITICAL · staging · ${db} · health`);
    expect(posts[0]!.text).toMatch(new RegExp(`^\\[CRITICAL\\] pgops health staging/${db}: backup-age critical: no backup of "${db}"`));
    expect(JSON.stringify(posts[0]!.blocks)).toContain('*restore-test* WARNING');
    expect(posts[0]!.blocks.at(-1)).toMatchObject({ type: 'context', elements: [{ type: 'mrkdwn', text: expect.stringMatching(/^\d{4}-\d\d-\d\dT.* · run [0-9a-f-]{36} · pgops$/) }] });

    const r2 = await cli(args);
    expect(r2.code).toBe(2);
    expect(posts).toHaveLength(1);

    await writeBackup(storage, db, new Date(Date.now() - 600_000), 4096, { ok: true, checkedAt: new Date() });
    const r3 = await cli([...args, '--json']);
    expect(r3.code).toBe(0);
    const json = JSON.parse(r3.out) as { status: string; checks: Array<{ name: string; status: string; summary: string }> };
    expect(json.status).toBe('ok');
    expect(json.checks.find((c) => c.name === 'backup-age')).toMatchObject({ status: 'ok', threshold: 26 });
    expect(posts).toHaveLength(2);
    expect(header(posts[1]!)).toBe(`:large_green_circle: RESOLVED · staging · ${db} · health`);
    expect(posts[1]!.text).toContain('recovered: backup-age, restore-test; overall ok');

    // thresholds from flags; --no-alert sends nothing
    const r4 = await cli([...args, '--max-backup-age-hours', '0.01', '--no-alert']);
    expect(r4.code).toBe(2);
    expect(posts).toHaveLength(2);

    const everything = JSON.stringify([r1, r2, r3, r4, rawBodies]);
    expect(everything).not.toContain(cluster.pg.password);
    expect(everything).not.toContain(HOOK_SECRET);
  });

  it('Slack answering 500: health still exits with its own code and logs the failure; the alert is retried next run', async () => {
    const db = await cluster.createDatabase();
    const storage = fileStorage(tempDir());
    vi.stubEnv('PGOPS_SLACK_WEBHOOK_URL', webhook());
    const args = ['health', '--database-url', cluster.url(db), '--storage', storage.url, '--dir', tempDir()];
    mode = '500';
    const r1 = await cli(args);
    expect(r1.code).toBe(2);
    expect(r1.err).toContain('could not send the health alert error="Slack answered 500: internal_error"');
    mode = 'ok';
    await cli(args);
    expect(posts).toHaveLength(2);
    expect(JSON.stringify([r1, rawBodies])).not.toContain(HOOK_SECRET);
  });

  it('usage errors in threshold flags name the flag', async () => {
    const err: string[] = [];
    const io: Io = { out: () => {}, err: (s) => { err.push(s); }, isTTY: false };
    const program = buildProgram(io);
    await expect(program.parseAsync(['node', 'pgops', 'health', '--min-backup-size-ratio', '2'])).rejects.toThrow();
    expect(err.join('')).toContain("option '--min-backup-size-ratio <ratio>' argument '2' is invalid. must be a ratio from 0 to 1.");
  });

  it('Slack hanging: the send gives up after the (injected) timeout and the health result stands', async () => {
    const db = await cluster.createDatabase();
    mode = 'hang';
    const lines: string[] = [];
    const logger = createTextLogger({ write: (l) => lines.push(l) });
    const result = await runHealth({ target: cluster.target(db), session: DEFAULT_SESSION, logger, databaseId: db, environment: 'test', config: defaultFileConfig(), migrationsDir: tempDir() });
    const t0 = Date.now();
    const delivery = await deliverHealthAlerts({ result, alerter: new SlackAlerter({ webhookUrl: webhook(), timeoutMs: 300 }), logger, repeatHours: 24 });
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(delivery.sent).toEqual([]);
    expect(result.status).toBe('unknown'); // no storage: the backup checks cannot run
    expect(lines.join('')).toContain('could not send the health alert error="Slack did not answer within 300 ms"');
    expect(rawBodies).toHaveLength(1);
    expect(lines.join('')).not.toContain(HOOK_SECRET);
  });
});

describe('health-check function', () => {
  const sns = mockClient(SNSClient);
  const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:pgops-alerts';
  beforeEach(() => {
    sns.reset();
    sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
  });

  function handlerFor(databaseUrl: string, storageUrl: string) {
    const metrics: Array<[string, number]> = [];
    const sink: MetricsSink = { addDimension: (n, v) => metrics.push([`dim:${n}=${v}`, 0]), addMetric: (n, _u, v) => metrics.push([n, v]), publishStoredMetrics: () => metrics.push(['publish', 0]) };
    const lines: string[] = [];
    const handler = createHealthHandler({
      env: { DATABASE_URL: databaseUrl, PGOPS_STORAGE: storageUrl, PGOPS_MIGRATIONS_DIR: tempDir(), PGOPS_SNS_TOPIC_ARN: TOPIC, PGOPS_ENVIRONMENT: 'prod' },
      sns: () => new SNSClient({ region: 'eu-west-1' }),
      metrics: () => sink,
      logger: createTextLogger({ write: (l) => lines.push(l) }),
    });
    return { handler, metrics, lines };
  }

  it('a critical result is returned, not thrown; it alerts once through SNS and emits metrics', async () => {
    const db = await cluster.createDatabase();
    const storage = fileStorage(tempDir());
    const { handler, metrics, lines } = handlerFor(cluster.url(db), storage.url);
    const r = await handler({ 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {} }, { awsRequestId: 'req-123' });
    expect(r.status).toBe('critical');
    const calls = sns.commandCalls(PublishCommand);
    expect(calls).toHaveLength(1);
    const input = calls[0]!.args[0].input;
    expect(input.Subject!.length).toBeLessThanOrEqual(100);
    expect(input.Subject).toMatch(new RegExp(`^\\[CRITICAL\\] pgops health prod/${db}: backup-age critical`));
    expect(JSON.parse(input.Message!)).toMatchObject({ severity: 'critical', job: 'health', database: db, environment: 'prod', details: { runId: 'req-123', overall: 'critical' } });
    expect(metrics).toContainEqual([`dim:database=${db}`, 0]);
    expect(metrics).toContainEqual(['HealthStatus', 2]);
    expect(metrics).toContainEqual(['HealthStatus.backup-age', 2]);
    expect(metrics.at(-1)).toEqual(['publish', 0]);

    await handler({}, { awsRequestId: 'req-124' });
    expect(sns.commandCalls(PublishCommand)).toHaveLength(1);

    await writeBackup(storage, db, new Date(Date.now() - 7_200_000), 777, { ok: true, checkedAt: new Date() });
    const r3 = await handler({});
    expect(r3.status).toBe('ok');
    expect(JSON.parse(sns.commandCalls(PublishCommand)[1]!.args[0].input.Message!)).toMatchObject({ severity: 'resolved' });
    expect(metrics).toContainEqual(['BackupBytes', 777]);
    expect(metrics.find(([n]) => n === 'BackupAgeHours')![1]).toBeCloseTo(2, 1);
    expect(JSON.stringify([lines, sns.calls().map((c) => c.args[0].input)])).not.toContain(cluster.pg.password);
  });

  it('an unreachable database is a critical result (and an alert), not a function error', async () => {
    const { handler } = handlerFor('postgres://app:Unreach4blePw@127.0.0.1:1/app', fileStorage(tempDir()).url);
    const r = await handler({});
    expect(r.status).toBe('critical');
    expect(r.checks[0]).toMatchObject({ name: 'connection', status: 'critical' });
    const msg = sns.commandCalls(PublishCommand)[0]!.args[0].input.Message!;
    expect(msg).toContain('connection critical: could not connect to postgres://app:***@127.0.0.1:1/app');
    expect(msg).not.toContain('Unreach4blePw');
  });

  it('a crash of the job throws (and alerts)', async () => {
    const handler = createHealthHandler({
      env: { PGOPS_DATABASE_SECRET_ID: 'pgops/db', PGOPS_SNS_TOPIC_ARN: TOPIC },
      sns: () => new SNSClient({ region: 'eu-west-1' }),
      secrets: () => { throw new Error('no credentials'); },
      logger: createTextLogger({ write: () => {} }),
    });
    await expect(handler({})).rejects.toThrow('health failed: no credentials');
    expect(sns.commandCalls(PublishCommand)).toHaveLength(1);
  });
});
