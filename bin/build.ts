// `npm run build` (run by `npm test` and `npm start` first): the CLI bundled into dist/ with the
// settings of the container image's bundle (lib/bundling.ts), split so each command loads only the
// code it runs: dist/pgops.mjs is the entry (commander and the command definitions), dist/chunks/
// the rest, loaded on first use. bin/pgops.js runs the bundle while the entry is newer than every
// source file. `pgops --version` on a 2-core machine: 0.9 s through tsx, 0.47 s as one 2 MB bundle
// (mostly compiling code the command never runs), 0.19 s CPU split (node -e 0: 0.12 s).
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { esbuildOptions, PARSER_WASM } from '../lib/bundling.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
/** Where the entry's chunks land: a subfolder, so dist/ itself stays the entry and its map. */
const CHUNK_DIR = 'chunks';
const chunks = join(dist, CHUNK_DIR);

mkdirSync(chunks, { recursive: true });
const result = await build({
  ...esbuildOptions(),
  // The metafile's output paths are relative to it: removeStaleChunks resolves them against root.
  absWorkingDir: root,
  entryPoints: { pgops: join(root, 'bin', 'pgops.ts') },
  outdir: dist,
  splitting: true,
  chunkNames: `${CHUNK_DIR}/[name]-[hash]`,
  outExtension: { '.js': '.mjs' },
  metafile: true,
  // The Node.js this checkout runs on (>= 20), not Lambda's 24.
  target: 'node20',
});
// The parser's WASM is read from beside the chunk that holds libpg-query (its __dirname).
copyFileSync(join(root, PARSER_WASM), join(chunks, basename(PARSER_WASM)));
removeStaleChunks(new Set(Object.keys(result.metafile.outputs).map((p) => resolve(root, p))));
// Where builds before the split put it.
rmSync(join(dist, basename(PARSER_WASM)), { force: true });

/** Chunks of earlier builds, removed only now: a CLI started from the previous build keeps its own until then. */
function removeStaleChunks(written: Set<string>): void {
  for (const name of readdirSync(chunks)) {
    const path = join(chunks, name);
    if (name !== basename(PARSER_WASM) && !written.has(path)) rmSync(path, { force: true });
  }
}
