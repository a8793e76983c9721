#!/usr/bin/env node
// The pgops CLI. Runs dist/pgops.mjs (`npm run build`; `npm test` and `npm start` build it first;
// it loads its chunks in dist/chunks/ on use) while it is newer than every source file it was built
// from; otherwise, in a checkout being edited, the TypeScript itself through tsx (slower to start,
// never stale). bin/server-cli.ts (freshDistEntry) holds dist/ to the same rule.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bundle = join(root, 'dist', 'pgops.mjs');

/** The newest modification time of the sources and the installed dependencies (ms). */
function newestSource() {
  let newest = statSync(join(root, 'package-lock.json'), { throwIfNoEntry: false })?.mtimeMs ?? Infinity;
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      // Not path.join: its normalising was most of this walk's cost at start (20-80 ms against 5-13 ms).
      const p = `${dir}/${e.name}`;
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  walk(join(root, 'bin'));
  walk(join(root, 'functions'));
  return newest;
}

if (existsSync(bundle) && statSync(bundle).mtimeMs > newestSource()) {
  await import(pathToFileURL(bundle).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./pgops.ts');
}
