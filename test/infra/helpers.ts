// Builds the CDK app the way `cdk synth` does (cdk.json's context: feature flags and the sample
// configuration), optionally with another pgops configuration and without bundling.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { buildPgopsApp, REPO_ROOT, type PgopsApp } from '../../lib/pgops-app.ts';

export interface CdkJson {
  app: string;
  context: Record<string, unknown> & { pgops: Record<string, unknown> };
}

export function cdkJson(): CdkJson {
  return JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as CdkJson;
}

/** A copy of the committed sample configuration, to modify. */
export function sampleConfig(): Record<string, unknown> & { databases: Array<Record<string, unknown>> } {
  return structuredClone(cdkJson().context.pgops) as Record<string, unknown> & { databases: Array<Record<string, unknown>> };
}

export interface Synth extends PgopsApp {
  app: App;
  storageTemplate: Template;
  opsTemplate: Template;
  /** Removes the cloud assembly (bundles and staged image context) from the temp dir. */
  dispose(): void;
}

/**
 * `bundle: false` skips esbuild (the function code is a placeholder): for tests about resources,
 * not about what is in the bundles.
 */
export function synth(options: { pgops?: unknown; bundle?: boolean } = {}): Synth {
  const context: Record<string, unknown> = { ...cdkJson().context };
  if (options.pgops !== undefined) context.pgops = options.pgops;
  if (options.bundle === false) context['aws:cdk:bundling-stacks'] = [];
  const outdir = mkdtempSync(join(tmpdir(), 'pgops-infra-test-'));
  const app = new App({ context, outdir });
  const built = buildPgopsApp(app);
  return {
    ...built,
    app,
    storageTemplate: Template.fromStack(built.storage),
    opsTemplate: Template.fromStack(built.ops),
    dispose: () => rmSync(outdir, { recursive: true, force: true }),
  };
}

export type Resources = Record<string, { Type: string; Properties?: Record<string, unknown>; DeletionPolicy?: string; UpdateReplacePolicy?: string }>;

export function resources(t: Template, type?: string): Resources {
  const all = t.toJSON().Resources as Resources;
  return type ? Object.fromEntries(Object.entries(all).filter(([, r]) => r.Type === type)) : all;
}

export interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource?: unknown;
  Principal?: unknown;
  Condition?: unknown;
}

export function actionsOf(s: Statement): string[] {
  return Array.isArray(s.Action) ? s.Action : [s.Action];
}

/** Every policy statement of a template: IAM policies, role inline policies and resource policies. */
export function allStatements(t: Template): Array<{ logicalId: string; type: string; statement: Statement }> {
  const out: Array<{ logicalId: string; type: string; statement: Statement }> = [];
  const add = (logicalId: string, type: string, doc: unknown) => {
    for (const statement of ((doc as { Statement?: Statement[] } | undefined)?.Statement ?? [])) out.push({ logicalId, type, statement });
  };
  for (const [id, r] of Object.entries(resources(t))) {
    const p = r.Properties ?? {};
    add(id, r.Type, p.PolicyDocument);
    add(id, r.Type, p.KeyPolicy);
    for (const pol of (p.Policies as Array<{ PolicyDocument: unknown }> | undefined) ?? []) add(id, r.Type, pol.PolicyDocument);
  }
  return out;
}

/** The statements of the inline policy attached to the role whose logical id starts with `rolePrefix`. */
export function roleStatements(t: Template, rolePrefix: string): Statement[] {
  const policies = Object.values(resources(t, 'AWS::IAM::Policy')).filter((p) =>
    ((p.Properties?.Roles as Array<{ Ref: string }>) ?? []).some((r) => r.Ref.startsWith(rolePrefix)));
  if (policies.length === 0) throw new Error(`no policy for role ${rolePrefix}`);
  return policies.flatMap((p) => (p.Properties!.PolicyDocument as { Statement: Statement[] }).Statement);
}

/** A CloudFormation value with Refs/GetAtts/Joins flattened to a readable string. */
export function flat(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if ('Ref' in o) return `<${String(o.Ref)}>`;
    if ('Fn::GetAtt' in o) return `<${(o['Fn::GetAtt'] as string[]).join('.')}>`;
    if ('Fn::Join' in o) {
      const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
      return parts.map(flat).join(sep);
    }
  }
  return JSON.stringify(v);
}
