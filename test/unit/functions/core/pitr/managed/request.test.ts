// What `pgops pitr --rds-instance | --aurora-cluster` accepts: one source, a time or --latest, and
// --target-db or --export; everything else is named at once (exit 2).
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../../../../functions/core/errors.ts';
import { isManagedRequest, parseManagedRequest, type ManagedFlags } from '../../../../../../functions/core/pitr/managed/request.ts';

const issues = (f: ManagedFlags): string[] => {
  try { parseManagedRequest(f); } catch (err) { expect(err).toBeInstanceOf(UsageError); expect((err as UsageError).exitCode).toBe(2); return (err as UsageError).issues; }
  throw new Error('expected a usage error');
};

describe('parseManagedRequest', () => {
  it('takes an instance or a cluster, a time with a zone or --latest, and a logical output', () => {
    expect(parseManagedRequest({ rdsInstance: 'auth-prod', target: { targetTime: '2026-12-01T15:01:00+01:00' }, output: { targetDb: 'auth_1401', create: true, tables: ['users'] } })).toEqual({
      source: { kind: 'instance', id: 'auth-prod' },
      target: { kind: 'time', at: new Date('2026-12-01T14:01:00.000Z'), iso: '2026-12-01T14:01:00.000Z' },
      output: { kind: 'target-db', database: 'auth_1401', create: true, clean: false, tables: ['users'], sourceDb: undefined },
    });
    expect(parseManagedRequest({ auroraCluster: 'orders', target: { latest: true }, output: { export: true } })).toEqual({
      source: { kind: 'cluster', id: 'orders' }, target: { kind: 'latest' }, output: { kind: 'export', sourceDb: undefined },
    });
  });

  it('names every problem at once', () => {
    expect(issues({ rdsInstance: 'a', auroraCluster: 'b', target: { targetTime: '2026-12-01T14:01:00', latest: true }, output: { dataDir: '/x' } })).toEqual([
      '--rds-instance and --aurora-cluster: give one (the source is an RDS instance or an Aurora cluster)',
      '--target-time and --latest: give one',
      '--data-dir: a managed restore is an RDS instance, with no data directory to hand over: use --target-db NAME or --export (add --keep to keep the instance itself)',
    ]);
  });

  it('refuses the self-managed PITR\'s other targets and options by name', () => {
    expect(issues({ rdsInstance: 'auth', target: { targetName: 'before-deploy', exclusive: true }, backup: 'x', output: { export: true } })).toEqual([
      '--target-name: RDS and Aurora restore to a time only: use --target-time T or --latest',
      '--exclusive, --backup: only for the self-managed PITR (base backups and a WAL archive), not for --rds-instance / --aurora-cluster',
    ]);
  });

  it('refuses an identifier RDS would refuse, a time without a zone, and no target or output', () => {
    expect(issues({ rdsInstance: 'auth--prod', target: {}, output: {} })).toEqual([
      expect.stringMatching(/^--rds-instance "auth--prod": must be an RDS identifier/),
      'no recovery target: give --target-time T (ISO 8601 with Z or an offset) or --latest',
      'no output: give --target-db NAME (into a database on the connection\'s server) or --export (a logical backup in storage)',
    ]);
    expect(issues({ auroraCluster: 'orders', target: { targetTime: '2026-12-01T14:01:00' }, output: { export: true } })).toEqual([expect.stringMatching(/has no time zone/)]);
    expect(issues({ target: { latest: true }, output: { export: true } })).toEqual(['--latest restores an RDS instance or an Aurora cluster: give --rds-instance ID or --aurora-cluster ID']);
  });

  it('is chosen by --rds-instance, --aurora-cluster or --latest', () => {
    expect(isManagedRequest({})).toBe(false);
    expect(isManagedRequest({ rdsInstance: 'a' })).toBe(true);
    expect(isManagedRequest({ auroraCluster: 'a' })).toBe(true);
    expect(isManagedRequest({ latest: true })).toBe(true);
  });
});
