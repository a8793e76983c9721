// Before the integration files: one initdb'd data directory that every file's cluster copies
// (test/helpers/postgres.ts) instead of running initdb itself; removed after the last file.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { createClusterTemplate } from '../../bin/demo/embedded-postgres.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The data directory the test clusters copy. */
    pgTemplate: string;
  }
}

export default function setup(project: TestProject): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'pgops-pg-template-'));
  project.provide('pgTemplate', createClusterTemplate(dir));
  return () => rmSync(dir, { recursive: true, force: true });
}
