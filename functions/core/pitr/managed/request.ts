// What `pgops pitr --rds-instance ID | --aurora-cluster ID` is asked: the source, a time or
// --latest, and one logical output; the self-managed PITR's other targets and --data-dir are
// refused by name. Every problem is named at once (exit 2).
import { rdsIdentifier } from '../../config.ts';
import { errorMessage, UsageError } from '../../errors.ts';
import { parseOutputFlags, type LogicalOutputSpec, type OutputFlags } from '../outputs.ts';
import { parseTargetTime, type TargetFlags } from '../targets.ts';
import type { ManagedSourceRef } from './source.ts';
import type { ManagedTarget } from './window.ts';

export interface ManagedFlags {
  rdsInstance?: string;
  auroraCluster?: string;
  target: TargetFlags & { latest?: boolean };
  output: OutputFlags;
  /** --backup: the self-managed PITR's base backup. */
  backup?: string;
}

export interface ManagedRequest {
  source: ManagedSourceRef;
  target: ManagedTarget;
  output: LogicalOutputSpec;
}

/** True when the flags ask for the managed PITR (the CLI's choice of job). */
export const isManagedRequest = (f: Pick<ManagedFlags, 'rdsInstance' | 'auroraCluster'> & { latest?: boolean }): boolean =>
  f.rdsInstance !== undefined || f.auroraCluster !== undefined || !!f.latest;

function sourceOf(f: ManagedFlags, issues: string[]): ManagedSourceRef | undefined {
  if (f.rdsInstance !== undefined && f.auroraCluster !== undefined) issues.push('--rds-instance and --aurora-cluster: give one (the source is an RDS instance or an Aurora cluster)');
  else if (f.rdsInstance === undefined && f.auroraCluster === undefined) issues.push('--latest restores an RDS instance or an Aurora cluster: give --rds-instance ID or --aurora-cluster ID');
  const kind = f.rdsInstance !== undefined ? 'instance' : 'cluster';
  const id = f.rdsInstance ?? f.auroraCluster;
  if (id === undefined) return undefined;
  const flag = kind === 'instance' ? '--rds-instance' : '--aurora-cluster';
  const parsed = rdsIdentifier.safeParse(id);
  if (!parsed.success) {
    issues.push(`${flag} ${JSON.stringify(id.slice(0, 70))}: ${parsed.error.issues[0]?.message ?? 'not an RDS identifier'}`);
    return undefined;
  }
  return { kind, id };
}

function targetOf(f: ManagedFlags, issues: string[]): ManagedTarget | undefined {
  const t = f.target;
  const other = [t.targetName !== undefined && '--target-name', t.targetLsn !== undefined && '--target-lsn', t.targetXid !== undefined && '--target-xid', t.immediate && '--immediate'].filter((x): x is string => !!x);
  if (other.length > 0) issues.push(`${other.join(', ')}: RDS and Aurora restore to a time only: use --target-time T or --latest`);
  const selfManaged = [t.exclusive && '--exclusive', t.timeline !== undefined && '--timeline', f.backup !== undefined && '--backup'].filter((x): x is string => !!x);
  if (selfManaged.length > 0) issues.push(`${selfManaged.join(', ')}: only for the self-managed PITR (base backups and a WAL archive), not for --rds-instance / --aurora-cluster`);
  if (t.targetTime !== undefined && t.latest) issues.push('--target-time and --latest: give one');
  if (t.targetTime === undefined && !t.latest && other.length === 0) issues.push('no recovery target: give --target-time T (ISO 8601 with Z or an offset) or --latest');
  if (t.latest) return { kind: 'latest' };
  if (t.targetTime === undefined) return undefined;
  try {
    const parsed = parseTargetTime(t.targetTime);
    return { kind: 'time', at: parsed.at, iso: parsed.iso };
  } catch (err) {
    issues.push(errorMessage(err));
    return undefined;
  }
}

function outputOf(f: ManagedFlags, issues: string[]): LogicalOutputSpec | undefined {
  if (f.output.dataDir !== undefined) {
    issues.push('--data-dir: a managed restore is an RDS instance, with no data directory to hand over: use --target-db NAME or --export (add --keep to keep the instance itself)');
    return undefined;
  }
  if (f.output.targetDb === undefined && !f.output.export) {
    issues.push('no output: give --target-db NAME (into a database on the connection\'s server) or --export (a logical backup in storage)');
    return undefined;
  }
  try {
    return parseOutputFlags(f.output) as LogicalOutputSpec;
  } catch (err) {
    if (err instanceof UsageError) issues.push(...(err.issues.length > 0 ? err.issues : [err.message]));
    else throw err;
    return undefined;
  }
}

export function parseManagedRequest(f: ManagedFlags): ManagedRequest {
  const issues: string[] = [];
  const source = sourceOf(f, issues);
  const target = targetOf(f, issues);
  const output = outputOf(f, issues);
  if (issues.length > 0 || !source || !target || !output) throw new UsageError('invalid managed pitr', issues);
  return { source, target, output };
}
