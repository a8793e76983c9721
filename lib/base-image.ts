// What docker/Dockerfile builds on, in one place for the configuration (which pgMajor can exist) and
// the image test: the Lambda Node.js base image and the PostgreSQL packages of its distribution.

/** The run stage's base: Lambda's Node.js 24 image (the functions' runtime), on Amazon Linux 2023. */
export const LAMBDA_BASE_IMAGE = 'public.ecr.aws/lambda/nodejs:24';

/** The build stage's image: the same Node.js major, Debian (esbuild and npm ci only). */
export const BUILD_IMAGE = 'public.ecr.aws/docker/library/node:24-bookworm-slim';

/**
 * Amazon Linux 2023's PostgreSQL packages, client (pg_dump, pg_restore, pg_basebackup,
 * pg_receivewal) and server (postgres, pg_ctl, initdb for pitr's scratch cluster), as its package
 * lists give them (docs.aws.amazon.com/linux/al2023/release-notes/all-packages-*.html): 15 since
 * the first release, then 16 and 17. There is no postgresql13 or postgresql14 on AL2023 (those were
 * Amazon Linux 2 "extras"). A newer major belongs here once `docker build --build-arg PG_MAJOR=<n>`
 * has succeeded against the current base image.
 */
export const AL2023_POSTGRESQL_PACKAGES = [
  'postgresql15', 'postgresql15-server',
  'postgresql16', 'postgresql16-server',
  'postgresql17', 'postgresql17-server',
] as const;

/** The Dockerfile's package names for one major (it installs "postgresql${PG_MAJOR}" and "-server"). */
export function postgresqlPackages(major: number): string[] {
  return [`postgresql${major}`, `postgresql${major}-server`];
}

/** The majors the image can be built with: both of their packages exist. */
export const SUPPORTED_PG_MAJORS: readonly number[] = [...new Set(AL2023_POSTGRESQL_PACKAGES.map((p) => Number(/^postgresql(\d+)/.exec(p)![1])))]
  .filter((major) => postgresqlPackages(major).every((p) => (AL2023_POSTGRESQL_PACKAGES as readonly string[]).includes(p)))
  .sort((a, b) => a - b);
