// docker/Dockerfile read as text (no Docker engine on the test machines, so it is never built
// here): the run stage carries the PostgreSQL client tools and server binaries of PG_MAJOR, fails
// the build unless every tool pgops runs is where PGOPS_PG_BINDIR says, and has the unprivileged
// users and the writable scratch directory `pgops pitr` needs; its base image, its package names per
// supported pgMajor against the distribution's package list (lib/base-image.ts), and its entry
// points against the bundles lib/bundling.ts names and the stacks run.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { describe, expect, it } from 'vitest';
import { CLIENT_TOOLS } from '../../../functions/core/pgtools/binaries.ts';
import { AL2023_POSTGRESQL_PACKAGES, BUILD_IMAGE, LAMBDA_BASE_IMAGE, postgresqlPackages, SUPPORTED_PG_MAJORS } from '../../../lib/base-image.ts';
import { BUNDLE, IMAGE_BUNDLES, IMAGE_TASK_ROOT } from '../../../lib/bundling.ts';
import { parsePgopsConfig } from '../../../lib/config.ts';
import { LAMBDA_CMD, TASK_ENTRYPOINT } from '../../../lib/constructs/job-image.ts';
import { REPO_ROOT } from '../../../lib/pgops-app.ts';
import { sampleConfig } from '../helpers.ts';

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
    expect(run[0]).toMatchObject({ keyword: 'FROM', args: LAMBDA_BASE_IMAGE });
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

/** The Dockerfile's package arguments with PG_MAJOR replaced by `major`. */
function packagesFor(major: number): string[] {
  const args = /dnf install -y ((?:\S+ )+?)&&/.exec(installRun)?.[1]?.trim().split(' ') ?? [];
  return args.filter((a) => a.includes('${PG_MAJOR}')).map((a) => a.replace(/"/g, '').replace('${PG_MAJOR}', String(major)));
}

describe('the base image and its packages', () => {
  it('runs on Lambda\'s Node.js image of the functions\' runtime, built by the same Node.js major', () => {
    const nodeMajor = /^nodejs(\d+)\.x$/.exec(lambda.Runtime.NODEJS_24_X.name)![1];
    expect(LAMBDA_BASE_IMAGE).toBe(`public.ecr.aws/lambda/nodejs:${nodeMajor}`);
    expect(BUNDLE.target).toBe(`node${nodeMajor}`);
    expect(all.find((i) => i.stage === 1 && i.keyword === 'FROM')?.args).toBe(`${BUILD_IMAGE} AS build`);
    expect(BUILD_IMAGE).toMatch(new RegExp(`:${nodeMajor}-`));
  });

  it('installs, for every supported pgMajor, a client and a server package that Amazon Linux 2023 has', () => {
    expect(SUPPORTED_PG_MAJORS).toEqual([15, 16, 17]);
    for (const major of SUPPORTED_PG_MAJORS) {
      expect(packagesFor(major), String(major)).toEqual(postgresqlPackages(major));
      for (const p of packagesFor(major)) expect(AL2023_POSTGRESQL_PACKAGES, p).toContain(p);
    }
    // What the configuration refuses would fail the build: AL2023 has no such packages.
    for (const major of [13, 14, 18]) expect(packagesFor(major).filter((p) => (AL2023_POSTGRESQL_PACKAGES as readonly string[]).includes(p)), String(major)).toEqual([]);
  });

  it('defaults PG_MAJOR to the configuration\'s default, a supported major', () => {
    const raw = sampleConfig();
    delete raw.pgMajor;
    const defaultMajor = parsePgopsConfig(raw).pgMajor;
    expect(all.find((i) => i.stage === 0 && i.keyword === 'ARG')?.args).toBe(`PG_MAJOR=${defaultMajor}`);
    expect(SUPPORTED_PG_MAJORS).toContain(defaultMajor);
  });
});

describe('the entry points', () => {
  const build = all.filter((i) => i.stage === 1);
  const esbuild = build.find((i) => i.keyword === 'RUN' && i.args.startsWith('npx esbuild '))?.args ?? '';

  it('bundles exactly lib/bundling.ts\'s image bundles, from sources that exist, and checks the outputs', () => {
    const entries = Object.fromEntries([...esbuild.matchAll(/(?:^|\s)([a-z][a-z0-9-]*)=(\S+\.ts)(?=\s)/g)].map((m) => [m[1]!, m[2]!]));
    expect(entries).toEqual(IMAGE_BUNDLES);
    for (const [name, source] of Object.entries(IMAGE_BUNDLES)) {
      expect(existsSync(join(REPO_ROOT, source)), source).toBe(true);
      expect(esbuild, name).toContain(`test -f dist/${name}.mjs`);
      // The build stage has the sources: each entry's top directory is copied in.
      expect(build.some((i) => i.keyword === 'COPY' && i.args.startsWith(`${source.split('/')[0]} `)), source).toBe(true);
    }
  });

  it('puts the bundles where the Lambda base image runs code from, and runs the handler that exists', () => {
    expect(IMAGE_TASK_ROOT).toBe('/var/task');
    expect(run.some((i) => i.keyword === 'COPY' && i.args === '--from=build /src/dist/ ${LAMBDA_TASK_ROOT}/')).toBe(true);
    // CMD: <bundle>.<export>, as the backup function's ImageConfig repeats it.
    const cmd = JSON.parse(run.filter((i) => i.keyword === 'CMD').at(-1)!.args) as string[];
    expect(cmd).toEqual(LAMBDA_CMD);
    const [bundle, exported] = cmd[0]!.split('.');
    const source = IMAGE_BUNDLES[bundle as keyof typeof IMAGE_BUNDLES];
    expect(source, `a bundle named ${bundle}`).toBeDefined();
    expect(readFileSync(join(REPO_ROOT, source), 'utf8')).toMatch(new RegExp(`^export (const|async function|function) ${exported}\\b`, 'm'));
  });

  it('starts the Fargate tasks on the CLI bundle', () => {
    expect(TASK_ENTRYPOINT).toEqual(['node', `${IMAGE_TASK_ROOT}/pgops.mjs`, '--json']);
    expect(Object.keys(IMAGE_BUNDLES)).toContain('pgops');
    expect(IMAGE_BUNDLES.pgops).toBe('bin/pgops.ts');
  });
});
