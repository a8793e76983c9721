// Fargate entry for jobs that outlive Lambda: `node task.mjs backup|restore|verify [flags]`.
// It runs the same CLI (bin/pgops.ts) with --json, so the job, its alerts and its exit codes are
// exactly those of `pgops`; a non-zero exit marks the task STOPPED with an error, which the
// stack's EventBridge rule turns into an alert.
import { main } from '../../bin/pgops.ts';

const COMMANDS: Record<string, string[]> = { backup: ['backup'], restore: ['restore'], verify: ['backups', 'verify'] };

export async function runTask(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const prefix = command ? COMMANDS[command] : undefined;
  if (!prefix) {
    process.stderr.write(`pgops task: unknown command "${command ?? ''}" (expected backup, restore or verify)\n`);
    return 2;
  }
  return main(['node', 'pgops', '--json', ...prefix, ...rest]);
}

if (process.argv[1] && /(task\.mjs|task[\\/]index\.(ts|js|mjs))$/.test(process.argv[1])) {
  process.exitCode = await runTask(process.argv.slice(2));
}
