// Tracing (`tracing` in the CDK config, default on): X-Ray active tracing on every function with
// the X-Ray write statement CDK adds to its role (acknowledged for nag), and the Powertools tracer
// left on; `tracing: false` removes the TracingConfig and the statement and tells the tracer
// (POWERTOOLS_TRACE_ENABLED=false, which the runtime's loader accepts). Synthesized without
// bundling; functions are looked for in every stack of the app.
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENV, loadSettings } from '../../../../functions/core/config.ts';
import { parsePgopsConfig, PgopsConfigError } from '../../../../lib/config.ts';
import { actionsOf, sampleConfig, synth, type Statement, type Synth } from '../../helpers.ts';

interface Fn { id: string; TracingConfig?: { Mode: string }; Environment: { Variables: Record<string, unknown> }; Role: { 'Fn::GetAtt': string[] } }
const JOBS = ['Migrate', 'Backup', 'Health', 'Cleanup', 'NotifySlack'];

function templates(s: Synth): Template[] {
  return s.app.node.findAll().filter((c): c is Stack => Stack.isStack(c)).map((stack) => Template.fromStack(stack));
}

function functionsOf(s: Synth): Fn[] {
  return templates(s).flatMap((t) => Object.entries((t.toJSON() as { Resources: Record<string, { Type: string; Properties: Omit<Fn, 'id'> }> }).Resources)
    .filter(([, r]) => r.Type === 'AWS::Lambda::Function').map(([id, r]) => ({ id, ...r.Properties })));
}

/** The statements of the inline policies attached to a role (by logical id), across the app. */
function statementsOfRole(s: Synth, roleId: string): Statement[] {
  return templates(s).flatMap((t) => Object.values((t.toJSON() as { Resources: Record<string, { Type: string; Properties: { Roles?: Array<{ Ref: string }>; PolicyDocument?: { Statement: Statement[] } } }> }).Resources)
    .filter((r) => r.Type === 'AWS::IAM::Policy' && (r.Properties.Roles ?? []).some((ref) => ref.Ref === roleId))
    .flatMap((r) => r.Properties.PolicyDocument!.Statement));
}

const isXray = (st: Statement) => actionsOf(st).some((a) => a.startsWith('xray:'));

/** pgops' own functions (not CDK's helpers): one per job, each found. */
function pgopsFunctions(s: Synth): Fn[] {
  const fns = functionsOf(s).filter((f) => JOBS.some((j) => new RegExp(`^(Db[a-z]+)?${j}Function`).test(f.id)));
  for (const job of JOBS) expect(fns.some((f) => f.id.includes(`${job}Function`)), job).toBe(true);
  return fns;
}

describe('tracing on (the default)', () => {
  let s: Synth;
  beforeAll(() => { s = synth({ bundle: false }); });
  afterAll(() => s?.dispose());

  it('defaults to on', () => {
    expect(parsePgopsConfig(sampleConfig()).tracing).toBe(true);
  });

  it('sets TracingConfig Active on every function and leaves the tracer on', () => {
    for (const f of pgopsFunctions(s)) {
      expect(f.TracingConfig, f.id).toEqual({ Mode: 'Active' });
      expect(f.Environment.Variables[ENV.traceEnabled], f.id).toBeUndefined();
    }
  });

  it('lets each function write traces, and only that with Resource "*"', () => {
    for (const f of pgopsFunctions(s)) {
      const xray = statementsOfRole(s, f.Role['Fn::GetAtt'][0]!).filter(isXray);
      expect(xray.map((st) => [actionsOf(st).sort(), st.Resource]), f.id).toEqual([[['xray:PutTelemetryRecords', 'xray:PutTraceSegments'], '*']]);
    }
  });

  it('is nag-clean (the X-Ray statement acknowledged)', () => {
    expect(new AwsSolutionsChecks().validateScope(s.app).violations.map((v) => v.ruleName)).toEqual([]);
  });
});

describe('tracing: false', () => {
  let s: Synth;
  beforeAll(() => {
    const raw = sampleConfig();
    raw.tracing = false;
    s = synth({ pgops: raw, bundle: false });
  });
  afterAll(() => s?.dispose());

  it('sets no TracingConfig and turns the tracer off in every function', () => {
    for (const f of pgopsFunctions(s)) {
      expect(f.TracingConfig, f.id).toBeUndefined();
      expect(f.Environment.Variables[ENV.traceEnabled], f.id).toBe('false');
    }
  });

  it('grants no X-Ray action to any role', () => {
    for (const f of pgopsFunctions(s)) expect(statementsOfRole(s, f.Role['Fn::GetAtt'][0]!).filter(isXray), f.id).toEqual([]);
  });

  it('is nag-clean', () => {
    expect(new AwsSolutionsChecks().validateScope(s.app).violations.map((v) => v.ruleName)).toEqual([]);
  });

  it('the runtime reads the switch as written', () => {
    const migrate = pgopsFunctions(s).find((f) => f.id.startsWith('DbauthMigrateFunction'))!;
    const value = migrate.Environment.Variables[ENV.traceEnabled] as string;
    expect(loadSettings({}, { [ENV.traceEnabled]: value, [ENV.databaseSecretId]: 's' }).tracing).toBe(false);
  });
});

describe('configuration', () => {
  it('refuses a tracing value that is not a boolean, naming it', () => {
    const raw = sampleConfig();
    raw.tracing = 'off';
    expect(() => parsePgopsConfig(raw)).toThrow(PgopsConfigError);
    try {
      parsePgopsConfig(raw);
    } catch (err) {
      expect((err as PgopsConfigError).issues).toEqual(['pgops.tracing: Invalid input: expected boolean, received string']);
    }
  });
});
