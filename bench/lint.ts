// The migration linter on the example schema (migrations/, eight files): the lint itself, in
// process (parser WASM warm), and `pgops migrate lint --all` end to end (node start, the bundled
// CLI, the WASM load). Issue 12's bound: under a second for the eight files. Medians of N rounds.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { lintMigrationFiles } from '../functions/core/migrate/lint/index.ts';
import { createTextLogger } from '../functions/core/logger.ts';

export interface LintBench { files: number; findings: number; rounds: number; inProcessMs: number[]; cliMs: number[]; firstInProcessMs: number }

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function benchLint(root: string, rounds = 5): Promise<LintBench> {
  const dir = join(root, 'migrations');
  const targets = readdirSync(dir).filter((f) => /\.(sql|js)$/.test(f)).sort().map((f) => ({ path: join(dir, f), file: `migrations/${f}` }));
  const logger = createTextLogger({ level: 'error', write: () => {} });
  const inProcessMs: number[] = [];
  let findings = 0;
  for (let i = 0; i < rounds + 1; i++) {
    const t0 = performance.now();
    const r = await lintMigrationFiles(targets, { logger });
    inProcessMs.push(Math.round((performance.now() - t0) * 10) / 10);
    findings = r.report.findings.length;
  }
  const cliMs: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [join(root, 'bin', 'pgops.js'), 'migrate', 'lint', '--all', '--dir', dir, '--json'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`pgops migrate lint exited ${r.status}: ${r.stderr}`);
    cliMs.push(Math.round(performance.now() - t0));
  }
  // The first in-process round loads and compiles the parser's WASM.
  return { files: targets.length, findings, rounds, firstInProcessMs: inProcessMs[0]!, inProcessMs: inProcessMs.slice(1), cliMs };
}

export function lintTable(b: LintBench): string {
  return [
    `### Migration lint: ${b.files} example migrations, ${b.findings} findings, median of ${b.rounds}`,
    '',
    '| what | median ms | range ms |',
    '|---|---:|---:|',
    `| lint in process, first run (loads the parser's WASM) | ${b.firstInProcessMs} | |`,
    `| lint in process, warm | ${median(b.inProcessMs)} | ${Math.min(...b.inProcessMs)}-${Math.max(...b.inProcessMs)} |`,
    `| pgops migrate lint --all (whole CLI process) | ${median(b.cliMs)} | ${Math.min(...b.cliMs)}-${Math.max(...b.cliMs)} |`,
  ].join('\n');
}
