// RDS-managed secrets in the stacks: a master-user secret that RDS manages (rds!db-..., username and
// password only) is accepted with databases[].host and dbname (and port), which reach every function
// and task of that database as PGOPS_DATABASE_HOST / _PORT / _NAME, read back by the runtime's own
// loader; without them the configuration is refused naming both. Synthesized without bundling.
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENV, loadSettings } from '../../../functions/core/config.ts';
import { isRdsManagedSecret, parsePgopsConfig, PgopsConfigError } from '../../../lib/config.ts';
import { sampleConfig, synth, type ContainerDefinition, type Synth } from '../helpers.ts';

const RDS_SECRET = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-3f1c2a9e-7b4d-4c8e-9f00-1234567890ab-AbCdEf';
const ENDPOINT = 'billing.c1a2b3c4d5e6.eu-west-1.rds.amazonaws.com';
const ENDPOINT_VARS = [ENV.databaseHost, ENV.databasePort, ENV.databaseName];

function billing(extra: Record<string, unknown> = {}) {
  return {
    id: 'billing', secretArn: RDS_SECRET, host: ENDPOINT, port: 5432, dbname: 'billing',
    vpcId: 'vpc-0aaaaaaaaaaaaaaaa', subnetIds: ['subnet-0aaaaaaaaaaaaaaaa'], securityGroupIds: ['sg-0aaaaaaaaaaaaaaaa'], ...extra,
  };
}

function issuesOf(raw: unknown): string[] {
  try {
    parsePgopsConfig(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(PgopsConfigError);
    return (err as PgopsConfigError).issues;
  }
  throw new Error('the configuration was accepted');
}

describe('configuration', () => {
  it('recognises RDS-managed secrets by their name', () => {
    expect(isRdsManagedSecret(RDS_SECRET)).toBe(true);
    expect(isRdsManagedSecret('arn:aws:secretsmanager:eu-west-1:123456789012:secret:pgops/staging/auth-AbCdEf')).toBe(false);
  });

  it('accepts an RDS-managed secret with host and dbname; the port is optional', () => {
    const raw = sampleConfig();
    raw.databases.push(billing({ port: undefined }));
    const db = parsePgopsConfig(raw).databases[1]!;
    expect(db).toMatchObject({ secretArn: RDS_SECRET, host: ENDPOINT, dbname: 'billing' });
    expect(db.port).toBeUndefined();
  });

  it('refuses an RDS-managed secret without host and dbname, naming both', () => {
    const raw = sampleConfig();
    raw.databases.push(billing({ host: undefined, dbname: undefined }));
    expect(issuesOf(raw)).toEqual([
      'pgops.databases[1].host: required with an RDS-managed secret (rds!...), which holds only username and password',
      'pgops.databases[1].dbname: required with an RDS-managed secret (rds!...), which holds only username and password',
    ]);
  });

  it('names a bad host, port and dbname at once', () => {
    const raw = sampleConfig();
    raw.databases.push(billing({ host: 'https://billing', port: 0, dbname: '' }));
    expect(issuesOf(raw)).toEqual([
      'pgops.databases[1].host: must be a host name or an IP address (the instance or cluster endpoint)',
      'pgops.databases[1].port: Too small: expected number to be >=1',
      'pgops.databases[1].dbname: Too small: expected string to have >=1 characters',
    ]);
  });
});

describe('in the stacks', () => {
  let s: Synth;
  let resources: Array<[string, { Type: string; Properties: Record<string, unknown> }]>;
  beforeAll(() => {
    const raw = sampleConfig();
    raw.databases.push(billing());
    s = synth({ pgops: raw, bundle: false });
    resources = s.app.node.findAll().filter((c): c is Stack => Stack.isStack(c))
      .flatMap((st) => Object.entries((Template.fromStack(st).toJSON() as { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> }).Resources));
  });
  afterAll(() => s?.dispose());

  const functionVars = (prefix: string) => resources.filter(([id, r]) => r.Type === 'AWS::Lambda::Function' && id.startsWith(prefix))
    .map(([id, r]) => [id, (r.Properties.Environment as { Variables: Record<string, unknown> }).Variables] as const);
  const taskVars = (prefix: string) => resources.filter(([id, r]) => r.Type === 'AWS::ECS::TaskDefinition' && id.startsWith(prefix))
    .map(([id, r]) => [id, Object.fromEntries((r.Properties.ContainerDefinitions as ContainerDefinition[])[0]!.Environment.map((e) => [e.Name, e.Value]))] as const);

  it('gives every function and task of that database its host, port and database name', () => {
    const all = [...functionVars('Dbbilling'), ...taskVars('Dbbilling')];
    expect(all.map(([id]) => id.replace(/[0-9A-F]{8}$/, ''))).toEqual(expect.arrayContaining(['DbbillingMigrateFunction', 'DbbillingBackupFunction', 'DbbillingHealthFunction', 'DbbillingCleanupFunction', 'DbbillingTaskTaskDefinition']));
    for (const [id, vars] of all) {
      expect(Object.fromEntries(ENDPOINT_VARS.map((k) => [k, vars[k]])), id).toEqual({ [ENV.databaseHost]: ENDPOINT, [ENV.databasePort]: '5432', [ENV.databaseName]: 'billing' });
      expect(vars[ENV.databaseSecretId] ?? RDS_SECRET, id).toBe(RDS_SECRET);
    }
  });

  it('gives the other database none of them', () => {
    for (const [id, vars] of [...functionVars('Dbauth'), ...taskVars('Dbauth')]) {
      expect(ENDPOINT_VARS.filter((k) => k in vars), id).toEqual([]);
    }
  });

  it('writes values the runtime reads back as written', () => {
    const [, vars] = functionVars('DbbillingMigrateFunction')[0]!;
    const settings = loadSettings({}, { [ENV.databaseSecretId]: RDS_SECRET, ...Object.fromEntries(ENDPOINT_VARS.map((k) => [k, vars[k] as string])) });
    expect(settings).toMatchObject({ databaseHost: ENDPOINT, databasePort: 5432, databaseName: 'billing' });
  });

  it('reads the RDS-managed secret as any other (the same least-privilege statement) and stays nag-clean', () => {
    const policies = resources.filter(([, r]) => r.Type === 'AWS::IAM::Policy').map(([, r]) => JSON.stringify(r.Properties.PolicyDocument));
    expect(policies.some((p) => p.includes(RDS_SECRET) && p.includes('secretsmanager:GetSecretValue'))).toBe(true);
    expect(new AwsSolutionsChecks().validateScope(s.app).violations.map((v) => v.ruleName)).toEqual([]);
  });
});
