// The lint gate's room rules, run on probe sources placed (in memory) in each room: a rule that
// never fires would be a check that cannot fail.
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/cli.ts';

// The boundary and environment rules need no type information: leave it off, so the probe is quick.
const eslint = new ESLint({ cwd: REPO_ROOT, overrideConfig: [tseslint.configs.disableTypeChecked] });

async function ruleIds(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).map((m) => m.ruleId ?? `fatal: ${m.message}`);
}

describe('lint gate', () => {
  it('fails an import from functions/core into bin/', async () => {
    expect(await ruleIds('functions/core/probe.ts', "import { main } from '../../bin/pgops.ts';\nexport const m = main;\n")).toContain('import-x/no-restricted-paths');
  });

  it('fails an import from functions/core into lib/ or a handler folder', async () => {
    expect(await ruleIds('functions/core/backup/probe.ts', "import { buildPgopsApp } from '../../../lib/pgops-app.ts';\nexport const b = buildPgopsApp;\n")).toContain('import-x/no-restricted-paths');
    expect(await ruleIds('functions/core/probe.ts', "import { handler } from '../migrate/index.ts';\nexport const h = handler;\n")).toContain('import-x/no-restricted-paths');
  });

  it('fails a handler that imports the CLI module', async () => {
    expect(await ruleIds('functions/backup/probe.ts', "import { main } from '../../bin/pgops.ts';\nexport const m = main;\n")).toContain('import-x/no-restricted-paths');
  });

  it('lets the CLI import the core', async () => {
    // No finding at all: a parse failure (fatal) would also have hidden the rule.
    expect(await ruleIds('bin/commands/probe.ts', "import { loadSettings } from '../../functions/core/config.ts';\nexport const l = loadSettings;\n")).toEqual([]);
  });

  it('lets only the config module read process.env', async () => {
    const read = 'export const level = process.env.PGOPS_LOG_LEVEL;\n';
    expect(await ruleIds('functions/core/probe.ts', read)).toContain('no-restricted-properties');
    expect(await ruleIds('functions/shared/probe.ts', read)).toContain('no-restricted-properties');
    expect(await ruleIds('functions/core/config.ts', read)).toEqual([]);
  });

  it('fails a function longer than 60 lines', async () => {
    const body = Array.from({ length: 61 }, (_, i) => `  const v${i} = ${i};`).join('\n');
    expect(await ruleIds('functions/core/probe.ts', `export function long(): number {\n${body}\n  return v0;\n}\n`)).toContain('max-lines-per-function');
  });
});
