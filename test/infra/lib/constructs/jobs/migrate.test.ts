// Who may invoke a migrate function: `migrateInvokers` (per environment, replaced per database by
// databases[].migrateInvokers) becomes one Lambda permission per pipeline role on that database's
// migrate function, and nothing on any other function or for anyone else. Synthesized without
// bundling; the resources are looked for in every stack of the app, wherever lib/ puts them.
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateInvokersFor, parsePgopsConfig, PgopsConfigError } from '../../../../../lib/config.ts';
import { sampleConfig, synth, type Synth } from '../../../helpers.ts';

const PIPELINE = 'arn:aws:iam::123456789012:role/github-deploy';
const RELEASES = 'arn:aws:iam::123456789012:role/ci/release-pipeline';
const BILLING_PIPELINE = 'arn:aws:iam::210987654321:role/billing-pipeline';

interface Permission { stack: string; id: string; Action: string; FunctionName: unknown; Principal: string; SourceArn?: unknown; SourceAccount?: unknown }
interface FunctionInfo { stack: string; id: string }

function stacksOf(s: Synth): Stack[] {
  return s.app.node.findAll().filter((c): c is Stack => Stack.isStack(c));
}

function resourcesOf(s: Synth, type: string): Array<{ stack: string; id: string; props: Record<string, unknown> }> {
  return stacksOf(s).flatMap((stack) => Object.entries((Template.fromStack(stack).toJSON() as { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> }).Resources)
    .filter(([, r]) => r.Type === type).map(([id, r]) => ({ stack: stack.stackName, id, props: r.Properties })));
}

const permissions = (s: Synth): Permission[] => resourcesOf(s, 'AWS::Lambda::Permission').map((r) => ({ stack: r.stack, id: r.id, ...r.props }) as Permission);
const functions = (s: Synth): FunctionInfo[] => resourcesOf(s, 'AWS::Lambda::Function').map((r) => ({ stack: r.stack, id: r.id }));
/** The logical id of the function a permission is for. */
const target = (p: Permission): string => ((p.FunctionName as { 'Fn::GetAtt': string[] })['Fn::GetAtt'])[0]!;
const migrateOf = (s: Synth, db: string): string => {
  const found = functions(s).filter((f) => f.id.startsWith(`Db${db}MigrateFunction`));
  expect(found, `one migrate function of ${db}`).toHaveLength(1);
  return found[0]!.id;
};

function issuesOf(raw: unknown): string[] {
  try {
    parsePgopsConfig(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(PgopsConfigError);
    return (err as PgopsConfigError).issues;
  }
  throw new Error('the configuration was accepted');
}

function billing(extra: Record<string, unknown> = {}) {
  return {
    id: 'billing', secretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:pgops/staging/billing-XyZ123',
    vpcId: 'vpc-0aaaaaaaaaaaaaaaa', subnetIds: ['subnet-0aaaaaaaaaaaaaaaa'], securityGroupIds: ['sg-0aaaaaaaaaaaaaaaa'], ...extra,
  };
}

describe('with invokers for the environment and for one database', () => {
  let s: Synth;
  beforeAll(() => {
    const raw = sampleConfig();
    raw.migrateInvokers = [PIPELINE, RELEASES];
    raw.databases.push(billing({ migrateInvokers: [BILLING_PIPELINE] }));
    s = synth({ pgops: raw, bundle: false });
  });
  afterAll(() => s?.dispose());

  it('allows each environment role to invoke the migrate function of a database without its own list', () => {
    const auth = permissions(s).filter((p) => target(p) === migrateOf(s, 'auth'));
    expect(auth.map((p) => p.Principal).sort()).toEqual([RELEASES, PIPELINE].sort());
    for (const p of auth) {
      expect(p.Action).toBe('lambda:InvokeFunction');
      expect(p.SourceArn).toBeUndefined();
    }
  });

  it('a database list replaces the environment list: only its own role may invoke its migrate function', () => {
    const own = permissions(s).filter((p) => target(p) === migrateOf(s, 'billing'));
    expect(own.map((p) => [p.Principal, p.Action])).toEqual([[BILLING_PIPELINE, 'lambda:InvokeFunction']]);
  });

  it('grants nothing on the other functions: the only other permission is the alert topic invoking notify-slack', () => {
    const migrates = new Set([migrateOf(s, 'auth'), migrateOf(s, 'billing')]);
    const others = permissions(s).filter((p) => !migrates.has(target(p)));
    expect(others.map((p) => [target(p).replace(/[0-9A-F]{8}$/, ''), p.Principal])).toEqual([['NotifySlackFunction', 'sns.amazonaws.com']]);
    expect(permissions(s).filter((p) => /^arn:aws:iam::/.test(p.Principal))).toHaveLength(3);
  });

  it('keys each permission by its role, so reordering the list replaces nothing', () => {
    const raw = sampleConfig();
    raw.migrateInvokers = [RELEASES, PIPELINE];
    const reordered = synth({ pgops: raw, bundle: false });
    try {
      const ids = (x: Synth) => permissions(x).filter((p) => target(p) === migrateOf(x, 'auth')).map((p) => p.id).sort();
      expect(ids(reordered)).toEqual(ids(s));
    } finally {
      reordered.dispose();
    }
  });

  it('is nag-clean', () => {
    const report = new AwsSolutionsChecks().validateScope(s.app);
    expect(report.violations.map((v) => v.ruleName)).toEqual([]);
  });
});

describe('without invokers (the default)', () => {
  it('adds no permission to any migrate function', () => {
    const s = synth({ bundle: false });
    try {
      expect(permissions(s).filter((p) => target(p) === migrateOf(s, 'auth'))).toEqual([]);
    } finally {
      s.dispose();
    }
  });
});

describe('configuration', () => {
  it('resolves a database\'s invokers: its own list, else the environment\'s, else none', () => {
    const raw = sampleConfig();
    raw.migrateInvokers = [PIPELINE];
    raw.databases.push(billing({ migrateInvokers: [] }));
    const c = parsePgopsConfig(raw);
    expect(migrateInvokersFor(c, c.databases[0]!)).toEqual([PIPELINE]);
    // An empty list of its own: nobody through the resource policy, whatever the environment says.
    expect(migrateInvokersFor(c, c.databases[1]!)).toEqual([]);
    expect(parsePgopsConfig(sampleConfig()).migrateInvokers).toEqual([]);
  });

  it('accepts IAM role ARNs only, naming each bad entry, and refuses a role listed twice', () => {
    const raw = sampleConfig();
    raw.migrateInvokers = [
      'arn:aws:iam::123456789012:user/alice',
      'arn:aws:sts::123456789012:assumed-role/github-deploy/session',
      'arn:aws:iam::123456789012:role/*',
      'github-deploy',
    ];
    raw.databases.push(billing({ migrateInvokers: [PIPELINE, PIPELINE] }));
    expect(issuesOf(raw)).toEqual([
      'pgops.databases[1].migrateInvokers: lists a role twice',
      ...[0, 1, 2, 3].map((i) => `pgops.migrateInvokers[${i}]: must be an IAM role ARN, like arn:aws:iam::123456789012:role/github-deploy`),
    ]);
  });
});
