// The scheduled cleanup function: settings from the environment, the deadline from the Lambda
// context, storage from PGOPS_STORAGE, and alert-then-throw on failure (SNS mocked).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { createCleanupHandler, deadlineFrom } from '../../../../functions/cleanup/index.ts';
import { FileStorage } from '../../../../functions/core/storage/file.ts';
import { createTextLogger } from '../../../../functions/core/logger.ts';
import { validManifest } from '../../../helpers/manifests.ts';
import { useTestCluster } from '../../../helpers/postgres.ts';

const cluster = useTestCluster();
const sns = mockClient(SNSClient);
const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:pgops-alerts';
const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
beforeEach(() => {
  sns.reset();
  sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'pgops-cleanup-fn-'));
  dirs.push(d);
  return d;
}

const RULE = { name: 'old events', table: 'events', timestampColumn: 'created_at', olderThanDays: 30, batchSize: 100 };
const BACKUPS = ['20261101T020000Z-0a01', '20261102T020000Z-0a02', '20261103T020000Z-0a03'];

async function setup(config: unknown, opts: { storage?: boolean } = {}) {
  const db = await cluster.createDatabase();
  await cluster.query(`CREATE TABLE events (id int PRIMARY KEY, created_at timestamptz NOT NULL);
    INSERT INTO events SELECT g, now() - interval '40 days' FROM generate_series(1, 500) g;
    INSERT INTO events SELECT g, now() FROM generate_series(501, 510) g`, [], db);
  const configFile = join(tempDir(), 'pgops.json');
  writeFileSync(configFile, JSON.stringify(config));
  const env: NodeJS.ProcessEnv = { DATABASE_URL: cluster.url(db), PGOPS_CONFIG: configFile, PGOPS_SNS_TOPIC_ARN: TOPIC, PGOPS_ENVIRONMENT: 'staging' };
  let storage: FileStorage | undefined;
  if (opts.storage) {
    storage = new FileStorage(pathToFileURL(tempDir()).href);
    env.PGOPS_STORAGE = storage.url;
    for (const id of BACKUPS) {
      await storage.putBytes(`${db}/logical/${id}/dump`, 'x');
      // A manifest the catalog accepts (a bare { id, completedAt } is rejected as invalid).
      await storage.putBytes(`${db}/logical/${id}/manifest.json`, JSON.stringify(validManifest(db, id, { completedAt: `2026-11-0${id.slice(7, 8)}T02:00:00.000Z` })));
    }
  }
  const lines: string[] = [];
  const handler = createCleanupHandler({ env, sns: () => new SNSClient({ region: 'eu-west-1' }), logger: createTextLogger({ write: (l) => lines.push(l) }) });
  return { db, handler, storage, lines };
}

const context = (ms: number) => ({ getRemainingTimeInMillis: () => ms });
const remaining = async (db: string) => (await cluster.query<{ n: number }>('SELECT count(*)::int AS n FROM events', [], db)).rows[0]!.n;

describe('cleanup function', () => {
  it('deletes expired rows and applies retention to PGOPS_STORAGE; a dry run changes nothing', async () => {
    const { db, handler, storage } = await setup({ cleanup: { rules: [RULE] }, retention: { keepLast: 1, keepDaily: 0, keepWeekly: 0, keepMonthly: 0 } }, { storage: true });
    const dry = await handler({ dryRun: true }, context(900_000));
    expect(dry).toMatchObject({ dryRun: true, rows: [{ deleted: 500 }], backups: { kept: [BACKUPS[2]], deleted: [BACKUPS[1], BACKUPS[0]] } });
    expect(await remaining(db)).toBe(510);

    const run = await handler({ database: db }, context(900_000));
    expect(run).toMatchObject({ dryRun: false, complete: true, rows: [{ deleted: 500, complete: true }], backups: { kept: [BACKUPS[2]], deleted: [BACKUPS[1], BACKUPS[0]] } });
    expect(await remaining(db)).toBe(10);
    expect((await storage!.list(`${db}/logical/`)).map((o) => o.key)).toEqual([`${db}/logical/${BACKUPS[2]}/dump`, `${db}/logical/${BACKUPS[2]}/manifest.json`]);
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
  });

  it('stops at the deadline the Lambda context implies and reports complete: false', async () => {
    const { db, handler } = await setup({ cleanup: { rules: [RULE] } });
    const cut = await handler({}, context(0));
    expect(cut).toMatchObject({ complete: false, rows: [{ complete: false }], backups: { skipped: 'no storage configured' } });
    expect(await remaining(db)).toBeGreaterThanOrEqual(410);
    const next = await handler({}, context(900_000));
    expect(next.complete).toBe(true);
    expect(await remaining(db)).toBe(10);
  });

  it('keeps a margin before the Lambda timeout', () => {
    expect(deadlineFrom(900_000, 1_000)).toBe(1_000 + 870_000);
    expect(deadlineFrom(20_000, 1_000)).toBe(1_000 + 10_000);
    expect(deadlineFrom(0, 1_000)).toBe(1_000);
  });

  it('a missing table: a configuration error that pages nobody, and throws naming it', async () => {
    const { db, handler } = await setup({ cleanup: { rules: [{ ...RULE, table: 'evnets' }] } });
    const err = (await handler({}, context(900_000)).then(() => undefined, (e: unknown) => e)) as Error;
    expect(err.message).toMatch(/^cleanup failed: cleanup rules do not match the database:[\s\S]*table evnets does not exist/);
    // Configuration errors page nobody (issue 9): the function error is what the schedule sees.
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
    expect(await remaining(db)).toBe(510);
  });

  it('a failing rule (locked table) alerts exactly once, not once per layer', async () => {
    const { db, handler } = await setup({ database: { lockTimeoutMs: 200 }, cleanup: { rules: [RULE] } });
    const pg = (await import('pg')).default;
    const holder = new pg.Client({ connectionString: cluster.url(db) });
    await holder.connect();
    try {
      await holder.query('BEGIN; LOCK TABLE events IN ACCESS EXCLUSIVE MODE');
      const err = (await handler({}, context(900_000)).then(() => undefined, (e: unknown) => e)) as Error;
      expect(err.message).toMatch(/could not lock public\.events within lock_timeout/);
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    expect(sns.commandCalls(PublishCommand)).toHaveLength(1);
  });

  it('rejects a malformed event naming the field, and a database it does not serve', async () => {
    const { handler } = await setup({ cleanup: { rules: [RULE] } });
    await expect(handler({ dryRun: 'yes' }, context(900_000))).rejects.toThrow(/invalid cleanup event:[\s\S]*dryRun/);
    await expect(handler({ database: 'billing' }, context(900_000))).rejects.toThrow(/serves database "t.*", not "billing"/);
    // Usage and configuration errors page nobody (issue 9): the caller sees the function error.
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
  });
});
