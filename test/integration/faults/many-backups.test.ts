// Fault: 1,000 backups in storage. pgops promises: listing, the health job's backup checks and
// cleanup's retention complete and agree. Their times are reported (console), never asserted.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { listBackups } from '../../../functions/core/catalog/catalog.ts';
import { backupKeys, newBackupId } from '../../../functions/core/catalog/layout.ts';
import { runCleanup } from '../../../functions/core/cleanup/job.ts';
import { defaultFileConfig } from '../../../functions/core/config.ts';
import { backupChecks } from '../../../functions/core/health/backups.ts';
import { freshStorage } from '../../helpers/backup-fixtures.ts';
import { cleanupJobDeps, leftovers, listedIds } from '../../helpers/faults.ts';
import { validManifest } from '../../helpers/manifests.ts';
import { captured } from '../../helpers/output-scan.ts';
import { useTestCluster } from '../../helpers/postgres.ts';

const cluster = useTestCluster();
const out = captured(() => [cluster.pg.password]);
const { storage, dir } = freshStorage();
const COUNT = 1_000;
let db = '';
const ids: string[] = [];

beforeAll(async () => {
  db = await cluster.createDatabase('many');
  // One backup a day for 1,000 days, the newest an hour ago; written straight to disk (the file
  // storage's layout) so the set-up does not fsync 2,000 files.
  const now = Date.now();
  for (let i = 0; i < COUNT; i++) {
    const at = new Date(now - 3_600_000 - i * 86_400_000);
    const id = newBackupId(at);
    const keys = backupKeys(db, id);
    mkdirSync(dirname(join(dir, keys.dump)), { recursive: true });
    writeFileSync(join(dir, keys.dump), Buffer.alloc(16));
    writeFileSync(join(dir, keys.manifest), JSON.stringify(validManifest(db, id, { completedAt: at.toISOString(), bytes: 5_000_000 })));
    ids.push(id);
  }
});

async function timed<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const result = await fn();
  console.log(`many-backups: ${what} over ${COUNT} backups took ${Math.round(performance.now() - t0)} ms`);
  return result;
}

describe('1,000 backups in storage', () => {
  it('list, health\'s backup checks and cleanup\'s retention complete and agree (times reported)', async () => {
    const { logger } = out.logger();
    const listed = await timed('listBackups', () => listBackups(storage, db, logger));
    expect(listed.map((m) => m.id)).toEqual(ids);

    const config = defaultFileConfig();
    const health = await timed('health backup checks', () => backupChecks(storage, db, config.health, new Date(), logger));
    out.add('health checks', health.checks);
    const age = health.checks.find((c) => /age/.test(c.name));
    expect(age?.status).toBe('ok');
    expect(health.checks.every((c) => c.status !== 'critical' && c.status !== 'unknown')).toBe(true);

    const cleanup = cleanupJobDeps(cluster, storage, db, out);
    const result = await timed('cleanup (retention)', () => runCleanup(cleanup.deps));
    const kept = result.backups.kept;
    // keepLast 7, keepDaily 7, keepWeekly 4, keepMonthly 12 over daily backups.
    expect(kept.length).toBeGreaterThanOrEqual(12);
    expect(kept.length).toBeLessThanOrEqual(7 + 7 + 4 + 12);
    expect(kept.slice(0, 7)).toEqual(ids.slice(0, 7));
    expect(result.backups.deleted).toHaveLength(COUNT - kept.length);
    expect(await listedIds(storage, db)).toEqual(kept);
    expect(leftovers(dir)).toEqual([]);
    expect(cleanup.alerter.sent).toEqual([]);
  });
});
