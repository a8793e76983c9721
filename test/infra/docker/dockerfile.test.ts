// docker/Dockerfile read as text (no Docker engine on the test machines, so it is never built
// here): the run stage carries the PostgreSQL client tools and server binaries of PG_MAJOR, fails
// the build unless every tool pgops runs is where PGOPS_PG_BINDIR says, and has the unprivileged
// users and the writable scratch directory `pgops pitr` needs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLIENT_TOOLS } from '../../../functions/core/pgtools/binaries.ts';
import { REPO_ROOT } from '../../../lib/pgops-app.ts';

interface Instruction {
  keyword: string;
  args: string;
  /** 0 before the first FROM, then 1, 2, ... */
  stage: number;
}

/** Instructions with their continuation lines joined, comments and blank lines dropped. */
function parseDockerfile(text: string): Instruction[] {
  let stage = 0;
  return text.replace(/\\\r?\n(\s*#[^\n]*\n)*\s*/g, ' ').split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const [keyword = '', ...rest] = l.split(/\s+/);
      if (keyword.toUpperCase() === 'FROM') stage++;
      return { keyword: keyword.toUpperCase(), args: rest.join(' '), stage };
    });
}

const all = parseDockerfile(readFileSync(join(REPO_ROOT, 'docker', 'Dockerfile'), 'utf8'));
const runStage = Math.max(...all.map((i) => i.stage));
const run = all.filter((i) => i.stage === runStage);
const runCommands = run.filter((i) => i.keyword === 'RUN').map((i) => i.args);
const installRun = runCommands.find((c) => /\bdnf install\b/.test(c)) ?? '';

/** NAME=value pairs of the run stage's ENV instructions. */
function envOf(): Record<string, string> {
  return Object.fromEntries(run.filter((i) => i.keyword === 'ENV').flatMap((i) => [...i.args.matchAll(/([A-Z_][A-Z0-9_]*)=(\S+)/g)].map((m) => [m[1]!, m[2]!])));
}

describe('docker/Dockerfile', () => {
  it('parses into a build stage and a run stage on the Lambda base image, with PG_MAJOR in both', () => {
    expect(runStage).toBe(2);
    expect(run[0]).toMatchObject({ keyword: 'FROM', args: 'public.ecr.aws/lambda/nodejs:24' });
    expect(all.find((i) => i.stage === 0 && i.keyword === 'ARG')?.args).toBe('PG_MAJOR=17');
    expect(run.some((i) => i.keyword === 'ARG' && i.args === 'PG_MAJOR')).toBe(true);
  });

  it('installs the client tools and the server of PG_MAJOR in one dnf transaction, with util-linux, zstd and lz4', () => {
    const packages = /dnf install -y ((?:\S+ )+?)&&/.exec(installRun)?.[1]?.trim().split(' ') ?? [];
    expect(packages).toEqual(expect.arrayContaining(['"postgresql${PG_MAJOR}"', '"postgresql${PG_MAJOR}-server"', 'util-linux', 'shadow-utils', 'zstd', 'lz4']));
    // physical.compression "zstd" | "lz4" runs the command-line tools: the build proves they start.
    expect(installRun).toContain('zstd --version && lz4 --version');
    // Both of the requested major: the client (pg_dump) and the server (recovery of that major's backups).
    expect(installRun).toContain('pg_dump --version | grep -q " ${PG_MAJOR}\\."');
    expect(installRun).toContain('/usr/bin/postgres --version | grep -q " ${PG_MAJOR}\\."');
  });

  it('fails the build unless every tool pgops runs is in PGOPS_PG_BINDIR', () => {
    const env = envOf();
    expect(env.PGOPS_PG_BINDIR).toBe('/usr/bin');
    const loop = /for tool in ([a-z_ ]+); do test -x "\/usr\/bin\/\$\{tool\}" \|\| \{ .*?exit 1; \}; done/.exec(installRun);
    expect(loop, 'the check loop over the tools').not.toBeNull();
    const tools = loop![1]!.trim().split(' ');
    expect(tools).toEqual(expect.arrayContaining([...CLIENT_TOOLS, 'pg_basebackup', 'pg_receivewal', 'postgres', 'pg_ctl', 'initdb']));
    // The check is part of the install step: a missing tool fails the image, not a job at 02:00.
    expect(installRun.indexOf('dnf install')).toBeLessThan(installRun.indexOf('for tool in'));
  });

  it('has a postgres user for a root pgops and runs as the unprivileged pgops user', () => {
    expect(installRun).toMatch(/getent passwd postgres >\/dev\/null \|\| useradd --system [^)]*\bpostgres\)/);
    expect(installRun).toMatch(/useradd --uid 10001 [^&]*\bpgops\b/);
    const users = run.filter((i) => i.keyword === 'USER').map((i) => i.args);
    expect(users.at(-1)).toBe('10001');
    for (const u of users) expect(u, 'never root').not.toMatch(/^(0|root)(:|$)/);
  });

  it('gives the scratch cluster a TMPDIR any user can write', () => {
    expect(envOf().TMPDIR).toBe('/tmp');
    expect(installRun).toContain('install -d -m 1777 /tmp');
  });
});
