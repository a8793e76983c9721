// Running pg_receivewal for `wal receive`: its argv and environment (the password only in
// PGPASSWORD, never a prompt), its log lines, and a clean stop. pg_receivewal 15 stops cleanly on
// SIGINT (exit 0, the partial flushed); SIGTERM kills it outright (exit 143), so SIGINT it is.
import { join } from 'node:path';
import type { DbTarget } from '../db.ts';
import type { Logger } from '../logger.ts';
import { pgEnv, startTool, type PgCommand, type ToolExit } from '../pgtools/tools.ts';
import { redactString } from '../redact.ts';

export interface StreamDeps {
  target: DbTarget;
  binDir: string;
  logger: Logger;
  connectTimeoutSeconds?: number;
}

export interface WalStream {
  /** Resolves when pg_receivewal has exited, for whatever reason. */
  done: Promise<ToolExit>;
  /** Its exit, once it has exited. */
  exited(): ToolExit | undefined;
  /** Stop it cleanly (SIGINT; SIGKILL after `graceMs`) and return how it exited. */
  stop(graceMs?: number): Promise<ToolExit>;
}

/**
 * pg_receivewal's command. No --slot: the receiver holds the slot itself and moves it only past
 * archived WAL (pg_receivewal would move it as soon as WAL is on local disk, which a new container
 * does not have). --no-loop: a lost connection ends the process, so the service restarts and resumes.
 */
export function buildPgReceivewalCommand(target: DbTarget, o: { binDir: string; spool: string; synchronous: boolean; connectTimeoutSeconds?: number }): PgCommand {
  const args = ['--directory', o.spool, '--no-password', '--no-loop', '--verbose'];
  if (o.synchronous) args.push('--synchronous');
  return {
    command: join(o.binDir, 'pg_receivewal'),
    args,
    env: pgEnv(target, { applicationName: 'pgops-wal-receive', connectTimeoutSeconds: o.connectTimeoutSeconds }),
  };
}

export function startPgReceivewal(deps: StreamDeps, spool: string, synchronous: boolean): WalStream {
  const tool = startTool(buildPgReceivewalCommand(deps.target, { binDir: deps.binDir, spool, synchronous, connectTimeoutSeconds: deps.connectTimeoutSeconds }));
  let exit: ToolExit | undefined;
  const done = tool.done.then((e) => (exit = e));
  logLines(tool.child.stderr, deps.logger);
  return {
    done,
    exited: () => exit,
    stop: async (graceMs = 15_000) => {
      if (exit) return exit;
      tool.child.kill('SIGINT');
      const timer = setTimeout(() => tool.child.kill('SIGKILL'), graceMs);
      try {
        return await done;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** True for the exit of a pg_receivewal that was asked to stop (by us, or by a signal to the whole process group). */
export function stoppedCleanly(e: ToolExit): boolean {
  return !e.spawnError && (e.code === 0 || e.signal === 'SIGINT' || e.signal === 'SIGTERM');
}

/** pg_receivewal's lines: where it starts at info level (the resume point is what operators check), the rest at debug. */
function logLines(stream: NodeJS.ReadableStream | null, logger: Logger): void {
  let buffered = '';
  stream?.on('data', (chunk: string | Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines.map((l) => redactString(l.trim())).filter(Boolean)) {
      if (/starting log streaming at/.test(line)) logger.info(line);
      else logger.debug(line);
    }
  });
}
