// The point-in-time recovery state machine of an RDS/Aurora database (config `managed`), read from
// the synthesized template: every failure path (each Task's Catch) reaches the delete steps and then
// the failure notice; the wait loop is bounded; no secret in the definition; the IAM conditions
// (request and resource tags, the source, the task's roles); the ExecutionsFailed alarm; logging and
// X-Ray; cdk-nag clean with live acknowledgments. "auth" is an RDS instance, "orders" an Aurora
// cluster, "plain" neither. Synthesized once, without bundling.
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PITR_PURPOSE, PITR_TAG, restoredIdentifier } from '../../../../../functions/core/pitr/managed/naming.ts';
import { BROKEN_STATUSES } from '../../../../../functions/core/pitr/managed/steps.ts';
import { parsePgopsConfig, runtimeConfigFor, type PgopsConfigError } from '../../../../../lib/config.ts';
import { BROKEN_COPY_STATUSES, COPY_PURPOSE, COPY_TAG, copyNamePrefix, PITR_STATES } from '../../../../../lib/constructs/jobs/managed-pitr.ts';
import { actionsOf, flat, resources, roleStatements, sampleConfig, synth, type Statement, type Synth } from '../../../helpers.ts';
import { deadAcknowledgments } from '../../../nag-audit.ts';

interface State {
  Type: string;
  Next?: string;
  End?: boolean;
  Default?: string;
  Choices?: Array<{ Condition: string; Next: string }>;
  Catch?: Array<{ ErrorEquals: string[]; Next: string; Assign?: Record<string, unknown> }>;
  Retry?: Array<{ ErrorEquals: string[]; MaxAttempts?: number }>;
  Assign?: Record<string, unknown>;
  Arguments?: unknown;
  Resource?: unknown;
  Seconds?: number;
}
interface Definition { StartAt: string; States: Record<string, State> }

function managedConfig() {
  const raw = sampleConfig();
  const db = (id: string, suffix: string) => ({
    id,
    secretArn: `arn:aws:secretsmanager:eu-west-1:123456789012:secret:pgops/staging/${id}-${suffix}`,
    vpcId: 'vpc-0aaaaaaaaaaaaaaaa',
    subnetIds: ['subnet-0aaaaaaaaaaaaaaaa'],
    securityGroupIds: ['sg-0aaaaaaaaaaaaaaaa'],
  });
  raw.databases[0]!.managed = { rdsInstance: 'prod-db', pitr: { restoreTimeoutMinutes: 120, pollSeconds: 60 } };
  raw.databases.push({ ...db('orders', 'XyZ123'), managed: { auroraCluster: 'orders-aurora' } }, db('plain', 'AbC456'));
  return raw;
}

/** The definition as Step Functions gets it; CloudFormation tokens (ARNs) become "<token>". */
function definitionOf(s: Synth, id: string): { def: Definition; text: string } {
  const machines = Object.values(resources(s.dbTemplate(id), 'AWS::StepFunctions::StateMachine'));
  expect(machines).toHaveLength(1);
  const raw = machines[0]!.Properties!.DefinitionString as { 'Fn::Join': [string, unknown[]] } | string;
  const text = typeof raw === 'string' ? raw : raw['Fn::Join'][1].map((p) => (typeof p === 'string' ? p : '<token>')).join('');
  return { def: JSON.parse(text) as Definition, text };
}

/** Every state reachable from `from` (Next, Default, Choices, Catch). */
function reachable(def: Definition, from: string): Set<string> {
  const seen = new Set<string>();
  const todo = [from];
  while (todo.length > 0) {
    const name = todo.pop()!;
    if (seen.has(name)) continue;
    seen.add(name);
    const st = def.States[name];
    if (!st) throw new Error(`no state ${name}`);
    for (const n of [st.Next, st.Default, ...(st.Choices ?? []).map((c) => c.Next), ...(st.Catch ?? []).map((c) => c.Next)]) if (n) todo.push(n);
  }
  return seen;
}

