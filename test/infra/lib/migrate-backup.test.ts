// migrate.backupBefore in the stacks: the migrate function (no pg_dump, no bucket rights) may invoke its
// own database's backup function, and only then; the runtime reads what the stack sets. Synthesized
// without bundling.
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENV, loadSettings } from '../../../functions/core/config.ts';
import { actionsOf, flat, resources, roleStatements, sampleConfig, synth, type FunctionProperties, type Synth } from '../helpers.ts';

function migrateFunction(s: Synth): FunctionProperties {
  const found = Object.entries(resources(s.dbTemplate('auth'), 'AWS::Lambda::Function')).filter(([id]) => id.startsWith('DbauthMigrateFunction'));
  expect(found).toHaveLength(1);
  return found[0]![1].Properties as unknown as FunctionProperties;
}

function backupFunctionId(s: Synth): string {
  const found = Object.keys(resources(s.dbTemplate('auth'), 'AWS::Lambda::Function')).filter((id) => id.startsWith('DbauthBackupFunction'));
  expect(found).toHaveLength(1);
  return found[0]!;
}

const invokes = (s: Synth) => roleStatements(s.dbTemplate('auth'), 'DbauthMigrateRole').filter((st) => actionsOf(st).some((a) => a.startsWith('lambda:')));

describe('migrate.backupBefore in the stacks', () => {
  let withBackups: Synth;
  let plain: Synth;
  beforeAll(() => {
    const raw = sampleConfig();
    raw.migrate = { ...(raw.migrate as object | undefined), backupBefore: 'destructive' };
    withBackups = synth({ pgops: raw, bundle: false });
    plain = synth({ bundle: false });
  });
  afterAll(() => { withBackups.dispose(); plain.dispose(); });

  it('names the backup function to the migrate function, which the runtime accepts', () => {
    const variables = migrateFunction(withBackups).Environment.Variables;
    expect(variables[ENV.backupFunction]).toEqual({ 'Fn::GetAtt': [backupFunctionId(withBackups), 'Arn'] });
    const settings = loadSettings({}, { [ENV.backupFunction]: 'arn:aws:lambda:eu-west-1:123456789012:function:pgops-staging-auth-backup' });
    expect(settings.backupFunction).toBe('arn:aws:lambda:eu-west-1:123456789012:function:pgops-staging-auth-backup');
  });

  it('lets the migrate function invoke exactly that function, nothing more', () => {
    const st = invokes(withBackups);
    expect(st).toHaveLength(1);
    expect(actionsOf(st[0]!)).toEqual(['lambda:InvokeFunction']);
    expect(flat(st[0]!.Resource)).toBe(`<${backupFunctionId(withBackups)}.Arn>`);
  });

  it('with "never" (the default), neither the variable nor the permission', () => {
    expect(migrateFunction(plain).Environment.Variables[ENV.backupFunction]).toBeUndefined();
    expect(invokes(plain)).toEqual([]);
  });

  it('cdk-nag: no unacknowledged finding', () => {
    const report = new AwsSolutionsChecks().validateScope(withBackups.app);
    expect(report.violations.map((v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.resourceLogicalId ?? r.constructPath).join(', ')}`)).toEqual([]);
  });
});
