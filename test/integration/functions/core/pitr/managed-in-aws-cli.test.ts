// `pgops pitr ... --in-aws` through the real CLI: RDS and Step Functions are local HTTP endpoints
// (AWS_ENDPOINT_URL_RDS / _SFN) answering their wire protocols. The CLI plans against the window,
// starts the state machine with the state document (no secret, no connection needed), prints the
// execution and how to follow it (text and --json); --dry-run starts nothing; bad use exits 2.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../../helpers/cli.ts';
import { captured } from '../../../../helpers/output-scan.ts';

// The only credential in play: the (fake) AWS secret key, which nothing may print.
const AWS_SECRET = 'inAws-Secret-key-4711';
const cap = captured(() => [AWS_SECRET]);
const rdsActions: string[] = [];
const sfnCalls: Array<{ target: string; body: Record<string, unknown> }> = [];
let server: Server;
let endpoint = '';
const ARN = 'arn:aws:states:eu-west-1:123456789012:stateMachine:pgops-prod-auth-pitr';

const INSTANCE = `<DBInstance><DBInstanceIdentifier>prod-db</DBInstanceIdentifier><DbiResourceId>db-PROD</DbiResourceId><Engine>postgres</Engine>
<DBInstanceStatus>available</DBInstanceStatus><MasterUsername>postgres</MasterUsername><BackupRetentionPeriod>7</BackupRetentionPeriod>
<LatestRestorableTime>2026-12-01T14:05:00Z</LatestRestorableTime><Endpoint><Address>prod-db.abc.eu-west-1.rds.amazonaws.com</Address><Port>5432</Port></Endpoint>
<DBSubnetGroup><DBSubnetGroupName>db-private</DBSubnetGroupName></DBSubnetGroup>
<VpcSecurityGroups><VpcSecurityGroupMembership><VpcSecurityGroupId>sg-0db</VpcSecurityGroupId><Status>active</Status></VpcSecurityGroupMembership></VpcSecurityGroups></DBInstance>`;

function rdsAnswer(action: string): string {
  const wrap = (body: string) => `<?xml version="1.0"?><${action}Response xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><${action}Result>${body}</${action}Result><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></${action}Response>`;
  if (action === 'DescribeDBInstances') return wrap(`<DBInstances>${INSTANCE}</DBInstances>`);
  if (action === 'DescribeDBInstanceAutomatedBackups') {
    return wrap('<DBInstanceAutomatedBackups><DBInstanceAutomatedBackup><DbiResourceId>db-PROD</DbiResourceId><RestoreWindow><EarliestTime>2026-11-24T02:00:00Z</EarliestTime><LatestTime>2026-12-01T14:05:00Z</LatestTime></RestoreWindow></DBInstanceAutomatedBackup></DBInstanceAutomatedBackups>');
  }
  return '';
}

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => { body += d.toString(); });
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      if (target.startsWith('AWSStepFunctions.')) {
        const parsed = JSON.parse(body) as Record<string, unknown>;
        sfnCalls.push({ target, body: parsed });
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
        if (target === 'AWSStepFunctions.ListStateMachines') res.end(JSON.stringify({ stateMachines: [{ name: 'pgops-prod-auth-pitr', stateMachineArn: ARN, type: 'STANDARD', creationDate: 1_790_000_000 }] }));
        else res.end(JSON.stringify({ executionArn: `${ARN.replace(':stateMachine:', ':execution:')}:${String(parsed.name)}`, startDate: 1_796_137_201 }));
        return;
      }
      const action = new URLSearchParams(body).get('Action') ?? '';
      rdsActions.push(action);
      const xml = rdsAnswer(action);
      res.writeHead(xml ? 200 : 400, { 'content-type': 'text/xml' });
      res.end(xml || `<ErrorResponse><Error><Type>Sender</Type><Code>UnexpectedCall</Code><Message>${action} was not expected</Message></Error></ErrorResponse>`);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => { await new Promise((r) => server.close(r)); });

// No DATABASE_URL and no secret: --in-aws needs no connection (the task reads the secret in AWS).
const env = () => ({
  AWS_ENDPOINT_URL_RDS: endpoint, AWS_ENDPOINT_URL_SFN: endpoint, AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: AWS_SECRET,
  PGOPS_ENVIRONMENT: 'prod', DATABASE_URL: undefined, PGOPS_DATABASE_SECRET_ID: undefined,
});
const orders = ['pitr', '--rds-instance', 'prod-db', '--target-time', '2026-12-01T14:01:00Z', '--target-db', 'auth_restore', '--table', 'orders', '--in-aws'];

describe('pgops pitr --in-aws (CLI)', () => {
  it('starts the state machine with the planned state and prints the execution and how to follow it', async () => {
    sfnCalls.length = 0;
    const r = cap.cli(await runCli([...orders, '--state-machine', ARN], env(), { timeoutMs: 120_000 }));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^started prod-db-202612011401-[a-z0-9]+: restore prod-db to 2026-12-01T14:01:00.000Z into instance pgops-pitr-prod-db-202612011401/);
    expect(r.stdout).toContain(`execution ${ARN.replace(':stateMachine:', ':execution:')}:prod-db-202612011401-`);
    expect(r.stdout).toContain('$ aws stepfunctions describe-execution --execution-arn');
    const [start] = sfnCalls;
    expect(start!.target).toBe('AWSStepFunctions.StartExecution');
    expect(start!.body.stateMachineArn).toBe(ARN);
    const input = JSON.parse(String(start!.body.input)) as Record<string, unknown>;
    expect(input).toMatchObject({ phase: 'planned', source: { kind: 'instance', id: 'prod-db' }, output: { kind: 'target-db', database: 'auth_restore', tables: ['orders'] }, environment: 'prod' });
    expect(String(start!.body.input)).not.toMatch(/password|secret/i);
    expect(rdsActions).not.toContain('RestoreDBInstanceToPointInTime');
  });

  it('--json, the state machine found by name (--database-id)', async () => {
    sfnCalls.length = 0;
    const r = cap.cli(await runCli([...orders, '--database-id', 'auth', '--json'], env(), { timeoutMs: 120_000 }));
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { started: boolean; stateMachineArn: string; executionArn: string; input: { runId: string } };
    expect(out).toMatchObject({ started: true, stateMachineArn: ARN, executionArn: expect.stringContaining(':execution:') });
    expect(sfnCalls.map((c) => c.target)).toEqual(['AWSStepFunctions.ListStateMachines', 'AWSStepFunctions.StartExecution']);
  });

  it('--dry-run starts nothing and shows the input; bad use exits 2', async () => {
    sfnCalls.length = 0;
    const dry = cap.cli(await runCli([...orders, '--state-machine', ARN, '--dry-run', '--json'], env(), { timeoutMs: 120_000 }));
    expect(dry.code, dry.stderr).toBe(0);
    expect((JSON.parse(dry.stdout) as { started: boolean }).started).toBe(false);
    expect(sfnCalls).toEqual([]);
    const noSource = cap.cli(await runCli(['pitr', '--target-time', '2026-12-01T14:01:00Z', '--export', '--in-aws'], env(), { timeoutMs: 120_000 }));
    expect(noSource.code).toBe(2);
    expect(noSource.stderr).toContain('--in-aws runs an RDS/Aurora recovery');
    const noMachine = cap.cli(await runCli(orders, env(), { timeoutMs: 120_000 }));
    expect(noMachine.code).toBe(2);
    expect(noMachine.stderr).toContain('--state-machine ARN');
  });
});
