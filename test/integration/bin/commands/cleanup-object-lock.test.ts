// `pgops cleanup` with retention.objectLock in the config (as the CDK app ships it): two real
// backups, keepLast 1: the older one, still locked, is kept and the output says until when.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../../../helpers/cli.ts';
import { useTestCluster } from '../../../helpers/postgres.ts';

const cluster = useTestCluster();
const work = mkdtempSync(join(tmpdir(), 'pgops-lock-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let db = '';
beforeAll(async () => { db = await cluster.createDatabase('vault'); });

const CONFIG = { retention: { keepLast: 1, keepDaily: 0, keepWeekly: 0, keepMonthly: 0, objectLock: { mode: 'compliance', days: 30 } } };

async function cli(...args: string[]): Promise<CliResult> {
  const r = await runCli(args, { DATABASE_URL: cluster.url(db), PGOPS_STORAGE: `file://${join(work, 'store')}`, PGOPS_CONFIG_JSON: JSON.stringify(CONFIG) }, { timeoutMs: 120_000 });
  expect(r.stdout + r.stderr).not.toContain(cluster.pg.password);
  return r;
}

describe('pgops cleanup under Object Lock', () => {
  it('keeps the backup the keep rules would delete, saying it is locked until when', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const b = await cli('backup', '--json');
      expect(b.code, b.stderr).toBe(0);
      ids.push((JSON.parse(b.stdout) as { id: string }).id);
    }
    const r = await cli('cleanup');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/backups \(file:.*\): 2 kept, 0 deleted\n/);
    expect(r.stdout).toMatch(new RegExp(`  ${ids[0]}: kept, locked until \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z \\(Object Lock\\)\\n`));
    const list = await cli('backups', 'list', '--json');
    expect((JSON.parse(list.stdout) as Array<{ id: string }>).map((m) => m.id).sort()).toEqual([...ids].sort());
  });
});
