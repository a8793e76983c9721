// Test helper: migration files in a throwaway directory, linted by the real linter (no database).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { silentLogger } from '../../../../../../functions/core/logger.ts';
import { lintMigrationFiles, type LintResult } from '../../../../../../functions/core/migrate/lint/lint.ts';
import type { LintFinding } from '../../../../../../functions/core/migrate/lint/types.ts';

export interface SqlMigration {
  up: string;
  down?: string;
  noTransaction?: boolean;
}

/** A directory removed after the test file; files written into it are linted in the order given. */
export function useMigrationFiles() {
  const dirs: string[] = [];
  afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
  const write = (files: Record<string, string>): Array<{ path: string; file: string }> => {
    const dir = mkdtempSync(join(tmpdir(), 'pgops-lint-'));
    dirs.push(dir);
    return Object.entries(files).map(([file, content]) => {
      writeFileSync(join(dir, file), content);
      return { path: join(dir, file), file };
    });
  };
  return {
    write,
    /** Lint raw files (name -> content). */
    async lintFiles(files: Record<string, string>): Promise<LintResult> {
      return lintMigrationFiles(write(files), { logger: silentLogger });
    },
    /** Lint one .sql migration built from its parts. */
    async lintSql(m: SqlMigration): Promise<LintFinding[]> {
      return (await lintMigrationFiles(write({ '001_test.sql': sqlMigration(m) }), { logger: silentLogger })).report.findings;
    },
  };
}

export function sqlMigration(m: SqlMigration): string {
  return `${m.noTransaction ? '-- pgops:no-transaction\n' : ''}-- Up Migration\n${m.up}\n${m.down !== undefined ? `-- Down Migration\n${m.down}\n` : ''}`;
}
