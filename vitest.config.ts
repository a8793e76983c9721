import { defineConfig } from 'vitest/config';

// Three kinds of tests: fast unit tests, integration tests on a real PostgreSQL (one throwaway
// cluster per file) and a real S3-protocol server, and CDK infrastructure tests.
// Timeouts are sized for a busy 2-core runner (two CPU-bound neighbours), not an idle one:
// a timeout here only turns a hang into a failure, it never measures speed.
// Unit files that need modules of their own: the X-Ray SDK under Powertools keeps process-wide
// state (its context and captured clients) that another file's tracer would have set up.
const NEEDS_FRESH_MODULES = ['test/unit/functions/shared/tracing.test.ts'];

const UNIT = {
  environment: 'node',
  testTimeout: 30_000,
  hookTimeout: 30_000,
  // Vitest's default is one worker per core minus one: a single worker on two cores.
  maxWorkers: 2,
  sequence: { groupOrder: 0 },
} as const;

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          ...UNIT,
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          exclude: NEEDS_FRESH_MODULES,
          // Files share each worker's modules (the AWS SDK and zod load once, not 76 times).
          isolate: false,
        },
      },
      { test: { ...UNIT, name: 'unit-isolated', include: NEEDS_FRESH_MODULES } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          // One initdb for all files: each file's cluster copies it (test/helpers/postgres.ts).
          globalSetup: ['test/integration/global-setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          // Two cores: two files at a time, each with its own cluster.
          maxWorkers: 2,
          // Files share each worker's modules (the SDK, pg, the jobs load once per worker); every file
          // still starts and removes its own cluster and storage in its hooks.
          isolate: false,
          sequence: { groupOrder: 1 },
        },
      },
      {
        test: {
          name: 'infra',
          include: ['test/infra/**/*.test.ts'],
          environment: 'node',
          // A full synth bundles every function with esbuild: tens of seconds on a loaded machine.
          testTimeout: 300_000,
          hookTimeout: 300_000,
          // Two synths at a time (the default would be one on two cores).
          maxWorkers: 2,
          // Files share each worker's modules: aws-cdk-lib loads once per worker, and CDK's in-process
          // asset cache bundles each function once, not once per file. These tests keep no global state.
          isolate: false,
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
