// One environment of 100 databases (every fifth with `pitr`, half of those streaming, half archiving
// through archive_command; migrateOnDeploy on): synthesized once, without bundling, and held to
// CloudFormation's limits per stack, to least privilege per database and to cdk-nag. One ops stack
// for everything stopped at 10 databases (TooManyResourcesInStack); the stack per database must not
// stop anywhere near 100.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CloudFormationStackArtifact } from 'aws-cdk-lib/cx-api';
import { AwsSolutionsChecks } from 'cdk-nag';
import { CHECK_NAMES } from '../../../functions/core/health/types.ts';
import { DASHBOARD_LIMITS } from '../../../lib/constructs/dashboard.ts';
import { allStatements, actionsOf, dashboardsOf, flat, sampleConfig, synth, type Synth } from '../helpers.ts';
import { deadAcknowledgments } from '../nag-audit.ts';

/** CloudFormation's quotas per stack (docs: "CloudFormation quotas"). */
const LIMITS = {
  resources: 500,
  outputs: 200,
  parameters: 200,
  mappings: 200,
  /** A template uploaded to S3 (CDK uploads every template of an asset-using stack). */
  templateBytes: 1_000_000,
} as const;

const DATABASES = 100;
const ids = Array.from({ length: DATABASES }, (_, i) => `db${String(i).padStart(3, '0')}`);
const pitrOf = (i: number) => (i % 5 !== 0 ? undefined : { walArchiving: i % 10 === 0 ? 'stream' : 'archive-command' });

function hundredDatabases() {
  const raw = sampleConfig();
  raw.migrateOnDeploy = true;
  const sample = raw.databases[0]!;
  raw.databases = ids.map((id, i) => ({
    ...sample,
    id,
    secretArn: `arn:aws:secretsmanager:eu-west-1:123456789012:secret:pgops/staging/${id}-AbCdEf`,
    ...(pitrOf(i) ? { pitr: pitrOf(i) } : {}),
  }));
  return raw;
}

let s: Synth;
let stacks: CloudFormationStackArtifact[];
beforeAll(() => {
  const started = Date.now();
  // cdk-nag runs once below, on the whole app, instead of inside every synthesis.
  s = synth({ pgops: hundredDatabases(), bundle: false, nag: false });
  stacks = s.app.synth().stacks;
  // For the record (not asserted): the synthesis time of 100 databases on this machine.
  process.stderr.write(`synth of ${DATABASES} databases (no bundling, no cdk-nag): ${Date.now() - started} ms\n`);
});
afterAll(() => s?.dispose());

const template = (st: CloudFormationStackArtifact) => st.template as { Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>; Outputs?: Record<string, unknown>; Parameters?: Record<string, unknown>; Mappings?: Record<string, unknown> };
const count = (o: Record<string, unknown> | undefined) => Object.keys(o ?? {}).length;

