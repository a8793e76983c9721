// `pgops pitr ... --in-aws` on a mocked RDS and a mocked Step Functions (no local server for it):
// the plan is made here and sent as the execution's input (the run's state document, valid for the
// state machine and its task, with no secret); a target outside the window starts nothing; the
// state machine is the one given or found by name; a dry run starts nothing; AWS's refusal is named.
import { ListStateMachinesCommand, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import * as sfnSdk from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import type { Sfn } from '../../../../../../functions/core/aws/sfn.ts';
import { defaultFileConfig, managedConfigOf } from '../../../../../../functions/core/config.ts';
import { exitCodeOf, type PgopsError } from '../../../../../../functions/core/errors.ts';
import { parseFromState } from '../../../../../../functions/core/pitr/managed/from-state.ts';
import { executionName, startManagedPitrInAws, type InAwsDeps, type InAwsOptions } from '../../../../../../functions/core/pitr/managed/in-aws.ts';
import { parseManagedPitrState } from '../../../../../../functions/core/pitr/managed/state.ts';
import { registerSecret } from '../../../../../../functions/core/redact.ts';
import { captured } from '../../../../../helpers/output-scan.ts';
import { FakeRds, T } from './fake-rds.ts';

const PASSWORD = 'Sfn-input-never-holds-this-pw';
registerSecret(PASSWORD);
const cap = captured(() => [PASSWORD]);
const ARN = 'arn:aws:states:eu-west-1:123456789012:stateMachine:pgops-prod-auth-pitr';

const sfnClient = new SFNClient({ region: 'eu-west-1', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-real-key' } });
const sfnMock = mockClient(sfnClient);
const sfn: Sfn = { client: sfnClient, sdk: sfnSdk };

beforeEach(() => {
  sfnMock.reset();
  sfnMock.on(StartExecutionCommand).resolves({ executionArn: `${ARN.replace(':stateMachine:', ':execution:')}:x`, startDate: T('2026-12-01T15:00:01Z') });
});

function setup(world: FakeRds, extra: Partial<InAwsDeps> = {}): InAwsDeps {
  return {
    rds: () => world.rds, sfn: () => sfn, config: managedConfigOf(defaultFileConfig({})), logger: cap.logger().logger, alerter: cap.alerter(),
    environment: 'prod', databaseId: 'auth', clock: () => T('2026-12-01T15:00:00Z'), runId: () => 'run00000001', ...extra,
  };
}

const orders: InAwsOptions = {
  rdsInstance: 'prod-db', target: { targetTime: '2026-12-01T14:01:00Z' }, output: { targetDb: 'auth_restore', tables: ['orders'] }, stateMachine: ARN,
};

async function failure(p: Promise<unknown>): Promise<PgopsError> {
  const e = await p.then(() => { throw new Error('expected a failure'); }, (err: unknown) => err);
  cap.error(e);
  return e as PgopsError;
}

const sentInputs = () => sfnMock.commandCalls(StartExecutionCommand).map((c) => c.args[0].input);

describe('startManagedPitrInAws', () => {
  it('plans here and starts the state machine with the state document as input; prints how to follow it', async () => {
    const world = new FakeRds();
    world.addSourceInstance('prod-db');
    const r = await startManagedPitrInAws(setup(world), orders);
    cap.add('result', r);
    expect(r).toMatchObject({ started: true, stateMachineArn: ARN, executionArn: expect.stringContaining(':execution:'), copy: 'instance pgops-pitr-prod-db-202612011401' });
    expect(r.follow.join('\n')).toContain(`aws stepfunctions describe-execution --execution-arn ${r.executionArn}`);
    const [call] = sfnMock.commandCalls(StartExecutionCommand);
    expect(call!.args[0].input).toMatchObject({ stateMachineArn: ARN, name: 'prod-db-202612011401-run00000001' });
    const input = JSON.parse(call!.args[0].input.input!) as unknown;
    // What the state machine's steps and its task parse: a valid state, planned, tagged, for one table.
    const parsed = parseManagedPitrState(input);
    expect(parsed.issues).toEqual([]);
    expect(parsed.state).toMatchObject({
      phase: 'planned', source: { kind: 'instance', id: 'prod-db' }, target: { type: 'time', value: '2026-12-01T14:01:00.000Z' },
      output: { kind: 'target-db', database: 'auth_restore', tables: ['orders'] },
      restored: { instance: 'pgops-pitr-prod-db-202612011401', subnetGroup: 'db-private', tags: { 'pgops:purpose': 'pitr', 'pgops:run': 'run00000001', 'pgops:expires': '2026-12-02T15:00:00Z' } },
    });
    // No secret and no credential field at all in the input.
    expect(call!.args[0].input.input).not.toMatch(/password|secret/i);
    // Nothing created by the CLI itself: the state machine restores.
    expect(world.calls('RestoreDBInstanceToPointInTimeCommand')).toEqual([]);
  });

  it('the task accepts the state once the state machine adds the endpoint, and refuses it without', () => {
    const world = new FakeRds();
    world.addSourceInstance('prod-db');
    return startManagedPitrInAws(setup(world), orders).then((r) => {
      const withEndpoint = JSON.stringify({ ...r.input, phase: 'available', endpoint: { host: 'copy.internal', port: 5432 } });
      expect(parseFromState(withEndpoint).endpoint).toEqual({ host: 'copy.internal', port: 5432 });
      let issues: string[] = [];
      try { parseFromState(JSON.stringify(r.input)); } catch (err) { issues = (err as { issues: string[] }).issues; }
      expect(issues).toEqual([expect.stringContaining('state.endpoint: missing')]);
      expect(() => parseFromState('{"version":2}')).toThrow('invalid --from-state');
    });
  });

  it('a target outside the restore window is refused, naming the window; nothing is started', async () => {
    const world = new FakeRds();
    world.addSourceInstance('prod-db');
    const e = await failure(startManagedPitrInAws(setup(world), { ...orders, target: { targetTime: '2026-12-01T14:30:00Z' } }));
    expect(e.message).toContain('2026-12-01T14:05:00');
    expect(exitCodeOf(e)).toBe(1);
    expect(sentInputs()).toEqual([]);
  });

  it('--dry-run plans and shows the input, and starts nothing', async () => {
    const world = new FakeRds();
    world.addSourceInstance('prod-db');
    const r = await startManagedPitrInAws(setup(world), { ...orders, dryRun: true });
    expect(r.started).toBe(false);
    expect(r.input.phase).toBe('planned');
    expect(r.follow[0]).toContain(`start-execution --state-machine-arn ${ARN} --name ${r.executionName}`);
    expect(sentInputs()).toEqual([]);
  });

  it('without --state-machine, finds pgops-<environment>-<database>-pitr by name across pages', async () => {
    const world = new FakeRds();
    world.addSourceInstance('prod-db');
    sfnMock.on(ListStateMachinesCommand, { nextToken: undefined }).resolves({ stateMachines: [{ name: 'other', stateMachineArn: `${ARN}-other`, type: 'STANDARD', creationDate: new Date() }], nextToken: 'p2' });
    sfnMock.on(ListStateMachinesCommand, { nextToken: 'p2' }).resolves({ stateMachines: [{ name: 'pgops-prod-auth-pitr', stateMachineArn: ARN, type: 'STANDARD', creationDate: new Date() }] });
    const r = await startManagedPitrInAws(setup(world), { ...orders, stateMachine: undefined });
    expect(r.stateMachineArn).toBe(ARN);
    expect(sfnMock.commandCalls(ListStateMachinesCommand)).toHaveLength(2);
  });

  it('no state machine of that name: says how to get one; without a database id: asks for --state-machine', async () => {
    const world = new FakeRds();
    world.addSourceInstance('prod-db');
    sfnMock.on(ListStateMachinesCommand).resolves({ stateMachines: [] });
    const missing = await failure(startManagedPitrInAws(setup(world), { ...orders, stateMachine: undefined }));
    expect(missing.message).toContain('no state machine pgops-prod-auth-pitr');
    const noId = await failure(startManagedPitrInAws(setup(world, { databaseId: undefined }), { ...orders, stateMachine: undefined }));
    expect(exitCodeOf(noId)).toBe(2);
    expect((noId as PgopsError & { issues?: string[] }).issues?.join(' ')).toContain('--state-machine ARN');
    const bad = await failure(startManagedPitrInAws(setup(world), { ...orders, stateMachine: 'pgops-prod-auth-pitr' }));
    expect(exitCodeOf(bad)).toBe(2);
    expect(sentInputs()).toEqual([]);
  });

  it('StartExecution refused: the error names the call and the missing permission', async () => {
    const world = new FakeRds();
    world.addSourceInstance('prod-db');
    sfnMock.on(StartExecutionCommand).rejects(Object.assign(new Error('User is not authorized to perform states:StartExecution'), { name: 'AccessDeniedException' }));
    const e = await failure(startManagedPitrInAws(setup(world), orders));
    expect(e.message).toContain('StartExecution');
    expect(e.message).toContain('AccessDeniedException');
    expect(e.message).toContain('README');
  });

  it('Aurora: the input names the restored cluster and its one instance', async () => {
    const world = new FakeRds();
    world.addSourceCluster('orders');
    const r = await startManagedPitrInAws(setup(world), { auroraCluster: 'orders', target: { latest: true }, output: { export: true }, stateMachine: ARN });
    expect(r.input.restored).toMatchObject({ cluster: expect.stringMatching(/^pgops-pitr-orders-\d{12}$/), instance: expect.stringMatching(/^pgops-pitr-orders-\d{12}-1$/) });
    expect(r.input.target).toEqual({ type: 'latest' });
    expect(executionName(r.input, T('2026-12-01T15:00:00Z'))).toBe('orders-202612011500-run00000001');
  });
});
