// A real server archiving through the CLI: archive_command = `pgops wal push %p`, run by the
// server's own user (postgres when the tests run as root), into a FileStorage directory.
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createTextLogger } from '../../../../../functions/core/logger.ts';
import { FileStorage } from '../../../../../functions/core/storage/index.ts';
import { fetchWal } from '../../../../../functions/core/wal/archive.ts';
import { REPO_ROOT, waitFor } from '../../../../helpers/cli.ts';
import { useTestCluster } from '../../../../helpers/postgres.ts';

const store = mkdtempSync(join(tmpdir(), 'pgops-wal-archive-'));
chmodSync(store, 0o777);
const work = mkdtempSync(join(tmpdir(), 'pgops-wal-restore-'));
afterAll(() => { rmSync(store, { recursive: true, force: true }); rmSync(work, { recursive: true, force: true }); });

// pg_ctl passes the settings through a shell: the single quotes keep the command one value.
const archiveCommand = `'PGOPS_DATABASE_ID=orders PGOPS_STORAGE=${pathToFileURL(store).href} ${process.execPath} ${join(REPO_ROOT, 'bin', 'pgops.js')} wal push %p'`;
const cluster = useTestCluster({ settings: { wal_level: 'replica', archive_mode: 'on', archive_command: archiveCommand, archive_timeout: 0 } });

describe('archive_command = pgops wal push %p', () => {
  it('archives switched segments, which fetch back byte for byte', async () => {
    await cluster.query('CREATE TABLE t (id int, pad text)');
    await cluster.query("INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, 1000) g");
    const { rows } = await cluster.query<{ name: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS name');
    const name = rows[0]!.name;
    await waitFor(`${name} archived`, async () => {
      const r = await cluster.query<{ last: string | null }>('SELECT last_archived_wal AS last FROM pg_stat_archiver');
      return r.rows[0]!.last !== null && r.rows[0]!.last >= name;
    }, 60_000);
    const { rows: stats } = await cluster.query<{ failed: string }>('SELECT failed_count::text AS failed FROM pg_stat_archiver');
    expect(stats[0]!.failed).toBe('0');
    const reporting = { alerter: { send: async () => {} }, logger: createTextLogger({ level: 'silent' }), databaseId: 'orders', environment: 'test' };
    const deps = { storage: new FileStorage(pathToFileURL(store).href), databaseId: 'orders', reporting };
    const dest = join(work, name);
    expect(await fetchWal(deps, name, dest)).toMatchObject({ status: 'restored', key: `orders/wal/${name.slice(0, 8)}/${name}.gz` });
    const { rows: dir } = await cluster.query<{ d: string }>("SELECT current_setting('data_directory') AS d");
    const original = readFileSync(join(dir[0]!.d, 'pg_wal', name));
    expect(readFileSync(dest).equals(original)).toBe(true);
  }, 120_000);
});
