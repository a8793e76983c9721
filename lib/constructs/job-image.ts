// The one image of docker/Dockerfile (Node 24 + the PostgreSQL client tools + the backup handler and
// CLI bundles), used by the backup function and the Fargate task. Staged without Docker at synth;
// built and pushed by `cdk deploy`.
import * as ecrAssets from 'aws-cdk-lib/aws-ecr-assets';
import { IgnoreMode } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { type IMAGE_BUNDLES, IMAGE_TASK_ROOT } from '../bundling.ts';

/** The image's bundles by role (a rename in IMAGE_BUNDLES fails the type check here). */
const BACKUP_BUNDLE: keyof typeof IMAGE_BUNDLES = 'backup';
const CLI_BUNDLE: keyof typeof IMAGE_BUNDLES = 'pgops';

export interface JobImageProps {
  repoRoot: string;
  pgMajor: number;
  architecture: 'arm64' | 'x86_64';
}

/** Lambda: the base image's own entry point, with the backup handler (the export of its bundle). */
export const LAMBDA_CMD = [`${BACKUP_BUNDLE}.handler`];

/**
 * Fargate: the pgops CLI itself, `node pgops.mjs --json <command...>`: the same commands, exit codes
 * and alerts as on a laptop. The command follows (ECS overrides from the backup function, e.g.
 * ["backup", "--schema-only"], or the restore test's). Settings arrive as PGOPS_CONFIG_JSON, since
 * the image is shared by every database.
 */
export const TASK_ENTRYPOINT = ['node', `${IMAGE_TASK_ROOT}/${CLI_BUNDLE}.mjs`, '--json'];

/** What the task runs when started without a command override. */
export const TASK_DEFAULT_COMMAND = ['backup'];

export class JobImage extends Construct {
  readonly asset: ecrAssets.DockerImageAsset;

  constructor(scope: Construct, id: string, props: JobImageProps) {
    super(scope, id);
    this.asset = new ecrAssets.DockerImageAsset(this, 'Asset', {
      directory: props.repoRoot,
      file: 'docker/Dockerfile',
      buildArgs: { PG_MAJOR: String(props.pgMajor) },
      platform: props.architecture === 'arm64' ? ecrAssets.Platform.LINUX_ARM64 : ecrAssets.Platform.LINUX_AMD64,
      // Only what the Dockerfile copies: the repository root also holds node_modules, cdk.out, .git.
      ignoreMode: IgnoreMode.DOCKER,
      exclude: ['*', '!package.json', '!package-lock.json', '!tsconfig.json', '!functions', '!bin', 'bin/app.ts', '!migrations', '!docker'],
    });
  }
}
