// The plan of a managed PITR, pure: the target checked against the source's window, the copy's
// names, class, network, parameter groups and tags (the source's, unless config overrides them),
// and its expiry. Refused here, before anything is created, whatever cannot work.
import type { ManagedConfig } from '../../config.ts';
import { UsageError } from '../../errors.ts';
import type { LogicalOutputSpec } from '../outputs.ts';
import { isoSecond, pitrTags, restoredIdentifier } from './naming.ts';
import { sourceFlag, type ManagedSource } from './source.ts';
import type { ManagedPitrState } from './state.ts';
import { checkTargetInWindow, windowDocument, type ManagedTarget } from './window.ts';

export interface PlanInput {
  source: ManagedSource;
  target: ManagedTarget;
  output: LogicalOutputSpec;
  config: ManagedConfig;
  now: Date;
  runId: string;
  keep: boolean;
  environment: string;
}

const AURORA_INSTANCE_SUFFIX = '-1';

/** Every setting the copy cannot do without, each missing one named with its config key. */
function network(source: ManagedSource, pitr: ManagedConfig['pitr']): { subnetGroup: string; securityGroups: string[] } {
  const subnetGroup = pitr.dbSubnetGroup ?? source.subnetGroup;
  const securityGroups = pitr.vpcSecurityGroupIds ?? source.securityGroups;
  const issues: string[] = [];
  if (!subnetGroup) issues.push(`${sourceFlag(source)} has no DB subnet group to put the copy in: set managed.pitr.dbSubnetGroup`);
  if (securityGroups.length === 0) issues.push(`${sourceFlag(source)} has no VPC security group to give the copy: set managed.pitr.vpcSecurityGroupIds`);
  if (source.kind === 'instance' && pitr.instanceClass === 'db.serverless') issues.push('managed.pitr.instanceClass db.serverless is Aurora\'s: an RDS instance copy needs a class such as db.t4g.medium');
  if (issues.length > 0 || !subnetGroup) throw new UsageError('cannot plan the restored copy', issues);
  return { subnetGroup, securityGroups };
}

export function planManagedPitr(p: PlanInput): ManagedPitrState {
  const { source, config: { pitr } } = p;
  checkTargetInWindow(source.window, p.target, sourceFlag(source));
  const at = p.target.kind === 'time' ? p.target.at : source.window.latest!;
  const { subnetGroup, securityGroups } = network(source, pitr);
  const expires = new Date(p.now.getTime() + pitr.ttlHours * 3_600_000);
  const targetTag = p.target.kind === 'time' ? p.target.iso : 'latest';
  const base = restoredIdentifier(source.id, at, source.kind === 'cluster' ? AURORA_INSTANCE_SUFFIX.length : 0);
  const tags = Object.fromEntries(pitrTags({ source: source.id, expires, runId: p.runId, target: targetTag, environment: p.environment }).map((t) => [t.Key!, t.Value!]));
  const parameterGroup = pitr.dbParameterGroup ?? source.parameterGroup;
  const clusterParameterGroup = source.kind === 'cluster' ? pitr.dbClusterParameterGroup ?? source.clusterParameterGroup : undefined;
  return {
    version: 1,
    runId: p.runId,
    environment: p.environment,
    source: { kind: source.kind, id: source.id },
    target: p.target.kind === 'time' ? { type: 'time', value: p.target.iso } : { type: 'latest' },
    window: windowDocument(source.window),
    restored: {
      instance: source.kind === 'cluster' ? `${base}${AURORA_INSTANCE_SUFFIX}` : base,
      ...(source.kind === 'cluster' ? { cluster: base } : {}),
      instanceClass: pitr.instanceClass,
      engine: source.engine,
      subnetGroup,
      securityGroups,
      ...(parameterGroup ? { parameterGroup } : {}),
      ...(clusterParameterGroup ? { clusterParameterGroup } : {}),
      ...(source.kind === 'cluster' && pitr.instanceClass === 'db.serverless' ? { serverlessV2: { ...pitr.serverlessV2 } } : {}),
      ...(source.masterUsername ? { masterUsername: source.masterUsername } : {}),
      expires: isoSecond(expires),
      tags,
    },
    output: p.output,
    keep: p.keep,
    phase: 'planned',
    plannedAt: p.now.toISOString(),
  };
}
