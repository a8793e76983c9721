// The state machine's output step (`pgops pitr --from-state`, on the Fargate task) with a real
// PostgreSQL as the restored copy: the input `--in-aws` plans, plus the endpoint the state machine
// adds, produces --target-db and --export for real; the step never restores or deletes anything (the
// state machine does); a state without an endpoint is refused; no password anywhere.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listBackups } from '../../../../../functions/core/catalog/catalog.ts';
import { defaultFileConfig, managedConfigOf } from '../../../../../functions/core/config.ts';
import { exitCodeOf } from '../../../../../functions/core/errors.ts';
import { produceOutputFromState, type FromStateDeps } from '../../../../../functions/core/pitr/managed/from-state.ts';
import { startManagedPitrInAws } from '../../../../../functions/core/pitr/managed/in-aws.ts';
import type { ManagedPitrState } from '../../../../../functions/core/pitr/managed/state.ts';
import { FileStorage } from '../../../../../functions/core/storage/file.ts';
import { captured } from '../../../../helpers/output-scan.ts';
import { useTestCluster } from '../../../../helpers/postgres.ts';
import { FakeRds, T } from '../../../../unit/functions/core/pitr/managed/fake-rds.ts';

const production = useTestCluster();
const copy = useTestCluster();
const cap = captured(() => [production.pg.password, copy.pg.password]);
const store = mkdtempSync(join(tmpdir(), 'pgops-managed-from-state-'));
const storage = new FileStorage(pathToFileURL(store).href);
afterAll(() => rmSync(store, { recursive: true, force: true }));

beforeAll(async () => {
  await production.createDatabase('auth');
  await production.query('CREATE TABLE orders (id int PRIMARY KEY)', [], 'auth');
  await production.query('INSERT INTO orders VALUES (1), (2)', [], 'auth');
  await copy.createDatabase('auth');
  await copy.query('CREATE TABLE orders (id int PRIMARY KEY)', [], 'auth');
  await copy.query('INSERT INTO orders VALUES (1), (2), (3)', [], 'auth');
  // The copy holds the source's master user and password (the secret did not rotate since).
  await copy.query(`ALTER ROLE postgres PASSWORD '${production.pg.password.replace(/'/g, "''")}'`);
});

/** What the state machine hands the task: the planned input, available, with the copy's endpoint. */
async function stateFor(w: FakeRds, output: { targetDb?: string; create?: boolean; tables?: string[]; export?: boolean }): Promise<ManagedPitrState> {
  const planned = await startManagedPitrInAws({
    rds: () => w.rds, sfn: () => { throw new Error('a dry run starts nothing'); }, config: managedConfigOf(defaultFileConfig({})),
    logger: cap.logger().logger, alerter: cap.alerter(), environment: 'test', databaseId: 'auth', clock: () => T('2026-12-01T15:00:00Z'), runId: () => 'fromstate01',
  }, { rdsInstance: 'auth-prod', target: { targetTime: '2026-12-01T14:01:00Z' }, output, dryRun: true, stateMachine: 'arn:aws:states:eu-west-1:123456789012:stateMachine:pgops-test-auth-pitr' });
  return { ...planned.input, phase: 'available', endpoint: { host: copy.pg.host, port: copy.pg.port } };
}

function deps(w: FakeRds): FromStateDeps & { alerter: ReturnType<typeof cap.alerter> } {
  return {
    rds: () => w.rds, config: managedConfigOf(defaultFileConfig({})), storage, logger: cap.logger().logger, alerter: cap.alerter(),
    environment: 'test', databaseId: 'auth', target: async () => production.target('auth'),
  };
}

const mutating = (w: FakeRds) => ['RestoreDBInstanceToPointInTimeCommand', 'DeleteDBInstanceCommand', 'ModifyDBInstanceCommand'].flatMap((c) => w.calls(c));

describe('pgops pitr --from-state (the state machine\'s output step)', () => {
  it('--target-db --create --table: the table as it was, on the production server; nothing restored or deleted by the step', async () => {
    const w = new FakeRds();
    w.addSourceInstance('auth-prod');
    const state = await stateFor(w, { targetDb: 'auth_restore', create: true, tables: ['orders'] });
    const d = deps(w);
    const r = await produceOutputFromState(d, JSON.stringify(state));
    cap.add('result', r);
    expect(r).toMatchObject({ fromState: true, runId: 'fromstate01', restored: { instance: 'pgops-pitr-auth-prod-202612011401' }, output: { type: 'target-db', database: 'auth_restore', created: true } });
    expect((await production.query<{ id: number }>('SELECT id FROM orders ORDER BY id', [], 'auth_restore')).rows.map((x) => x.id)).toEqual([1, 2, 3]);
    expect(mutating(w)).toEqual([]);
    // The state machine notifies: the step itself sends nothing.
    expect(d.alerter.sent).toEqual([]);
  });

  it('--export: a logical backup from the copy, listed in storage', async () => {
    const w = new FakeRds();
    w.addSourceInstance('auth-prod');
    const r = await produceOutputFromState(deps(w), JSON.stringify(await stateFor(w, { export: true })));
    cap.add('result', r);
    expect(r.output.type).toBe('export');
    const backups = await listBackups(storage, 'auth');
    expect(backups.map((b) => b.id)).toContain((r.output as { backupId: string }).backupId);
  });

  it('refuses a state without the copy\'s endpoint, or not JSON, as a usage error (exit 2), and sends no alert', async () => {
    const w = new FakeRds();
    w.addSourceInstance('auth-prod');
    const { endpoint: _endpoint, ...planned } = await stateFor(w, { export: true });
    const d = deps(w);
    for (const raw of [JSON.stringify({ ...planned, phase: 'planned' }), 'not json']) {
      const e = await produceOutputFromState(d, raw).then(() => { throw new Error('accepted'); }, (err: unknown) => err);
      cap.error(e);
      expect(exitCodeOf(e)).toBe(2);
    }
    expect(d.alerter.sent).toEqual([]);
  });
});
