// The wal-archiving check on a real cluster that archives through `pgops wal push` (the bundled CLI
// as archive_command): the archive's age and gaps, pg_stat_archiver failures across runs, and a
// replication slot that holds back too much WAL. Runs in order: each test builds on the last.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultFileConfig } from '../../../../../functions/core/config.ts';
import { DEFAULT_SESSION, parseDatabaseUrl } from '../../../../../functions/core/db.ts';
import { runHealth, type CheckResult, type HealthDeps, type HealthResult } from '../../../../../functions/core/health/index.ts';
import { readHealthState } from '../../../../../functions/core/health/state.ts';
import { runBaseBackup } from '../../../../../functions/core/physical/basebackup.ts';
import { FileStorage } from '../../../../../functions/core/storage/file.ts';
import type { Storage } from '../../../../../functions/core/storage/types.ts';
import { archivingConf, sharedStorageDir } from '../../../../helpers/archiving.ts';
import { waitFor } from '../../../../helpers/cli.ts';
import { captured } from '../../../../helpers/output-scan.ts';
import { copyDatabase, removeWal, switchAndArchive } from '../../../../helpers/physical-manifests.ts';
import { useTestCluster } from '../../../../helpers/postgres.ts';

const DB_ID = 'walhealth';
const work = mkdtempSync(join(tmpdir(), 'pgops-walhealth-it-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const store = sharedStorageDir();
const storage = new FileStorage(pathToFileURL(store).href);
const cluster = useTestCluster({ conf: archivingConf(store, DB_ID) });
const out = captured(() => [cluster.pg.password]);

function deps(extra: Partial<HealthDeps> & { health?: Record<string, number> } = {}): HealthDeps {
  const { health, ...rest } = extra;
  return {
    target: cluster.target(), session: DEFAULT_SESSION, logger: out.logger().logger, databaseId: DB_ID, environment: 'test',
    config: defaultFileConfig({ health: health ?? {} }), migrationsDir: mkdtempSync(join(work, 'migrations-')), storage, ...rest,
  };
}

async function walCheck(d: HealthDeps): Promise<CheckResult> {
  const r: HealthResult = await runHealth(d);
  out.add('health result', r);
  return r.checks.find((c) => c.name === 'wal-archiving')!;
}

const archiver = async () => (await cluster.query<{ failed: string; archived: Date | null; failedAt: Date | null }>(
  'SELECT failed_count AS failed, last_archived_time AS archived, last_failed_time AS "failedAt" FROM pg_stat_archiver')).rows[0]!;

describe('wal-archiving on a cluster archiving through wal push', () => {
  let backupId = '';
  let firstAfterBackup = '';

  it('WAL archived but no base backup: critical, nothing can be recovered yet', async () => {
    await switchAndArchive(cluster, storage, DB_ID);
    const c = await walCheck(deps());
    expect(c).toMatchObject({ status: 'critical', threshold: 15, value: expect.any(Number) });
    expect(c.summary).toContain('no base backup: the archived WAL cannot be recovered from anything; take one (pgops basebackup)');
  });

  it('after a base backup and more archived WAL: ok, caught up with the server (value 0), the window from the backup', async () => {
    const alerter = out.alerter();
    const m = await runBaseBackup({ target: cluster.target(), storage, logger: out.logger().logger, alerter, databaseId: DB_ID, environment: 'test', binDir: cluster.pg.binDir, archivePollMs: 200 });
    backupId = m.id;
    firstAfterBackup = await switchAndArchive(cluster, storage, DB_ID);
    await switchAndArchive(cluster, storage, DB_ID);
    const c = await walCheck(deps());
    expect(c).toMatchObject({ status: 'ok', value: 0, threshold: 15 });
    // The bgwriter may log a running-xacts record (every 15 s with activity) after the switch: a
    // loaded machine then sees a few bytes not archived yet, which the summary names.
    expect(c.summary).toMatch(/^the archive is caught up with the server: newest archived WAL [0-9A-F]{24}, the server writes at [0-9A-F]+\/[0-9A-F]+(; [^;]+ written since, archived when the segment switches \(archive_timeout\))?; restore window from /);
    expect(c.details).toMatchObject({ archiveMode: 'on', archive: { gaps: [], problems: [], keptBaseBackups: 1, window: { from: { backupId: m.id, lsn: m.stopLsn } } } });
  });

  it('an hour later on an idle server: ok, value 0, the archive caught up with the server', async () => {
    const later = new Date(Date.now() + 60 * 60_000);
    const c = await walCheck(deps({ clock: () => later }));
    expect(c).toMatchObject({ status: 'ok', value: 0 });
    expect(c.summary).toMatch(/^the archive is caught up with the server: newest archived WAL [0-9A-F]{24}, the server writes at /);
  });

  it('an hour later with the server two segments past the archive: critical, value about 60', async () => {
    // A frozen copy of the archive, while the server goes on: the copy falls behind.
    const frozen: Storage = new FileStorage(pathToFileURL(mkdtempSync(join(work, 'frozen-'))).href);
    await copyDatabase(storage, frozen, DB_ID);
    await switchAndArchive(cluster, storage, DB_ID);
    await switchAndArchive(cluster, storage, DB_ID);
    const later = new Date(Date.now() + 60 * 60_000);
    const c = await walCheck(deps({ storage: frozen, clock: () => later }));
    expect(c.status).toBe('critical');
    expect(c.value).toBeGreaterThanOrEqual(59);
    expect(c.summary).toMatch(/^newest archived WAL [0-9A-F]{24} is 6\d(\.\d)? min old \(max 15 min\): archiving has stopped or fallen behind/);
  });

  it('a segment missing after the base backup: critical, the gap named', async () => {
    const scratch: Storage = new FileStorage(pathToFileURL(mkdtempSync(join(work, 'gap-'))).href);
    await copyDatabase(storage, scratch, DB_ID);
    await removeWal(scratch, DB_ID, firstAfterBackup);
    const c = await walCheck(deps({ storage: scratch }));
    expect(c.status).toBe('critical');
    expect(c.summary).toContain(`gap: ${firstAfterBackup} is missing; recovery from backup ${backupId} can reach`);
    expect(c.summary).toContain('take a new base backup (pgops basebackup)');
  });

  it('a replication slot holding back more WAL than allowed: warning, named, with what it holds; inactive alone is fine', async () => {
    await cluster.query("SELECT pg_create_physical_replication_slot('health_x', true)");
    try {
      await switchAndArchive(cluster, storage, DB_ID);
      const c = await walCheck(deps({ health: { maxSlotRetainedBytes: 1024 } }));
      expect(c.status).toBe('warning');
      expect(c.summary).toMatch(/replication slot health_x holds back [\d.]+ MiB of WAL \(max 1\.0 KiB\): its consumer is behind or gone/);
      expect(c.details).toMatchObject({ slots: [{ name: 'health_x', type: 'physical', active: false, walStatus: 'reserved' }] });
      // Within the default 1 GiB it is only inactive: wal receive's own slot looks like this.
      const within = await walCheck(deps());
      expect(within.status).toBe('ok');
      expect(within.summary).not.toContain('health_x');
    } finally {
      await cluster.query("SELECT pg_drop_replication_slot('health_x')");
    }
  });

  it('a slot that lost its WAL (past max_slot_wal_keep_size): critical, with the way back', async () => {
    await cluster.query("SELECT pg_create_physical_replication_slot('health_lost', true)");
    await cluster.query("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'");
    await cluster.query('SELECT pg_reload_conf()');
    try {
      await waitFor('the slot to be lost', async () => {
        await switchAndArchive(cluster, storage, DB_ID);
        await cluster.query('CHECKPOINT');
        return (await cluster.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = 'health_lost' AND wal_status = 'lost'")).rowCount === 1;
      }, 120_000);
      const c = await walCheck(deps());
      expect(c.status).toBe('critical');
      expect(c.summary).toContain('replication slot health_lost has lost WAL it needed (wal_status lost): its consumer cannot continue without a gap; drop and recreate the slot, then take a new base backup');
    } finally {
      await cluster.query('ALTER SYSTEM RESET max_slot_wal_keep_size');
      await cluster.query('SELECT pg_reload_conf()');
      await cluster.query("SELECT pg_drop_replication_slot('health_lost')");
    }
  });

  it('archive_command failing: critical; once it works again, the failures since the last run are a warning, then ok', async () => {
    await walCheck(deps()); // the baseline of failures, kept in the health state
    await cluster.query("ALTER SYSTEM SET archive_command = 'false'");
    await cluster.query('SELECT pg_reload_conf()');
    try {
      await cluster.query('INSERT INTO pgops_wal_ticks DEFAULT VALUES');
      await cluster.query('SELECT pg_switch_wal()');
      await waitFor('an archiving failure', async () => Number((await archiver()).failed) > 0, 120_000);
      const failing = await walCheck(deps());
      expect(failing.status).toBe('critical');
      expect(failing.summary).toMatch(/archiving is failing: WAL [0-9A-F]{24} failed at/);
    } finally {
      await cluster.query('ALTER SYSTEM RESET archive_command');
      await cluster.query('SELECT pg_reload_conf()');
    }
    await waitFor('archiving to recover', async () => {
      const a = await archiver();
      return a.archived !== null && a.failedAt !== null && a.archived > a.failedAt;
    }, 180_000);
    const recorded = (await readHealthState(storage, DB_ID)).archiver!.failedCount;
    const now = Number((await archiver()).failed);
    const recovered = await walCheck(deps());
    // Failures after the critical run (the archiver retries) are news; none since, and it is simply ok.
    if (now > recorded) {
      expect(recovered.status).toBe('warning');
      expect(recovered.summary).toContain(`${now - recorded} archiving failure(s) since the last run; archiving has recovered`);
    } else {
      expect(recovered.status).toBe('ok');
    }
    expect((await walCheck(deps())).status).toBe('ok');
  });

  it('the database unreachable: the archive is still judged, its age still the value', async () => {
    const target = parseDatabaseUrl('postgres://app:NotThePassword99@127.0.0.1:1/gone');
    const c = await walCheck(deps({ target }));
    expect(c.status).toBe('unknown');
    expect(c.value).toEqual(expect.any(Number));
    expect(c.summary).toMatch(/; not checked: the database is unreachable$/);
  });
});
