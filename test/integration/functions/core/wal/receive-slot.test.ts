// The slot `wal receive` needs, on a real server: created when asked (idempotent, reserving WAL at
// once), and every way it can be missing or unusable refused before anything streams, with a
// message that says what to do; and one receiver per slot.
import { spawnSync } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import pg from 'pg';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { advisoryLockKey } from '../../../../../functions/core/advisory-lock.ts';
import { withDatabase } from '../../../../../functions/core/db.ts';
import { FileStorage } from '../../../../../functions/core/storage/file.ts';
import { WalReceiveError, WalSlotError } from '../../../../../functions/core/wal/errors.ts';
import { receiveWal, type WalReceiveDeps } from '../../../../../functions/core/wal/receive.ts';
import { freePort } from '../../../../../bin/demo/embedded-postgres.ts';
import { captured } from '../../../../helpers/output-scan.ts';
import { useTestCluster } from '../../../../helpers/postgres.ts';

// Logical, so that a logical slot can be made to stand where a physical one is expected.
const cluster = useTestCluster({ settings: { wal_level: 'logical' } });
const scan = captured(() => [cluster.pg.password]);
const work = mkdtempSync(join(tmpdir(), 'pgops-wal-slot-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function setup(o: { stopped?: boolean; target?: WalReceiveDeps['target']; lockWaitSeconds?: number } = {}) {
  const alerts = scan.alerter();
  const { logger, lines } = scan.logger('debug');
  const stop = new AbortController();
  // Already stopped: the job checks the slot, then returns before streaming.
  if (o.stopped ?? true) stop.abort('SIGTERM');
  const spoolParent = mkdtempSync(join(work, 'spool-'));
  const deps: WalReceiveDeps = {
    target: o.target ?? cluster.target(), storage: new FileStorage(pathToFileURL(mkdtempSync(join(work, 'store-'))).href), databaseId: 'orders',
    binDir: cluster.pg.binDir, signal: stop.signal, tmpDir: spoolParent, lockWaitSeconds: o.lockWaitSeconds,
    reporting: { alerter: alerts, logger, databaseId: 'orders', environment: 'test' },
  };
  return { deps, alerts, lines, spoolParent };
}

const slot = async (name: string) => (await cluster.query<{ slot_type: string; restart_lsn: string | null }>(
  'SELECT slot_type, restart_lsn::text AS restart_lsn FROM pg_replication_slots WHERE slot_name = $1', [name])).rows[0];

async function refusal(deps: WalReceiveDeps, options: Parameters<typeof receiveWal>[1]): Promise<WalSlotError> {
  const err = await receiveWal(deps, options).catch((e: unknown) => scan.error(e));
  expect(err).toBeInstanceOf(WalSlotError);
  return err as WalSlotError;
}

describe('wal receive: the replication slot', () => {
  it('a missing slot without --create-slot is refused (exit 2, one alert), naming both ways to create it', async () => {
    const { deps, alerts, spoolParent } = setup();
    const err = await refusal(deps, { slot: 'missing_slot' });
    expect(err.exitCode).toBe(2);
    expect(err.message).toMatch(/replication slot missing_slot does not exist/);
    expect(err.message).toMatch(/--create-slot/);
    expect(err.message).toMatch(/pg_create_physical_replication_slot\('missing_slot', true\)/);
    expect(alerts.sent).toHaveLength(1);
    expect(alerts.sent[0]).toMatchObject({ severity: 'critical', job: 'wal receive' });
    expect(await slot('missing_slot')).toBeUndefined();
    expect(readdirSync(spoolParent)).toEqual([]);
  });

  it('--create-slot creates a physical slot that reserves WAL at once, and is idempotent', async () => {
    const a = setup();
    expect(await receiveWal(a.deps, { createSlot: true })).toMatchObject({ slot: 'pgops_orders', stoppedBy: 'signal', segmentsUploaded: 0 });
    const created = await slot('pgops_orders');
    expect(created).toMatchObject({ slot_type: 'physical' });
    expect(created?.restart_lsn).not.toBeNull();
    expect(a.lines.join('')).toMatch(/created physical replication slot pgops_orders/);
    const b = setup();
    await receiveWal(b.deps, { createSlot: true });
    expect(await slot('pgops_orders')).toEqual(created);
    expect(b.lines.join('')).not.toMatch(/created physical replication slot/);
  });

  it('refuses a slot that never reserved WAL (as pg_receivewal --create-slot makes them)', async () => {
    await cluster.query(`SELECT pg_create_physical_replication_slot('unreserved_slot')`);
    const err = await refusal(setup().deps, { slot: 'unreserved_slot', createSlot: true });
    expect(err.message).toMatch(/has never reserved WAL/);
    expect(err.message).toMatch(/pg_drop_replication_slot\('unreserved_slot'\)/);
  });

  it('refuses a logical slot', async () => {
    await cluster.query(`SELECT pg_create_logical_replication_slot('logical_slot', 'pgoutput')`);
    const err = await refusal(setup().deps, { slot: 'logical_slot' });
    expect(err.message).toMatch(/logical_slot is a logical slot/);
    await cluster.query(`SELECT pg_drop_replication_slot('logical_slot')`);
  });

  it('refuses a slot that has lost WAL (max_slot_wal_keep_size exceeded), saying a new base backup is needed', async () => {
    await cluster.query(`SELECT pg_create_physical_replication_slot('lost_slot', true)`);
    await cluster.query(`ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'`);
    await cluster.query('SELECT pg_reload_conf()');
    try {
      await cluster.query('CREATE TABLE IF NOT EXISTS filler (payload text)');
      for (let i = 0; i < 4; i++) {
        await cluster.query(`INSERT INTO filler SELECT md5(g::text) FROM generate_series(1, 2000) g`);
        await cluster.query('SELECT pg_switch_wal()');
      }
      await cluster.query('CHECKPOINT');
      expect((await cluster.query(`SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'lost_slot'`)).rows[0]).toEqual({ wal_status: 'lost' });
      const err = await refusal(setup().deps, { slot: 'lost_slot' });
      expect(err.message).toMatch(/has lost WAL/);
      expect(err.message).toMatch(/new base backup/);
    } finally {
      await cluster.query('ALTER SYSTEM RESET max_slot_wal_keep_size');
      await cluster.query('SELECT pg_reload_conf()');
      await cluster.query(`SELECT pg_drop_replication_slot('lost_slot')`);
    }
  });

  it('refuses a role without REPLICATION, saying how to grant it', async () => {
    await cluster.query(`CREATE ROLE plain_reader LOGIN PASSWORD 'reader-pw-4711'`);
    scan.secret('reader-pw-4711');
    const target = { ...withDatabase(cluster.target(), 'postgres'), user: 'plain_reader', password: 'reader-pw-4711' };
    const err = await refusal(setup({ target }).deps, { createSlot: true });
    expect(err.exitCode).toBe(2);
    expect(err.message).toMatch(/role "plain_reader" has no REPLICATION attribute: ALTER ROLE "plain_reader" REPLICATION/);
  });

  it('one receiver per slot: a second one waits for the first, then gives up naming it', async () => {
    const holder = new pg.Client({ connectionString: cluster.url() });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1::bigint)', [advisoryLockKey('pgops:wal-receive:pgops_orders').toString()]);
      const { deps, lines } = setup({ lockWaitSeconds: 1 });
      const err = await receiveWal(deps, { createSlot: true }).catch((e: unknown) => scan.error(e));
      expect(err).toBeInstanceOf(WalReceiveError);
      expect((err as Error).message).toMatch(/another pgops wal receive holds slot pgops_orders \(backend \d+/);
      expect(lines.join('')).toMatch(/another receiver holds slot pgops_orders .*waiting for it to stop/);
    } finally {
      await holder.end();
    }
  });

  it('refuses a standby: slot and stream must be the primary\'s', async () => {
    // A standby of the test cluster, made and run as the postgres user.
    const root = mkdtempSync('/tmp/pgops-standby-');
    const ids = ['-u', '-g'].map((f) => Number(spawnSync('id', [f, 'postgres'], { encoding: 'utf8' }).stdout.trim()));
    chownSync(root, ids[0]!, ids[1]!);
    const asPostgres = (bin: string, args: string[]) => {
      const r = spawnSync('runuser', ['-u', 'postgres', '--', cluster.pg.bin(bin), ...args], { encoding: 'utf8', env: { ...process.env, PGPASSWORD: cluster.pg.password } });
      scan.add(bin, `${r.stdout}${r.stderr}`);
      expect(r.status, r.stderr).toBe(0);
    };
    const data = join(root, 'data');
    try {
      asPostgres('pg_basebackup', ['-D', data, '-R', '-X', 'stream', '-h', '127.0.0.1', '-p', String(cluster.pg.port), '-U', 'postgres', '-w']);
      const port = await freePort();
      asPostgres('pg_ctl', ['start', '-D', data, '-w', '-t', '60', '-l', join(root, 'log'), '-o', `-c port=${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${root}`]);
      const err = await refusal(setup({ target: { ...cluster.target(), port } }).deps, { createSlot: true });
      expect(err.message).toMatch(/streams from the primary.*standby/s);
    } finally {
      spawnSync('runuser', ['-u', 'postgres', '--', cluster.pg.bin('pg_ctl'), 'stop', '-D', data, '-m', 'immediate', '-w'], { stdio: 'ignore' });
      rmSync(root, { recursive: true, force: true });
    }
  });
});