describe(`${DATABASES} databases in one environment`, () => {
  it('synthesize as the storage stack, the ops stack and one stack per database', () => {
    expect(stacks.map((st) => st.stackName).sort()).toEqual(['pgops-staging-storage', 'pgops-staging-ops', ...ids.map((id) => `pgops-staging-db-${id}`)].sort());
    for (const st of stacks) expect(st.stackName).toMatch(/^[A-Za-z][A-Za-z0-9-]{0,127}$/);
  });

  it('keep every stack within CloudFormation\'s limits, with room to grow', () => {
    const sizes = stacks.map((st) => ({
      stack: st.stackName,
      resources: count(template(st).Resources),
      outputs: count(template(st).Outputs),
      parameters: count(template(st).Parameters),
      mappings: count(template(st).Mappings),
      bytes: Buffer.byteLength(JSON.stringify(template(st))),
    }));
    for (const x of sizes) {
      expect(x.resources, x.stack).toBeLessThan(LIMITS.resources);
      expect(x.outputs, x.stack).toBeLessThanOrEqual(LIMITS.outputs);
      expect(x.parameters, x.stack).toBeLessThanOrEqual(LIMITS.parameters);
      expect(x.mappings, x.stack).toBeLessThanOrEqual(LIMITS.mappings);
      expect(x.bytes, x.stack).toBeLessThan(LIMITS.templateBytes);
    }
    const byStack = (name: string) => sizes.find((x) => x.stack === name)!;
    process.stderr.write(`resources per stack: storage ${byStack('pgops-staging-storage').resources}, ops ${byStack('pgops-staging-ops').resources}, `
      + `database ${byStack('pgops-staging-db-db001').resources} (pitr stream ${byStack('pgops-staging-db-db000').resources}, archive-command ${byStack('pgops-staging-db-db005').resources}); `
      + `largest template ${Math.max(...sizes.map((x) => x.bytes))} bytes\n`);
    // The largest database stack (stream PITR and migrate-on-deploy) leaves most of the 500 for
    // the per-database alarms, metrics and widgets to come.
    const largest = Math.max(...sizes.slice(2).map((x) => x.resources));
    expect(largest).toBeLessThan(LIMITS.resources / 5);
    // The ops stack holds the dashboard, whose body lists every database's graphs (about 3.5 KB
    // each): half the limit at 100 databases; the other stacks do not grow with the environment.
    expect(byStack('pgops-staging-ops').bytes).toBeLessThan(LIMITS.templateBytes / 2);
    expect(Math.max(...sizes.filter((x) => x.stack !== 'pgops-staging-ops').map((x) => x.bytes))).toBeLessThan(LIMITS.templateBytes / 5);
  });

  it('do not grow the shared stacks: the same resources as with one database', () => {
    const one = synth({ bundle: false, nag: false });
    try {
      // The dashboard's body lists the databases; it stays one resource (checked below).
      const resourcesOf = (t: Record<string, unknown>) => JSON.stringify(t.Resources, (k, v: unknown) => (k === 'DashboardBody' ? '<body>' : v)).replace(/"[0-9a-f]{64}(\.[a-z]+)?"/g, '"<hash>"');
      expect(resourcesOf(s.opsTemplate.toJSON())).toEqual(resourcesOf(one.opsTemplate.toJSON()));
      expect(resourcesOf(s.storageTemplate.toJSON())).toEqual(resourcesOf(one.storageTemplate.toJSON()));
    } finally {
      one.dispose();
    }
  });

  it('fit on one dashboard within CloudWatch\'s quotas, a row of four graphs per database', () => {
    const dashboards = dashboardsOf(s.opsTemplate);
    expect(dashboards.map((d) => d.name)).toEqual(['pgops-staging']);
    const { widgets, bytes } = dashboards[0]!;
    const metrics = widgets.reduce((n, w) => n + (w.properties.metrics?.length ?? 0), 0);
    process.stderr.write(`dashboard of ${DATABASES} databases: ${widgets.length} widgets, ${metrics} metrics, body ${bytes} bytes\n`);
    expect(widgets.length).toBe(1 + 4 * DATABASES);
    expect(widgets.length).toBeLessThanOrEqual(DASHBOARD_LIMITS.widgets);
    // Per database: 2 backup, 4 duration and restore test, 1 per health check, 1 cleanup; 1 WAL with pitr.
    expect(metrics).toBe(DATABASES * (7 + CHECK_NAMES.length) + DATABASES / 5);
    expect(metrics).toBeLessThanOrEqual(DASHBOARD_LIMITS.metrics);
    for (const id of ids) expect(widgets.filter((w) => w.properties.title?.startsWith(`${id} · `)), id).toHaveLength(4);
  });

  it('share values through a handful of weak references: no export, no import', () => {
    for (const st of stacks) {
      const json = JSON.stringify(template(st));
      expect(json, st.stackName).not.toContain('Fn::ImportValue');
      expect(json, st.stackName).not.toContain('"Export"');
    }
    const ops = stacks.find((st) => st.stackName === 'pgops-staging-ops')!;
    // AlertTopicArn, ClusterArn, and one output per shared value read by the database stacks.
    expect(count(template(ops).Outputs)).toBeLessThanOrEqual(10);
  });

  it('give every named resource a name no other database uses', () => {
    const names = new Map<string, string[]>();
    const nameKeys: Record<string, string> = {
      'AWS::CloudWatch::Alarm': 'AlarmName', 'AWS::Scheduler::Schedule': 'Name', 'AWS::ECS::Service': 'ServiceName',
      'AWS::IAM::ManagedPolicy': 'ManagedPolicyName', 'AWS::ECS::TaskDefinition': 'Family',
    };
    for (const st of stacks) {
      for (const r of Object.values(template(st).Resources)) {
        const key = nameKeys[r.Type];
        if (!key) continue;
        const name = `${r.Type} ${String(r.Properties?.[key])}`;
        names.set(name, [...(names.get(name) ?? []), st.stackName]);
      }
    }
    expect([...names].filter(([, where]) => where.length > 1)).toEqual([]);
    expect([...names.keys()].filter((n) => n.startsWith('AWS::Scheduler::Schedule'))).toHaveLength(DATABASES * 4 + DATABASES / 5);
  });

  it('keep each database\'s rights on its own prefix and its own secret', () => {
    const bucketArn = 'arn:<AWS::Partition>:s3:::pgops-staging-backups-<AWS::AccountId>-<AWS::Region>';
    for (const id of ids) {
      const t = s.dbTemplate(id);
      for (const { logicalId, statement } of allStatements(t)) {
        if (statement.Effect !== 'Allow') continue;
        const where = `${id} ${logicalId} ${statement.Sid ?? ''}`;
        const resources = ([] as unknown[]).concat(statement.Resource ?? []).map(flat);
        for (const r of resources.filter((x) => x.startsWith(`${bucketArn}/`))) expect(r, where).toMatch(new RegExp(`^${bucketArn.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/pgops/${id}/`));
        if (actionsOf(statement).includes('s3:ListBucket')) expect(statement.Condition, where).toEqual({ StringLike: { 's3:prefix': [`pgops/${id}/*`] } });
        for (const r of resources.filter((x) => x.startsWith('arn:aws:secretsmanager:'))) expect(r, where).toBe(`arn:aws:secretsmanager:eu-west-1:123456789012:secret:pgops/staging/${id}-AbCdEf`);
      }
    }
  });

  it('pass cdk-nag with every acknowledgment still matching a finding', () => {
    const report = new AwsSolutionsChecks().validateScope(s.app);
    expect(report.violations.map((v) => `${v.ruleName}: ${v.violatingResources.length} resources, e.g. ${v.violatingResources[0]?.constructPath ?? ''}`)).toEqual([]);
    expect(deadAcknowledgments(s.app).map((a) => `${a.path}: ${a.id}`)).toEqual([]);
  });
});
