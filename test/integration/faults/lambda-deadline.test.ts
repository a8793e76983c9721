// Fault: the cleanup function's Lambda deadline is near. pgops promises: it stops starting new
// batches, returns complete: false (not an error, no alert), and the next run continues where it
// stopped until everything expired is gone.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SNSClient } from '@aws-sdk/client-sns';
import { beforeAll, describe, expect, it } from 'vitest';
import { createCleanupHandler } from '../../../functions/cleanup/index.ts';
import { FileStorage } from '../../../functions/core/storage/file.ts';
import { putBackup } from '../../helpers/manifests.ts';
import { listedIds, rowCount, useTempDirs } from '../../helpers/faults.ts';
import { captured } from '../../helpers/output-scan.ts';
import { useTestCluster } from '../../helpers/postgres.ts';

const cluster = useTestCluster();
const WEBHOOK = 'https://hooks.slack.com/services/T0FAULTS/B0FAULTS/faultsuitewebhooksecret';
const out = captured(() => [cluster.pg.password, WEBHOOK]);
const tempDir = useTempDirs();
const EXPIRED = 30_000;
let db = '';
let env: NodeJS.ProcessEnv = {};
let storage: FileStorage;
const published: unknown[] = [];
// An SNS client that records what would be published.
const sns = () => ({ send: (command: { input: unknown }) => { published.push(command.input); return Promise.resolve({ MessageId: 'm' }); } }) as unknown as SNSClient;

beforeAll(async () => {
  db = await cluster.createDatabase('deadline');
  await cluster.query(`CREATE TABLE events (id int PRIMARY KEY, created_at timestamptz NOT NULL);
    INSERT INTO events SELECT g, now() - interval '40 days' FROM generate_series(1, ${EXPIRED}) g;
    INSERT INTO events SELECT g, now() FROM generate_series(${EXPIRED + 1}, ${EXPIRED + 10}) g;
    -- Every batch takes at least 25 ms, so the whole backlog (60 batches, at least 1.5 s) certainly
    -- outlasts a 0.75 s deadline however fast the machine: the cut does not depend on timing luck.
    CREATE FUNCTION slow_batch() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN PERFORM pg_sleep(0.025); RETURN NULL; END $fn$;
    CREATE TRIGGER slow_batch AFTER DELETE ON events FOR EACH STATEMENT EXECUTE FUNCTION slow_batch()`, [], db);
  const dir = tempDir();
  storage = new FileStorage(`file://${dir}`);
  for (let d = 1; d <= 3; d++) await putBackup(storage, db, { completedAt: new Date(Date.now() - d * 3_600_000) });
  const configFile = join(tempDir(), 'pgops.json');
  writeFileSync(configFile, JSON.stringify({ cleanup: { rules: [{ name: 'old events', table: 'events', timestampColumn: 'created_at', olderThanDays: 30, batchSize: 500 }] } }));
  env = { DATABASE_URL: cluster.url(db), PGOPS_CONFIG: configFile, PGOPS_STORAGE: storage.url, PGOPS_SNS_TOPIC_ARN: 'arn:aws:sns:eu-west-1:123456789012:pgops-alerts', PGOPS_SLACK_WEBHOOK_URL: WEBHOOK, PGOPS_ENVIRONMENT: 'faults' };
});

const context = (ms: number) => ({ getRemainingTimeInMillis: () => ms });

describe('Lambda deadline near', () => {
  it('stops starting batches, reports complete: false without an alert; the next run continues and completes', async () => {
    const before = await listedIds(storage, db);
    const { logger } = out.logger();
    const handler = createCleanupHandler({ env, sns, logger });
    // 1.5 s left: half of it is kept as the margin, so it stops starting batches after about 0.75 s.
    const cut = await handler({}, context(1_500));
    out.add('cleanup result', cut);
    expect(cut.complete).toBe(false);
    expect(cut.rows[0]).toMatchObject({ rule: 'old events', complete: false });
    const left = await rowCount(cluster, db, 'events');
    console.log(`lambda-deadline: the cut run deleted ${cut.rows[0]!.deleted} of ${EXPIRED} expired rows in ${cut.durationMs} ms`);
    expect(left).toBe(EXPIRED + 10 - cut.rows[0]!.deleted);
    expect(left).toBeGreaterThan(10);
    expect(published).toEqual([]);

    let runs = 0;
    let last = cut;
    while (!last.complete && runs < 20) {
      last = await handler({}, context(900_000));
      out.add('cleanup result', last);
      runs += 1;
    }
    expect(last.complete).toBe(true);
    expect(await rowCount(cluster, db, 'events')).toBe(10);
    expect(published).toEqual([]);
    // Nothing valid was deleted (three backups within the default retention).
    expect(await listedIds(storage, db)).toEqual(before);
  });
});
