// The bundle settings of lib/bundling.ts (Lambda, container, bench) keep code that reads
// __dirname working in an ES module bundle: the migration linter's WASM parser, bundled as the
// migrate function is, parses SQL with libpg-query.wasm copied beside it, and fails clearly without.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { BUNDLE, PARSER_WASM } from '../../../lib/bundling.ts';
import { REPO_ROOT } from '../../helpers/cli.ts';

const work = mkdtempSync(join(tmpdir(), 'pgops-bundling-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A bundle of a tiny entry that parses one statement through the linter's parser module. */
async function bundleParser(dir: string): Promise<string> {
  const entry = join(work, 'entry.ts');
  writeFileSync(entry, `import { parseSql } from ${JSON.stringify(join(REPO_ROOT, 'functions/core/migrate/lint/parser.ts'))};
const r = await parseSql('CREATE INDEX i ON t (a);');
process.stdout.write(JSON.stringify({ ok: r.ok, statements: r.ok ? r.statements.length : 0 }));\n`);
  const outfile = join(dir, 'index.mjs');
  await build({
    entryPoints: [entry], outfile, bundle: true, platform: BUNDLE.platform, format: BUNDLE.format, target: BUNDLE.target,
    minify: BUNDLE.minify, keepNames: BUNDLE.keepNames, mainFields: [...BUNDLE.mainFields], banner: { js: BUNDLE.banner },
    define: { ...BUNDLE.define }, logLevel: 'error',
  });
  return outfile;
}

describe('bundles that read __dirname', () => {
  it('the linter\'s parser runs bundled as the migrate function is, with its WASM beside the bundle', async () => {
    const dir = mkdtempSync(join(work, 'with-wasm-'));
    const file = await bundleParser(dir);
    copyFileSync(join(REPO_ROOT, PARSER_WASM), join(dir, 'libpg-query.wasm'));
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 120_000 });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ ok: true, statements: 1 });
  });

  it('without the WASM it fails naming the parser, not with a ReferenceError', async () => {
    const dir = mkdtempSync(join(work, 'without-wasm-'));
    const file = await bundleParser(dir);
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('the PostgreSQL parser (libpg-query) could not be loaded');
    expect(r.stderr).not.toContain('__dirname is not defined');
  });
});