/** True when every path from `from` passes through `through` before it ends (cycles do not count as ends). */
function allPathsPass(def: Definition, from: string, through: string): boolean {
  const visit = (name: string, stack: Set<string>): boolean => {
    if (name === through) return true;
    if (stack.has(name)) return true;
    const st = def.States[name]!;
    const next = [st.Next, st.Default, ...(st.Choices ?? []).map((c) => c.Next), ...(st.Catch ?? []).map((c) => c.Next)].filter((n): n is string => !!n);
    if (next.length === 0) return false;
    const inner = new Set(stack).add(name);
    return next.every((n) => visit(n, inner));
  };
  return visit(from, new Set());
}

const S = PITR_STATES;
let s: Synth;
beforeAll(() => { s = synth({ pgops: managedConfig(), bundle: false, nag: false }); }, 600_000);
afterAll(() => s?.dispose());

describe('the runtime\'s contract, restated in the construct', () => {
  it('the same tags, broken statuses and copy names as the runtime', () => {
    expect(COPY_TAG).toEqual({ purpose: PITR_TAG.purpose, run: PITR_TAG.run });
    expect(COPY_PURPOSE).toBe(PITR_PURPOSE);
    expect([...BROKEN_COPY_STATUSES].sort()).toEqual([...BROKEN_STATUSES].sort());
    const at = new Date('2026-12-01T14:01:00Z');
    for (const source of ['prod-db', 'Prod_DB', 'a'.repeat(63), 'x--y-', 'orders-aurora']) {
      for (const reserve of [0, 2]) {
        const name = restoredIdentifier(source, at, reserve);
        expect(name.startsWith(copyNamePrefix(source, reserve)), `${source} ${reserve}: ${name}`).toBe(true);
        expect(name.slice(copyNamePrefix(source, reserve).length)).toBe('202612011401');
      }
    }
  });
});

describe('configuration', () => {
  it('takes the runtime\'s managed section per database and hands it to the jobs', () => {
    const c = parsePgopsConfig(managedConfig());
    expect(c.databases[0]!.managed).toMatchObject({ rdsInstance: 'prod-db', pitr: { instanceClass: 'db.t4g.medium', restoreTimeoutMinutes: 120 } });
    expect(runtimeConfigFor(c, c.databases[0]!).managed?.rdsInstance).toBe('prod-db');
    expect(runtimeConfigFor(c, c.databases[2]!)).not.toHaveProperty('managed');
  });

  it('refuses an RDS instance and an Aurora cluster together, and unknown fields, by name', () => {
    const raw = managedConfig();
    raw.databases[0]!.managed = { rdsInstance: 'a', auroraCluster: 'b', stateMachine: true };
    let issues: string[] = [];
    try { parsePgopsConfig(raw); } catch (err) { issues = (err as PgopsConfigError).issues; }
    expect(issues).toEqual(expect.arrayContaining([expect.stringContaining('pgops.databases[0].managed.stateMachine: unknown field')]));
    raw.databases[0]!.managed = { rdsInstance: 'a', auroraCluster: 'b' };
    issues = [];
    try { parsePgopsConfig(raw); } catch (err) { issues = (err as PgopsConfigError).issues; }
    expect(issues).toEqual([expect.stringContaining('pgops.databases[0].managed.auroraCluster: rdsInstance and auroraCluster are both set')]);
  });

  it('a database without an RDS source has no state machine and no output for it', () => {
    const t = s.dbTemplate('plain');
    expect(resources(t, 'AWS::StepFunctions::StateMachine')).toEqual({});
    expect(Object.keys(t.toJSON().Outputs ?? {}).filter((k) => k.startsWith('PitrStateMachine'))).toEqual([]);
  });
});

