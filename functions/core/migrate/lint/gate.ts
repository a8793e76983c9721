// The lint gate of `migrate up` (and `to` going up, and their dry runs): the pending migrations are
// linted first, and with `migrate.lint: "error"` nothing is applied while an error finding remains.
import type pg from 'pg';
import { MigrationError } from '../../errors.ts';
import type { Logger } from '../../logger.ts';
import type { MigrationFile } from '../files.ts';
import { findingLines, hasErrors } from './format.ts';
import { lintMigrationFiles } from './lint.ts';
import type { LintFinding, LintMode } from './types.ts';

/** `migrate up` refused: an error finding in a migration it would apply. */
export class MigrationLintError extends MigrationError {
  readonly findings: LintFinding[];
  constructor(findings: LintFinding[]) {
    const errors = findings.filter((f) => f.severity === 'error');
    super([
      `the migration linter refused ${errors.length === 1 ? 'a pending migration' : 'pending migrations'} (migrate.lint is "error"); nothing was applied:`,
      ...errors.flatMap((f) => findingLines(f).map((l) => `  ${l}`)),
      'Rewrite the statement the safe way, or, once you have checked it is safe here, put `-- pgops:lint-ignore <rule>` on the line above it.',
    ].join('\n'));
    this.findings = findings;
  }
}

export interface LintGateInput {
  mode: LintMode;
  files: MigrationFile[];
  /** The migrations about to be applied, in order. */
  names: string[];
  /** The migration session: findings then name table sizes. */
  client?: pg.Client;
  logger: Logger;
}

/** The findings for the result (undefined when there are none); throws MigrationLintError when refused. */
export async function lintGate(input: LintGateInput): Promise<{ findings: LintFinding[] } | undefined> {
  if (input.mode === 'off' || input.names.length === 0) return undefined;
  const byName = new Map(input.files.map((f) => [f.name, f]));
  const targets = input.names.flatMap((n) => { const f = byName.get(n); return f ? [{ path: f.path, file: f.file }] : []; });
  const { report } = await lintMigrationFiles(targets, { client: input.client, logger: input.logger });
  if (input.mode === 'error' && hasErrors(report)) throw new MigrationLintError(report.findings);
  for (const f of report.findings) input.logger.warn(`lint: ${findingLines(f)[0]}`);
  return report.findings.length > 0 ? { findings: report.findings } : undefined;
}
