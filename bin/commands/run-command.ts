// Shared plumbing for every CLI command: settings, runtime, --json, errors and exit codes.
// The job's machinery (config and zod, the runtime, storage, AWS clients) is imported when a command
// runs, not when the CLI starts: `pgops --help` loads none of it.
import { InvalidArgumentError, type Command } from 'commander';
import type { Flags } from '../../functions/core/config.ts';
import { exitCodeOf, errorMessage } from '../../functions/core/errors.ts';
import type { LogLevel } from '../../functions/core/logger.ts';
import { redact, redactString } from '../../functions/core/redact.ts';
import type { Runtime } from '../../functions/core/runtime.ts';
import type { MetricDatum } from '../../functions/core/metrics.ts';
import { clearProgressLine } from '../render/progress.ts';

export interface GlobalOptions extends Flags {
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
}

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  isTTY: boolean;
}

export const processIo: Io = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  isTTY: Boolean(process.stdout.isTTY),
};

export function parseCount(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number of at least 1.');
  return n;
}

export interface CommandContext<O> {
  rt: Runtime;
  opts: O & GlobalOptions;
  io: Io;
}

export interface CommandOptions<R, O = unknown> {
  /** Exit code for a result (default 0). */
  exitCode?: (result: R) => number | Promise<number>;
  /** Exit code for a failure; `pgops health` maps every failure to 3 (UNKNOWN), the monitoring-plugin way. */
  errorExitCode?: (err: unknown) => number;
  /** The job this command runs: a failure outside the job itself (its dependencies) is reported by the same policy. */
  job?: string;
  /** What the job reports to CloudWatch when it ends (published only where PGOPS_METRICS says: the Fargate task). */
  metrics?: (outcome: { result: R } | { error: unknown }, opts: O) => MetricDatum[] | Promise<MetricDatum[]>;
}

/**
 * Run a command body: load settings (exit 2 naming every bad field), build the runtime,
 * print the result as JSON (--json) or text, and map errors to exit codes.
 */
export async function runCommand<O, R>(
  cmd: Command,
  io: Io,
  body: (ctx: CommandContext<O>) => Promise<R>,
  print: (result: R, ctx: CommandContext<O>) => void | Promise<void>,
  options: CommandOptions<R, O & GlobalOptions> = {},
): Promise<void> {
  const opts = cmd.optsWithGlobals<O & GlobalOptions & { dryRun?: boolean }>();
  const interrupt = new AbortController();
  let rt: Runtime | undefined;
  const stopHandling = handleStopSignals(interrupt, io, () => rt?.interruptible() ?? false);
  let disarmDeadline = () => {};
  let publish: MetricsPublisher | undefined;
  try {
    rt = await commandRuntime(opts, io, interrupt.signal);
    publish = options.metrics ? await metricsPublisher(rt) : undefined;
    const job = options.job;
    if (job !== undefined && !opts.dryRun) disarmDeadline = await armTaskDeadline(job, rt, interrupt, io);
    const ctx: CommandContext<O> = { rt, opts, io };
    const result = job ? await (await import('../../functions/core/run-job.ts')).runJob(rt.reporting(), { job, silent: opts.dryRun }, () => body(ctx)) : await body(ctx);
    disarmDeadline();
    if (publish && options.metrics) await publish(await options.metrics({ result }, opts));
    if (opts.json) io.out(`${JSON.stringify(redact(result), null, 2)}\n`);
    else await print(result, ctx);
    process.exitCode = await (options.exitCode ?? (() => 0))(result);
  } catch (err) {
    disarmDeadline();
    if (publish && options.metrics) await publish(await options.metrics({ error: err }, opts));
    const code = (options.errorExitCode ?? exitCodeOf)(err);
    const message = redactString(errorMessage(err));
    io.err(`pgops: error: ${message}\n`);
    if (opts.json) io.out(`${JSON.stringify({ error: { type: err instanceof Error ? err.name : 'Error', message, exitCode: code } }, null, 2)}\n`);
    process.exitCode = code;
  } finally {
    disarmDeadline();
    stopHandling();
  }
}

const STOP_SIGNALS = ['SIGTERM', 'SIGINT'] as const;
const SIGNAL_EXIT: Record<(typeof STOP_SIGNALS)[number], number> = { SIGINT: 130, SIGTERM: 143 };

/**
 * SIGTERM/SIGINT while a command runs: a job that honours the abort signal (backup, verify, restore)
 * stops its tools, cleans up, alerts, and the command exits 128 + the signal's number (143, 130).
 * Any other command, or a second signal, exits at once with that code, as without a handler.
 */
function handleStopSignals(interrupt: AbortController, io: Io, interruptible: () => boolean): () => void {
  const onSignal = (name: (typeof STOP_SIGNALS)[number]) => {
    if (interrupt.signal.aborted || !interruptible()) {
      io.err(`pgops: ${name}: stopping now\n`);
      process.exit(SIGNAL_EXIT[name]);
    }
    io.err(`pgops: ${name}: stopping the job and cleaning up (send it again to stop at once)\n`);
    interrupt.abort(name);
  };
  const listeners = STOP_SIGNALS.map((name) => [name, () => onSignal(name)] as const);
  for (const [name, fn] of listeners) process.on(name, fn);
  return () => { for (const [name, fn] of listeners) process.off(name, fn); };
}

type MetricsPublisher = (data: MetricDatum[]) => Promise<void>;

/** Publishes the job's metrics where PGOPS_METRICS asks for them (the Fargate task); undefined elsewhere. */
async function metricsPublisher(rt: Runtime): Promise<MetricsPublisher | undefined> {
  const [{ metricSinkFor }, { publishMetrics }] = await Promise.all([import('../metrics.ts'), import('../../functions/core/metrics.ts')]);
  const sink = metricSinkFor(rt.settings);
  return sink ? (data) => publishMetrics(sink, rt.databaseId(), data, rt.logger) : undefined;
}

/** The task deadline (the Fargate task's, from settings) armed for this job; returns its disarm. */
async function armTaskDeadline(job: string, rt: Runtime, interrupt: AbortController, io: Io): Promise<() => void> {
  const { armDeadline, taskDeadlineSeconds } = await import('../task-deadline.ts');
  const seconds = taskDeadlineSeconds(job, rt.settings);
  return seconds === undefined ? () => {} : armDeadline({ job, seconds, interrupt, runtime: () => rt, err: io.err });
}

async function commandRuntime(opts: GlobalOptions, io: Io, signal: AbortSignal): Promise<Runtime> {
  const [{ loadSettings }, { createTextLogger }, { buildRuntime }, { openStorage }, { defaultRdsClient }] = await Promise.all([
    import('../../functions/core/config.ts'),
    import('../../functions/core/logger.ts'),
    import('../../functions/core/runtime.ts'),
    import('../../functions/core/storage/index.ts'),
    import('../../functions/core/aws/rds-client.ts'),
  ]);
  const settings = loadSettings({ databaseUrl: opts.databaseUrl, storage: opts.storage, dir: opts.dir, config: opts.config, databaseId: opts.databaseId });
  const level: LogLevel = opts.quiet ? 'warn' : opts.verbose ? 'debug' : settings.logLevel;
  const logger = createTextLogger({ level, write: (line) => { clearProgressLine(); io.err(line); } });
  return buildRuntime(settings, logger, { openStorage, signal, rds: defaultRdsClient });
}
