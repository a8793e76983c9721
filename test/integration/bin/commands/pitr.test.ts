// `pgops pitr` as operators run it: the usage contract (exit 2), --dry-run that creates nothing,
// --json, a real recovery whose restore_command is this very CLI, a refusal (exit 1), and SIGTERM
// mid-recovery (exit 143, scratch cluster stopped and removed). The recoveries to the row are in
// test/integration/functions/core/pitr/job.test.ts.
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PhysicalManifest } from '../../../../functions/core/catalog/physical.ts';
import { FileStorage } from '../../../../functions/core/storage/index.ts';
import { archivingConf, sharedStorageDir } from '../../../helpers/archiving.ts';
import { processAlive, runCli, startCli, waitFor } from '../../../helpers/cli.ts';
import { captured } from '../../../helpers/output-scan.ts';
import { prepareArchiveFolder, takeBaseBackup, waitArchived } from '../../../helpers/physical.ts';
import { useTestCluster } from '../../../helpers/postgres.ts';

const DB = 'orders';
const store = sharedStorageDir();
prepareArchiveFolder(store, DB);
const storage = new FileStorage(pathToFileURL(store).href);
const source = useTestCluster({ conf: archivingConf(store, DB) });
const cap = captured(() => [source.pg.password]);
// The CLI's scratch clusters go under TMPDIR: the server's user must reach it; empty after every run.
const scratchParent = mkdtempSync(join(tmpdir(), 'pgops-pitr-cli-'));
chmodSync(scratchParent, 0o755);
afterAll(() => rmSync(scratchParent, { recursive: true, force: true }));
let base: PhysicalManifest;

const env = () => ({ DATABASE_URL: source.url('postgres'), PGOPS_STORAGE: pathToFileURL(store).href, PGOPS_DATABASE_ID: DB, TMPDIR: scratchParent });
const pitr = async (...args: string[]) => cap.cli(await runCli(['pitr', ...args], env(), { timeoutMs: 150_000 }));
/** Scratch clusters left in TMPDIR (the CLI's own tsx cache lives there too). */
const scratchLeft = () => readdirSync(scratchParent).filter((n) => n.startsWith('pgops-pitr-'));
const databaseExists = async (name: string) => (await source.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;

beforeAll(async () => {
  await source.createDatabase(DB);
  await source.query('CREATE TABLE items (id int PRIMARY KEY)', [], DB);
  await source.query('INSERT INTO items VALUES (1), (2)', [], DB);
  base = await takeBaseBackup(source, storage, DB);
  await source.query('INSERT INTO items VALUES (3)', [], DB);
  const last = (await source.query<{ w: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS w')).rows[0]!.w;
  await waitArchived(storage, DB, last);
});

describe('pgops pitr (CLI)', () => {
  it('documents the targets and the outputs', async () => {
    const r = cap.cli(await runCli(['pitr', '--help']));
    expect(r.code).toBe(0);
    for (const flag of ['--target-time', '--target-name', '--target-lsn', '--target-xid', '--immediate', '--exclusive', '--timeline', '--backup', '--target-db', '--export', '--data-dir', '--dry-run']) expect(r.stdout).toContain(flag);
  });

  it('exits 2 naming the problem: no target, two targets, a time without a zone, no output', async () => {
    const none = await pitr('--target-db', 'x', '--json');
    expect(none.code).toBe(2);
    expect(JSON.parse(none.stdout)).toMatchObject({ error: { type: 'UsageError', exitCode: 2 } });
    expect(none.stderr).toMatch(/no recovery target: give exactly one of --target-time/);
    expect((await pitr('--immediate', '--target-name', 'p', '--export')).stderr).toMatch(/more than one recovery target/);
    expect((await pitr('--target-time', '2026-12-01T14:01:00', '--export')).stderr).toMatch(/has no time zone: add Z/);
    const noOutput = await pitr('--immediate');
    expect(noOutput.code).toBe(2);
    expect(noOutput.stderr).toMatch(/no output: give exactly one of --target-db NAME, --export or --data-dir DIR/);
  });

  it('--dry-run --json shows the plan for a time given with an offset, and creates nothing', async () => {
    // Just after the base backup stopped, written in +02:00.
    const at = `${new Date(Date.parse(base.stoppedAt) + 2 * 3600_000 + 1).toISOString().slice(0, 23)}+02:00`;
    const r = await pitr('--target-time', at, '--target-db', 'dry', '--create', '--source-db', DB, '--dry-run', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      dryRun: true,
      plan: { backup: { id: base.id }, timeline: 1, target: { type: 'time', value: new Date(Date.parse(base.stoppedAt) + 1).toISOString() }, wal: { firstSegment: base.startSegment }, continuity: 'complete' },
    });
    expect(await databaseExists('dry')).toBe(false);
    expect(scratchLeft()).toEqual([]);
  });

  it('recovers (--immediate) into a new database, with restore_command running this CLI; --json has the result', async () => {
    const r = await pitr('--immediate', '--target-db', 'cli_immediate', '--create', '--source-db', DB, '--json');
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ backupId: base.id, target: { type: 'immediate', timeline: 1 }, recoveredTo: { lsn: expect.stringMatching(/^[0-9A-F]+\/[0-9A-F]+$/) }, output: { type: 'target-db', database: 'cli_immediate', created: true } });
    expect(doc.walSegments).toBeGreaterThanOrEqual(1);
    expect(doc.durationMs).toBeGreaterThan(0);
    expect((await source.query('SELECT id FROM items ORDER BY id', [], 'cli_immediate')).rows).toEqual([{ id: 1 }, { id: 2 }]);
    expect(scratchLeft()).toEqual([]);
  });

  it('exits 1 for a target after the end of the archive, naming it, and creates nothing', async () => {
    const r = await pitr('--target-time', '2099-01-01T00:00:00Z', '--target-db', 'too_late', '--create', '--source-db', DB, '--json');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is after the end of the archive/);
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { type: 'PitrRefusedError', exitCode: 1 } });
    expect(await databaseExists('too_late')).toBe(false);
  });

  it('SIGTERM mid-recovery stops and removes the scratch cluster, exits 143, and creates nothing', async () => {
    const running = startCli(['pitr', '--immediate', '--target-db', 'never_sigterm', '--create', '--source-db', DB], env(), { timeoutMs: 150_000 });
    let postmaster = 0;
    await waitFor('the scratch cluster to start', () => {
      for (const dir of scratchLeft()) {
        const pidFile = join(scratchParent, dir, 'data', 'postmaster.pid');
        if (existsSync(pidFile)) postmaster = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
      }
      return postmaster > 0;
    }, 120_000);
    running.child.kill('SIGTERM');
    const r = cap.cli(await running.result);
    expect(r.code).toBe(143);
    expect(r.stderr).toMatch(/pitr interrupted by SIGTERM/);
    expect(processAlive(postmaster)).toBe(false);
    expect(scratchLeft()).toEqual([]);
    expect(await databaseExists('never_sigterm')).toBe(false);
  });
});
