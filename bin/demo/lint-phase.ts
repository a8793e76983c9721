// The demo's migration lint: a new migration builds an index the blocking way, `migrate up` refuses it
// naming file, line and rule (nothing applied); its safe rewrite (-- pgops:no-transaction, CONCURRENTLY)
// applies, after a restore point; then it is reverted, so the database matches migrations/ again.
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryAlerter } from '../../functions/core/alerts/alerter.ts';
import { PgopsError } from '../../functions/core/errors.ts';
import { createTextLogger } from '../../functions/core/logger.ts';
import { MigrationLintError } from '../../functions/core/migrate/lint/gate.ts';
import { findingLines } from '../../functions/core/migrate/lint/format.ts';
import { runMigrations, type MigrateJobDeps, type MigrateResult } from '../../functions/core/migrate/job.ts';

export interface LintPhaseContext {
  step: <T>(name: string, fn: () => Promise<T>, describe: (r: T) => string) => Promise<T>;
  /** The demo's migrate dependencies; the phase points them at a copy of the migrations. */
  deps: MigrateJobDeps;
}

const FILE = '009_users_last_login_index.sql';

const UNSAFE = `-- Up Migration

-- The admin page lists users by their last login.
CREATE INDEX users_last_login_at_idx ON users (last_login_at);

-- Down Migration

DROP INDEX users_last_login_at_idx;
`;

const SAFE = `-- pgops:no-transaction
-- CONCURRENTLY keeps users writable while the index builds; PostgreSQL refuses it inside a
-- transaction block, hence the marker above.

-- Up Migration

-- The admin page lists users by their last login.
CREATE INDEX CONCURRENTLY users_last_login_at_idx ON users (last_login_at);

-- Down Migration

DROP INDEX CONCURRENTLY users_last_login_at_idx;
`;

/** `migrate up` must refuse: the finding (and the alert it sent), or a failure if it applied anything. */
async function expectRefusal(deps: MigrateJobDeps): Promise<{ error: MigrationLintError; alerts: number }> {
  const alerter = new MemoryAlerter();
  // The refusal is the point of the step: its error log and alert stay out of the narration.
  const refused = await runMigrations({ ...deps, alerter, logger: createTextLogger({ level: 'silent' }) }, { command: 'up' }).then(
    (r: MigrateResult) => { throw new PgopsError(`the linter let an index built without CONCURRENTLY through: applied ${r.ran.map((m) => m.name).join(', ')}`); },
    (err: unknown) => err,
  );
  if (!(refused instanceof MigrationLintError)) throw refused;
  return { error: refused, alerts: alerter.sent.length };
}

function describeApplied(r: MigrateResult): string {
  const sp = r.safetyPoint;
  const lines = r.ran.map((m) => `applied  ${m.name} (${m.durationMs ?? '?'} ms)`);
  if (sp?.restorePoint) lines.push(`safety point: restore point ${sp.restorePoint.name} at ${sp.restorePoint.lsn ?? '?'}`);
  for (const s of sp?.skipped ?? []) lines.push(`safety point: ${s}`);
  for (const c of sp?.goBack ?? []) lines.push(`to go back: ${c}`);
  return lines.join('\n');
}

export async function lintPhase({ step, deps }: LintPhaseContext): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pgops-demo-migrations-'));
  try {
    const copy = { ...deps, dir };
    await step(`write ${FILE}: CREATE INDEX on users without CONCURRENTLY`, () => {
      cpSync(deps.dir, dir, { recursive: true });
      writeFileSync(join(dir, FILE), UNSAFE);
      return Promise.resolve(join(dir, FILE));
    }, (path) => `${path}: CREATE INDEX users_last_login_at_idx ON users (last_login_at);`);
    await step('migrate up (the linter refuses it)', () => expectRefusal(copy),
      ({ error, alerts }) => [
        'refused, nothing applied:',
        ...error.findings.filter((f) => f.severity === 'error').flatMap((f) => findingLines(f)),
        `(${alerts} critical alert: a pipeline running this fails, and on-call hears why)`,
      ].join('\n'));
    await step('rewrite it safely (-- pgops:no-transaction, CREATE INDEX CONCURRENTLY) and migrate up', async () => {
      writeFileSync(join(dir, FILE), SAFE);
      return runMigrations(copy, { command: 'up' });
    }, describeApplied);
    await step(`migrate down (drop the demo index: the database matches migrations/ again)`, () => runMigrations(copy, { command: 'down' }),
      (r) => r.ran.map((m) => `reverted ${m.name}`).join('\n'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
