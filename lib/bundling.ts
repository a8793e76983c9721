// How pgops code is bundled for AWS: one set of esbuild settings for the Lambda handlers
// (NodejsFunction), the container image (docker/Dockerfile) and the cold-start bench, so what is
// measured and tested is what is deployed.
import type { BuildOptions } from 'esbuild';

/**
 * ESM bundles; the banner gives CommonJS dependencies the require() they expect, and the bundle's
 * own file and directory, which `define` hands to code that reads __filename / __dirname (the
 * migration linter's WASM parser looks for libpg-query.wasm beside the bundle).
 */
export const ESM_BANNER = "import { createRequire as __pgopsCreateRequire } from 'node:module'; import { fileURLToPath as __pgopsFileURLToPath } from 'node:url'; const require = __pgopsCreateRequire(import.meta.url); const __pgopsFilename = __pgopsFileURLToPath(import.meta.url); const __pgopsDirname = __pgopsFileURLToPath(new URL('.', import.meta.url));";

/** Files a bundle that holds the migration linter needs beside it (relative to the repository root). */
export const PARSER_WASM = 'node_modules/libpg-query/wasm/libpg-query.wasm';

/**
 * The settings, in esbuild's own terms. Minified (keeping class and function names: logs name a
 * class by `constructor.name`); an external source map without the sources' text, so stack traces
 * map back to files and lines while the map stays small and is never loaded unless a trace needs it.
 */
export const BUNDLE = {
  platform: 'node',
  format: 'esm',
  target: 'node24',
  minify: true,
  keepNames: true,
  sourcemap: true,
  sourcesContent: false,
  legalComments: 'none',
  // ESM builds of dual packages first: smaller (tree-shaken) bundles of the AWS SDK and friends.
  mainFields: ['module', 'main'],
  banner: ESM_BANNER,
  // Only where no module declares its own: a free __dirname in an ES module would throw.
  define: { __dirname: '__pgopsDirname', __filename: '__pgopsFilename' },
  outExtension: '.mjs',
} as const;

/**
 * The container image's bundles (docker/Dockerfile's esbuild entry points, <name>=<source>): the
 * backup Lambda handler and the pgops CLI the Fargate tasks run. Each lands as <name>.mjs in the
 * Lambda task root (/var/task).
 */
export const IMAGE_BUNDLES = {
  backup: 'functions/backup/index.ts',
  pgops: 'bin/pgops.ts',
} as const;

/** Where the Lambda base image runs code from (LAMBDA_TASK_ROOT), and the image's bundles land. */
export const IMAGE_TASK_ROOT = '/var/task';

/** The same settings in esbuild's JavaScript API (the CLI's dist/ build, the cold-start bench). */
export function esbuildOptions(): BuildOptions {
  return {
    bundle: true,
    platform: BUNDLE.platform,
    format: BUNDLE.format,
    target: BUNDLE.target,
    minify: BUNDLE.minify,
    keepNames: BUNDLE.keepNames,
    sourcemap: BUNDLE.sourcemap,
    sourcesContent: BUNDLE.sourcesContent,
    legalComments: BUNDLE.legalComments,
    mainFields: [...BUNDLE.mainFields],
    banner: { js: BUNDLE.banner },
    define: { ...BUNDLE.define },
    logLevel: 'warning',
  };
}

/** The same settings as esbuild command-line flags (docker/Dockerfile spells these). */
export function bundleCliFlags(): string[] {
  return [
    '--bundle',
    `--platform=${BUNDLE.platform}`,
    `--target=${BUNDLE.target}`,
    `--format=${BUNDLE.format}`,
    '--minify',
    '--keep-names',
    '--sourcemap',
    '--sources-content=false',
    `--legal-comments=${BUNDLE.legalComments}`,
    `--main-fields=${BUNDLE.mainFields.join(',')}`,
    `--banner:js=${BUNDLE.banner}`,
    ...Object.entries(BUNDLE.define).map(([k, v]) => `--define:${k}=${v}`),
  ];
}
