// The restore-window check of an RDS instance or Aurora cluster: backups off or kept too few days
// is critical; a latest restorable time too far behind is a warning; otherwise ok, with the window.
import { describe, expect, it } from 'vitest';
import { defaultFileConfig, managedConfigOf } from '../../../../../functions/core/config.ts';
import { checkRestoreWindow } from '../../../../../functions/core/health/restore-window.ts';
import { FakeRds, T } from '../pitr/managed/fake-rds.ts';

const thresholds = defaultFileConfig().health;
const now = T('2026-12-01T14:10:00Z');

function check(world: FakeRds, managed: unknown) {
  return checkRestoreWindow({ rds: () => world.rds, managed: managedConfigOf(defaultFileConfig({ managed })), thresholds, now });
}

describe('checkRestoreWindow', () => {
  it('is ok with the window, the lag and the retention', async () => {
    const w = new FakeRds();
    w.addSourceInstance('auth-prod');
    const r = await check(w, { rdsInstance: 'auth-prod' });
    expect(r).toMatchObject({ name: 'restore-window', status: 'ok', value: 5, threshold: 15 });
    expect(r.summary).toBe('RDS instance auth-prod: restorable from 2026-11-24T02:00:00.000Z to 2026-12-01T14:05:00.000Z (5 min behind; backups kept 7 days)');
    expect(r.details).toMatchObject({ lagSeconds: 300, backupRetentionDays: 7 });
  });

  it('warns when the latest restorable time lags more than health.maxRestoreLagMinutes', async () => {
    const w = new FakeRds();
    w.addSourceCluster('orders', { LatestRestorableTime: T('2026-12-01T13:40:00Z'), Status: 'stopped' });
    const r = await check(w, { auroraCluster: 'orders' });
    expect(r).toMatchObject({ status: 'warning', value: 30, threshold: 15 });
    expect(r.summary).toMatch(/^Aurora cluster orders: the latest restorable time is 30 min behind \(max 15 min\) \(it is stopped\)/);
  });

  it('is critical with automated backups off or kept fewer days than health.minBackupRetentionDays', async () => {
    const off = new FakeRds();
    off.addSourceInstance('auth-prod', { BackupRetentionPeriod: 0 });
    expect(await check(off, { rdsInstance: 'auth-prod' })).toMatchObject({ status: 'critical', summary: expect.stringMatching(/automated backups are off/) });
    const short = new FakeRds();
    short.addSourceInstance('auth-prod', { BackupRetentionPeriod: 3 });
    expect(await check(short, { rdsInstance: 'auth-prod' })).toMatchObject({ status: 'critical', value: 3, threshold: 7, summary: expect.stringMatching(/kept 3 day\(s\), below health.minBackupRetentionDays \(7\)/) });
  });

  it('fails (the job reports it unknown) when the configured source does not exist', async () => {
    await expect(check(new FakeRds(), { rdsInstance: 'nope' })).rejects.toThrow(/no such DB instance/);
  });
});
