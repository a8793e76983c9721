// Builds the CDK app the way `cdk synth` does (cdk.json's context: feature flags and the sample
// configuration), optionally with another pgops configuration and without bundling.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { App, type Stack } from 'aws-cdk-lib';
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
  /** The shared ops stack: topic, cluster, dead-letter queues, notify-slack. */
  opsTemplate: Template;
  /** The stack of database `id` (its functions, tasks, schedules, alarms, outputs). */
  dbTemplate(id: string): Template;
  /** Removes the cloud assembly (bundles and staged image context) from the temp dir. */
  dispose(): void;
}

/**
 * `bundle: false` skips esbuild (the function code is a placeholder): for tests about resources,
 * not about what is in the bundles. `nag: false` leaves cdk-nag out of synthesis (a test then runs
 * it once itself, on a large app).
 */
export function synth(options: { pgops?: unknown; bundle?: boolean; nag?: boolean } = {}): Synth {
  const context: Record<string, unknown> = { ...cdkJson().context };
  if (options.pgops !== undefined) context.pgops = options.pgops;
  if (options.bundle === false) context['aws:cdk:bundling-stacks'] = [];
  const outdir = mkdtempSync(join(tmpdir(), 'pgops-infra-test-'));
  const app = new App({ context, outdir });
  const built = buildPgopsApp(app, { nag: options.nag });
  registerOutputs([built.storage, built.ops]);
  const dbTemplates = new Map<string, Template>();
  return {
    ...built,
    app,
    storageTemplate: Template.fromStack(built.storage),
    opsTemplate: Template.fromStack(built.ops),
    dbTemplate(id: string): Template {
      const stack = built.databases.find((d) => d.database.id === id);
      if (!stack) throw new Error(`no database stack for ${id}`);
      if (!dbTemplates.has(id)) dbTemplates.set(id, Template.fromStack(stack));
      return dbTemplates.get(id)!;
    },
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

/**
 * The outputs of every stack synthesized so far, by stack name: a database stack reads the ops
 * stack's values through CDK's weak references (Fn::GetStackOutput), which `flat` shows as the
 * value the output carries.
 */
const stackOutputs = new Map<string, Record<string, { Value: unknown }>>();

function registerOutputs(stacks: Stack[]): void {
  // Merged, not replaced: a test file may synthesize several apps with the same stack names (an
  // output's name says what it carries, so one name has one value).
  for (const stack of stacks) {
    const outputs = (Template.fromStack(stack).toJSON().Outputs ?? {}) as Record<string, { Value: unknown }>;
    stackOutputs.set(stack.stackName, { ...stackOutputs.get(stack.stackName), ...outputs });
  }
}

/** A CloudFormation value with Refs/GetAtts/Joins flattened to a readable string; another stack's output as its value. */
export function flat(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if ('Fn::GetStackOutput' in o) {
      const { StackName, OutputName } = o['Fn::GetStackOutput'] as { StackName: string; OutputName: string };
      const output = stackOutputs.get(StackName)?.[OutputName];
      return output ? flat(output.Value) : `<${StackName}.${OutputName}?>`;
    }
    if ('Ref' in o) return `<${String(o.Ref)}>`;
    if ('Fn::GetAtt' in o) return `<${(o['Fn::GetAtt'] as string[]).join('.')}>`;
    if ('Fn::Join' in o) {
      const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
      return parts.map(flat).join(sep);
    }
  }
  return JSON.stringify(v);
}

/** The Lambda function properties the tests read (values may be CloudFormation tokens). */
export interface FunctionProperties {
  Runtime?: string;
  Architectures: string[];
  Handler?: string;
  PackageType?: string;
  Timeout: number;
  Environment: { Variables: Record<string, unknown> };
  VpcConfig?: { SubnetIds: string[]; SecurityGroupIds: string[] };
  LoggingConfig: { LogGroup: { Ref: string } };
  Code: { S3Key?: string };
  ImageConfig?: { Command?: string[]; EntryPoint?: string[] };
}

export interface ContainerDefinition {
  Name: string;
  LogConfiguration: { LogDriver: string };
  EntryPoint: string[];
  Command: string[];
  Environment: Array<{ Name: string; Value: unknown }>;
  Secrets: Array<{ Name: string; ValueFrom: unknown }>;
}

export interface AlarmProperties {
  AlarmName: string;
  /** An Fn::Join: it ends with the dashboard's link, which holds the region (read it with flat()). */
  AlarmDescription: unknown;
  AlarmActions: unknown[];
  MetricName?: string;
  Statistic?: string;
  Threshold: number;
}

export interface ScheduleProperties {
  Name: string;
  GroupName: string;
  ScheduleExpression: string;
  Target: {
    Arn: unknown;
    RoleArn: unknown;
    Input: string;
    RetryPolicy: { MaximumRetryAttempts: number };
    DeadLetterConfig: { Arn: unknown };
    EcsParameters?: Record<string, unknown>;
  };
}

/** The properties of every resource of `type` (typed as the caller reads them). */
export function propertiesOf<T>(t: Template, type: string): T[] {
  return Object.values(resources(t, type)).map((r) => r.Properties as T);
}

/** The cloud assembly's record of the Docker image assets of a stack. */
export interface DockerImageAssets {
  dockerImages: Record<string, { source: { directory: string; dockerFile?: string; dockerBuildArgs?: Record<string, string>; platform?: string } }>;
}

/** The directory of a NodejsFunction's asset in the cloud assembly. */
export function assetDir(outdir: string, fn: FunctionProperties): string {
  return join(outdir, `asset.${String(fn.Code.S3Key).replace(/\.zip$/, '')}`);
}

/**
 * The bytes of `dir` zipped as a Lambda asset: with the `zip` CLI (deflate, its default level, as
 * CDK's archiver does) when present, else an estimate: zlib's deflate of each file plus a zip
 * entry's overhead.
 */
export function zippedBytes(dir: string): number {
  const files = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => join(d.parentPath, d.name));
  const zipFile = join(mkdtempSync(join(tmpdir(), 'pgops-zip-')), 'asset.zip');
  try {
    const r = spawnSync('zip', ['-q', '-r', '-X', zipFile, '.'], { cwd: dir });
    if (r.status === 0) return statSync(zipFile).size;
    return files.reduce((sum, f) => sum + deflateRawSync(readFileSync(f)).length + 2 * (46 + f.length), 22);
  } finally {
    rmSync(dirname(zipFile), { recursive: true, force: true });
  }
}

/** A widget of a CloudWatch dashboard body, as the tests read it. */
export interface WidgetJson {
  type: string;
  width: number;
  properties: { title?: string; markdown?: string; region?: string; metrics?: unknown[][] };
}

/** The dashboards of a template: name, parsed widgets and body size (the region shows as <AWS::Region>). */
export function dashboardsOf(t: Template): Array<{ name: string; widgets: WidgetJson[]; bytes: number }> {
  return Object.values(resources(t, 'AWS::CloudWatch::Dashboard')).map((r) => {
    const body = flat(r.Properties!.DashboardBody);
    return { name: String(r.Properties!.DashboardName), widgets: (JSON.parse(body) as { widgets: WidgetJson[] }).widgets, bytes: Buffer.byteLength(body) };
  });
}
