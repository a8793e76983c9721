import { defineConfig } from 'vitest/config';

// Three projects: fast unit tests, integration tests on a real PostgreSQL (one throwaway
// cluster per file) and a real S3-protocol server, and CDK infrastructure tests.
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], environment: 'node', sequence: { groupOrder: 0 } } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // Two cores: two files at a time, each with its own cluster.
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
        },
      },
      { test: { name: 'infra', include: ['test/infra/**/*.test.ts'], environment: 'node', testTimeout: 120_000, sequence: { groupOrder: 2 } } },
    ],
  },
});