describe.each([
  { id: 'auth', kind: 'instance', restore: S.restoreInstance, deletes: [S.deleteInstance] },
  { id: 'orders', kind: 'cluster', restore: S.restoreCluster, deletes: [S.deleteClusterInstance, S.deleteCluster] },
])('the state machine of $id ($kind)', ({ id, restore, deletes }) => {
  it('is named for the database, in JSONata, and starts from the input document', () => {
    const props = Object.values(resources(s.dbTemplate(id), 'AWS::StepFunctions::StateMachine'))[0]!.Properties!;
    expect(props.StateMachineName).toBe(`pgops-staging-${id}-pitr`);
    const { def } = definitionOf(s, id);
    expect(def.StartAt).toBe(S.start);
    expect(def.States[S.start]!.Assign).toMatchObject({ pitr: '{% $states.input %}' });
    expect(reachable(def, S.start)).toContain(restore);
  });

  it('catches every error of every Task state', () => {
    const { def } = definitionOf(s, id);
    const tasks = Object.entries(def.States).filter(([, st]) => st.Type === 'Task');
    expect(tasks.length).toBeGreaterThanOrEqual(10);
    for (const [name, st] of tasks) {
      expect(st.Catch?.some((c) => c.ErrorEquals.includes('States.ALL')), name).toBe(true);
    }
  });

  it('every failure of restore, wait and the output task goes to the delete steps, then to the failure notice', () => {
    const { def } = definitionOf(s, id);
    const failing = [S.restoreInstance, S.restoreCluster, S.describeCluster, S.createClusterInstance, S.describeInstance, S.output];
    for (const name of failing) {
      const all = def.States[name]!.Catch!.find((c) => c.ErrorEquals.includes('States.ALL'))!;
      expect(all.Next, name).toBe(S.deleteCopy);
      // The failure is recorded for the notice: the step and AWS's error.
      expect(JSON.stringify(all.Assign), name).toMatch(/'step': '.+', 'error': \$states\.errorOutput\.Error/);
    }
    const afterDelete = reachable(def, S.deleteCopy);
    for (const d of deletes) expect(afterDelete, d).toContain(d);
    expect(afterDelete).toContain(S.notifyFailure);
    // The outcome looks at the recorded failure first: a failed run is never reported as a success.
    const outcome = def.States.Outcome!;
    expect(outcome.Choices![0]).toEqual({ Condition: '{% $exists($failure.error) %}', Next: S.notifyFailure });
    // And the failure notice ends the execution as failed (the alarm counts it), even if publishing fails.
    expect(def.States[S.notifyFailure]!.Next).toBe(S.failed);
    expect(def.States[S.notifyFailure]!.Catch!.map((c) => c.Next)).toEqual([S.failed]);
    expect(def.States[S.failed]!.Type).toBe('Fail');
    // A task that exits non-zero is a failure even when ECS reports the run as done.
    expect(def.States[S.output]!.Next).toBe('OutputSucceeded');
    expect(def.States.OutputSucceeded!.Choices).toEqual([{ Condition: '{% $outputExit != 0 %}', Next: 'OutputFailed' }]);
    // A broken copy, the wait's bound and the task's exit code are failures too: recorded, then deleted.
    for (const p of ['RestoreBroken', 'WaitTimedOut', 'OutputFailed']) {
      expect(def.States[p]!.Next, p).toBe(S.deleteCopy);
      expect(JSON.stringify(def.States[p]!.Assign), p).toContain('failure');
    }
  });

  it('every path from the delete steps ends with a notice; a delete that fails is reported, never silent', () => {
    const { def } = definitionOf(s, id);
    const ends = [...reachable(def, S.deleteCopy)].filter((n) => { const st = def.States[n]!; return st.End || st.Type === 'Succeed' || st.Type === 'Fail'; });
    expect(ends.sort()).toEqual([S.failed, 'Succeeded']);
    expect(allPathsPass(def, S.deleteCopy, 'Outcome')).toBe(true);
    for (const d of [...deletes, 'FindCopyInstance']) {
      const other = def.States[d]!.Catch!.find((c) => c.ErrorEquals.includes('States.ALL'))!;
      expect(JSON.stringify(other.Assign), d).toContain('notDeleted');
    }
    // Deleted only when the resource carries this run's tag (another run's kept copy is left alone).
    expect(def.States.InstanceIsOwnCopy!.Choices!.every((c) => c.Condition.includes(`Key = 'pgops:run' and Value = $pitr.runId`))).toBe(true);
  });

  it('the wait loop is bounded: each poll counts, and the count ends it as a failure', () => {
    const { def } = definitionOf(s, id);
    const bound = id === 'auth' ? (120 * 60) / 60 : (240 * 60) / 30;
    for (const choice of ['InstanceReady', ...(id === 'orders' ? ['ClusterReady'] : [])]) {
      const c = def.States[choice]!.Choices!.find((x) => x.Condition.includes('$polls'))!;
      expect(c, choice).toEqual({ Condition: `{% $polls >= ${bound} %}`, Next: 'WaitTimedOut' });
    }
    for (const d of [S.describeInstance, S.describeCluster]) expect(def.States[d]!.Assign, d).toMatchObject({ polls: '{% $polls + 1 %}' });
    // Every cycle goes through a Describe: a Wait's only way on.
    expect(def.States.WaitForInstance!.Next).toBe(S.describeInstance);
    expect(def.States.WaitForInstance!.Seconds).toBe(id === 'auth' ? 60 : 30);
  });

  it('runs the output on the database\'s own task with --from-state, and nothing secret is in the definition', () => {
    const { def, text } = definitionOf(s, id);
    const out = def.States[S.output]!;
    expect(out.Resource).toMatch(/:states:::ecs:runTask\.sync$/);
    const args = out.Arguments as { Overrides: { ContainerOverrides: Array<Record<string, unknown>> }; LaunchType: string };
    expect(args.LaunchType).toBe('FARGATE');
    expect(args.Overrides.ContainerOverrides).toHaveLength(1);
    // Only the command: no environment, no secret override.
    expect(Object.keys(args.Overrides.ContainerOverrides[0]!).sort()).toEqual(['Command', 'Name']);
    expect(String(args.Overrides.ContainerOverrides[0]!.Command)).toContain(`['pitr', '--from-state', $string(`);
    expect(text).not.toMatch(/password|secretsmanager|SecretString|postgres:\/\//i);
  });

  it('logs every execution and traces it with X-Ray', () => {
    const props = Object.values(resources(s.dbTemplate(id), 'AWS::StepFunctions::StateMachine'))[0]!.Properties!;
    expect(props.TracingConfiguration).toEqual({ Enabled: true });
    expect(props.LoggingConfiguration).toMatchObject({ Level: 'ALL', IncludeExecutionData: true });
  });

  it('alarms on failed executions, to the alert topic', () => {
    const alarms = Object.values(resources(s.dbTemplate(id), 'AWS::CloudWatch::Alarm')).map((a) => a.Properties!).filter((p) => p.MetricName === 'ExecutionsFailed');
    expect(alarms).toHaveLength(1);
    const a = alarms[0]!;
    expect(a).toMatchObject({ AlarmName: `pgops-staging-${id}-pitr-failed`, Namespace: 'AWS/States', Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold' });
    expect(flat(a.AlarmActions)).toContain('AlertsTopic');
  });

  it('outputs its ARN for pgops pitr --in-aws', () => {
    const outputs = s.dbTemplate(id).toJSON().Outputs as Record<string, { Value: unknown }>;
    const key = `PitrStateMachineArn${id === 'auth' ? 'Auth' : 'Orders'}`;
    expect(Object.keys(outputs)).toContain(key);
  });
});

describe('least privilege', () => {
  const statementsOf = (id: string): Statement[] => roleStatements(s.dbTemplate(id), `Db${id}ManagedPitrStateMachineRole`);
  const bySid = (st: Statement[], sid: string) => { const x = st.find((y) => y.Sid === sid); if (!x) throw new Error(`no ${sid}`); return x; };

  it('restores only from the database\'s source, and only with the pgops:purpose=pitr request tag', () => {
    const r = bySid(statementsOf('auth'), 'RestoreCopyInstance');
    expect(actionsOf(r).sort()).toEqual(['rds:AddTagsToResource', 'rds:RestoreDBInstanceToPointInTime']);
    expect(r.Condition).toEqual({ StringEquals: { 'aws:RequestTag/pgops:purpose': 'pitr' } });
    const res = (r.Resource as unknown[]).map(flat);
    expect(res.filter((x) => x.includes(':db:')).sort()).toEqual([expect.stringMatching(/:db:pgops-pitr-prod-db-\*$/), expect.stringMatching(/:db:prod-db$/)]);
    const c = bySid(statementsOf('orders'), 'RestoreCopyCluster');
    expect(c.Condition).toEqual({ StringEquals: { 'aws:RequestTag/pgops:purpose': 'pitr' } });
    expect((c.Resource as unknown[]).map(flat).filter((x) => x.includes(':cluster:')).sort()).toEqual([expect.stringMatching(/:cluster:orders-aurora$/), expect.stringMatching(/:cluster:pgops-pitr-orders-aurora-\*$/)]);
    expect(bySid(statementsOf('orders'), 'CreateCopyClusterInstance').Condition).toEqual({ StringEquals: { 'aws:RequestTag/pgops:purpose': 'pitr' } });
  });

  it('deletes only copies of its source that carry pgops:purpose=pitr', () => {
    for (const [id, sid] of [['auth', 'DeleteCopyInstance'], ['orders', 'DeleteCopyInstance'], ['orders', 'DeleteCopyCluster']] as const) {
      const d = bySid(statementsOf(id), sid);
      expect(d.Condition, `${id} ${sid}`).toEqual({ StringEquals: { 'aws:ResourceTag/pgops:purpose': 'pitr' } });
      expect(flat(d.Resource), `${id} ${sid}`).toMatch(/:(db|cluster):pgops-pitr-(prod-db|orders-aurora)-\*$/);
    }
    // No RDS action on every resource, no wildcard action.
    for (const id of ['auth', 'orders']) {
      for (const st of statementsOf(id)) {
        expect(actionsOf(st).some((a) => a.endsWith('*')), st.Sid).toBe(false);
        if (actionsOf(st).some((a) => a.startsWith('rds:'))) expect(flat(st.Resource), st.Sid).not.toMatch(/"\*"|^\*$/);
      }
    }
  });

  it('runs only the database\'s task definition on the pgops cluster and passes only its two roles', () => {
    const st = statementsOf('auth');
    const run = bySid(st, 'RunPitrOutputTask');
    expect(flat(run.Resource)).toContain('DbauthTaskTaskDefinition');
    expect(run.Condition).toHaveProperty('ArnEquals');
    const pass = bySid(st, 'PassPitrOutputTaskRoles');
    const roles = (pass.Resource as unknown[]).map(flat);
    expect(roles).toHaveLength(2);
    expect(roles.every((r) => /DbauthTask(TaskRole|ExecutionRole)/.test(r))).toBe(true);
    expect(pass.Condition).toEqual({ StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } });
    // The other database's task is out of reach.
    expect(flat(st)).not.toContain('Dborders');
  });

  it('the task may reset only a tagged copy\'s master password', () => {
    const task = roleStatements(s.dbTemplate('auth'), 'DbauthTaskTaskRole');
    const reset = bySid(task, 'ResetCopyMasterPassword');
    expect(actionsOf(reset)).toEqual(['rds:ModifyDBInstance']);
    expect(reset.Condition).toEqual({ StringEquals: { 'aws:ResourceTag/pgops:purpose': 'pitr' } });
    expect(flat(reset.Resource)).toMatch(/:db:pgops-pitr-prod-db-\*$/);
    // The plain database's task has no RDS right at all.
    expect(flat(roleStatements(s.dbTemplate('plain'), 'DbplainTaskTaskRole'))).not.toContain('rds:');
  });
});

describe('cdk-nag', () => {
  it('AwsSolutions: no unacknowledged finding, and every new acknowledgment matches a finding', () => {
    const report = new AwsSolutionsChecks().validateScope(s.app);
    expect(report.violations.map((v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(', ')}`)).toEqual([]);
    const dead = s.databases.flatMap((d) => deadAcknowledgments(d));
    expect(dead.map((a) => `${a.path} ${a.id}`)).toEqual([]);
  });
});
