// `npm run build` (run by `npm test` and `npm start` first): the CLI bundled into dist/pgops.mjs with
// the settings of the container image's bundle (lib/bundling.ts), and the migration linter's WASM
// beside it. bin/pgops.js runs the bundle while it is newer than every source file, so the CLI starts
// without compiling TypeScript (0.9 s -> 0.4 s for `pgops --version` on an idle 2-core machine).
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { esbuildOptions, PARSER_WASM } from '../lib/bundling.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
mkdirSync(dist, { recursive: true });
await build({
  ...esbuildOptions(),
  entryPoints: [join(root, 'bin', 'pgops.ts')],
  outfile: join(dist, 'pgops.mjs'),
  // The Node.js this checkout runs on (>= 20), not Lambda's 24.
  target: 'node20',
});
copyFileSync(join(root, PARSER_WASM), join(dist, 'libpg-query.wasm'));
