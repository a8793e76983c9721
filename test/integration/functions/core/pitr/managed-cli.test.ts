// `pgops pitr --rds-instance` through the real CLI, its RDS client pointed at a local HTTP endpoint
// that answers the RDS query API (AWS_ENDPOINT_URL_RDS): the dry run prints the plan and the window
// and creates nothing; a target outside the window exits 1 naming it; bad flags exit 2. No password
// in anything printed.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../../helpers/cli.ts';
import { captured } from '../../../../helpers/output-scan.ts';

const PASSWORD = 'cli-Secret-pw-4711';
const cap = captured(() => [PASSWORD]);
const store = mkdtempSync(join(tmpdir(), 'pgops-managed-cli-'));
const actions: string[] = [];
let server: Server;
let endpoint = '';

const INSTANCE = `<DBInstance><DBInstanceIdentifier>auth-prod</DBInstanceIdentifier><DbiResourceId>db-AUTH</DbiResourceId><Engine>postgres</Engine>
<EngineVersion>16.4</EngineVersion><DBInstanceStatus>available</DBInstanceStatus><MasterUsername>postgres</MasterUsername><BackupRetentionPeriod>7</BackupRetentionPeriod>
<LatestRestorableTime>2026-12-01T14:05:00Z</LatestRestorableTime><Endpoint><Address>auth-prod.abc.eu-west-1.rds.amazonaws.com</Address><Port>5432</Port></Endpoint>
<DBSubnetGroup><DBSubnetGroupName>db-private</DBSubnetGroupName></DBSubnetGroup>
<VpcSecurityGroups><VpcSecurityGroupMembership><VpcSecurityGroupId>sg-0db</VpcSecurityGroupId><Status>active</Status></VpcSecurityGroupMembership></VpcSecurityGroups>
<DBParameterGroups><DBParameterGroup><DBParameterGroupName>pg16-tuned</DBParameterGroupName></DBParameterGroup></DBParameterGroups></DBInstance>`;

function answer(action: string): string {
  const wrap = (body: string) => `<?xml version="1.0"?><${action}Response xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><${action}Result>${body}</${action}Result><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></${action}Response>`;
  if (action === 'DescribeDBInstances') return wrap(`<DBInstances>${INSTANCE}</DBInstances>`);
  if (action === 'DescribeDBInstanceAutomatedBackups') {
    return wrap('<DBInstanceAutomatedBackups><DBInstanceAutomatedBackup><DbiResourceId>db-AUTH</DbiResourceId><RestoreWindow><EarliestTime>2026-11-24T02:00:00Z</EarliestTime><LatestTime>2026-12-01T14:05:00Z</LatestTime></RestoreWindow></DBInstanceAutomatedBackup></DBInstanceAutomatedBackups>');
  }
  return '';
}

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => { body += d.toString(); });
    req.on('end', () => {
      const action = new URLSearchParams(body).get('Action') ?? '';
      actions.push(action);
      const xml = answer(action);
      res.writeHead(xml ? 200 : 400, { 'content-type': 'text/xml' });
      res.end(xml || `<ErrorResponse><Error><Type>Sender</Type><Code>UnexpectedCall</Code><Message>${action} was not expected</Message></Error></ErrorResponse>`);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(store, { recursive: true, force: true });
});

const env = () => ({
  AWS_ENDPOINT_URL_RDS: endpoint, AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'not-a-real-key',
  DATABASE_URL: `postgres://postgres:${PASSWORD}@auth-prod.abc.eu-west-1.rds.amazonaws.com:5432/auth`, PGOPS_STORAGE: `file://${store}`,
});

describe('pgops pitr --rds-instance (CLI)', () => {
  it('--dry-run --json: the plan, the window and the state; nothing created', async () => {
    actions.length = 0;
    const r = cap.cli(await runCli(['pitr', '--rds-instance', 'auth-prod', '--target-time', '2026-12-01T15:01:00+01:00', '--export', '--dry-run', '--json'], env(), { timeoutMs: 120_000 }));
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { dryRun: boolean; plan: Record<string, unknown> & { state: { phase: string } } };
    expect(out.plan).toMatchObject({
      source: { kind: 'instance', id: 'auth-prod' }, target: { type: 'time', value: '2026-12-01T14:01:00.000Z' },
      window: { earliest: '2026-11-24T02:00:00.000Z', latest: '2026-12-01T14:05:00.000Z' },
      restored: { instance: 'pgops-pitr-auth-prod-202612011401', instanceClass: 'db.t4g.medium', subnetGroup: 'db-private', securityGroups: ['sg-0db'], parameterGroup: 'pg16-tuned', tags: { 'pgops:purpose': 'pitr' } },
    });
    expect(out.plan.state.phase).toBe('planned');
    expect([...new Set(actions)].sort()).toEqual(['DescribeDBInstanceAutomatedBackups', 'DescribeDBInstances']);
  });

  it('the plan as text, for --latest', async () => {
    const r = cap.cli(await runCli(['pitr', '--rds-instance', 'auth-prod', '--latest', '--export', '--keep', '--dry-run'], env(), { timeoutMs: 120_000 }));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('dry run: nothing was created; the plan:');
    expect(r.stdout).toContain('  source: RDS instance auth-prod, restore window 2026-11-24T02:00:00.000Z .. 2026-12-01T14:05:00.000Z');
    expect(r.stdout).toContain('  restore to the latest restorable time');
    expect(r.stdout).toMatch(/ {2}copy: instance pgops-pitr-auth-prod-202612011405 \(db\.t4g\.medium\), subnet group db-private, security groups sg-0db, parameter group pg16-tuned, not public/);
    expect(r.stdout).toMatch(/ {2}then: keep the copy \(cleanup deletes it after \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\)/);
  });

  it('a target after the latest restorable time exits 1 naming the window', async () => {
    const r = cap.cli(await runCli(['pitr', '--rds-instance', 'auth-prod', '--target-time', '2026-12-01T14:30:00Z', '--export'], env(), { timeoutMs: 120_000 }));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--target-time 2026-12-01T14:30:00.000Z is after the latest restorable time: the restore window of --rds-instance auth-prod is from 2026-11-24T02:00:00.000Z to 2026-12-01T14:05:00.000Z/);
    expect(actions).not.toContain('RestoreDBInstanceToPointInTime');
  });

  it('bad flags exit 2, every problem named', async () => {
    const r = cap.cli(await runCli(['pitr', '--aurora-cluster', 'orders', '--target-lsn', '0/3000028', '--data-dir', '/tmp/x'], env(), { timeoutMs: 120_000 }));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--target-lsn: RDS and Aurora restore to a time only/);
    expect(r.stderr).toMatch(/--data-dir: a managed restore is an RDS instance/);
  });
});
