import { Command, InvalidArgumentError } from 'commander';
import { formatHealthTable } from '../render/health-table.ts';
import { healthExitCode, HealthUnknownError, type HealthResult, type HealthThresholds } from '../../functions/core/health/types.ts';
import { redactString } from '../../functions/core/redact.ts';
import { runJob } from '../../functions/core/run-job.ts';
import { runCommand, type CommandContext, type Io } from './run-command.ts';

interface HealthOpts {
  maxBackupAgeHours?: number;
  minBackupSizeRatio?: number;
  maxRestoreTestAgeDays?: number;
  longRunningQuerySeconds?: number;
  deadTupleRatioWarn?: number;
  maxDailyGrowthRatio?: number;
  alertRepeatHours?: number;
  blockedWaitSeconds?: number;
  alert: boolean;
}

function positive(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a number above 0.');
  return n;
}

function nonNegative(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be a number of at least 0.');
  return n;
}

function ratio(value: string): number {
  const n = nonNegative(value);
  if (n > 1) throw new InvalidArgumentError('must be a ratio from 0 to 1.');
  return n;
}

const THRESHOLD_KEYS = ['maxBackupAgeHours', 'minBackupSizeRatio', 'maxRestoreTestAgeDays', 'longRunningQuerySeconds', 'deadTupleRatioWarn', 'maxDailyGrowthRatio', 'alertRepeatHours'] as const;

function thresholds(base: HealthThresholds, opts: HealthOpts): HealthThresholds {
  const out = { ...base };
  for (const k of THRESHOLD_KEYS) if (opts[k] !== undefined) out[k] = opts[k];
  return out;
}

async function health(ctx: CommandContext<HealthOpts>): Promise<HealthResult> {
  const { rt, opts } = ctx;
  const config = { ...rt.settings.config, health: thresholds(rt.settings.config.health, opts) };
  const deps = await rt.healthDeps({ config, options: opts.blockedWaitSeconds !== undefined ? { blockedWaitSeconds: opts.blockedWaitSeconds } : undefined });
  const { runHealth } = await import('../../functions/core/health/job.ts');
  // A crash of the job itself is UNKNOWN (exit 3), reported like any job's failure (unless --no-alert).
  const result = await runJob(rt.reporting(), {
    job: 'health',
    silent: !opts.alert,
    wrap: (m, cause) => new HealthUnknownError(`health check failed to run: ${redactString(m)}`, { cause }),
  }, () => runHealth(deps));
  if (opts.alert) {
    const { deliverHealthAlerts } = await import('../../functions/core/health/alert-dedupe.ts');
    await deliverHealthAlerts({ result, alerter: rt.alerter, logger: rt.logger, repeatHours: config.health.alertRepeatHours, storage: deps.storage, runId: (await import('node:crypto')).randomUUID() });
  }
  return result;
}

/** A failing wal-archiving check in full: a gap's name and how far recovery reaches do not fit a table cell. */
function walArchivingInFull(r: HealthResult): string {
  const c = r.checks.find((x) => x.name === 'wal-archiving');
  if (!c || c.status === 'ok' || c.status === 'info') return '';
  return `\nwal-archiving (${c.status}): ${redactString(c.summary)}\n`;
}

export function healthCommand(io: Io): Command {
  return new Command('health')
    .description('run every health check (database, backups, restore tests); exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN')
    .option('--max-backup-age-hours <hours>', 'newest backup older than this is critical (config health.maxBackupAgeHours, default 26)', positive)
    .option('--min-backup-size-ratio <ratio>', 'newest backup below this share of the median of the previous 7 is a warning (default 0.5)', ratio)
    .option('--max-restore-test-age-days <days>', 'last successful restore test older than this is a warning (default 8)', positive)
    .option('--long-running-query-seconds <seconds>', 'queries active longer than this are reported (default 300)', positive)
    .option('--dead-tuple-ratio-warn <ratio>', 'dead-tuple ratio above this is a warning (default 0.2)', ratio)
    .option('--max-daily-growth-ratio <ratio>', 'database growth per day above this is a warning (default 0.1)', nonNegative)
    .option('--alert-repeat-hours <hours>', 'do not repeat an alert for a check that stays failing within this time (default 24)', positive)
    .option('--blocked-wait-seconds <seconds>', 'report sessions waiting on a lock at least this long (default 10)', nonNegative)
    .option('--no-alert', 'check only: send no alert')
    .addHelpText('after', `
Alerts go to SNS (PGOPS_SNS_TOPIC_ARN) and Slack (PGOPS_SLACK_WEBHOOK_URL or PGOPS_SLACK_WEBHOOK_SECRET_ID),
else to stderr. With --storage, alerts are deduplicated per check (state in <database>/state/) and a
recovery sends "resolved"; growth and archiver failures are tracked between runs.

Exit codes (monitoring-plugin convention): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.

Examples:
  $ pgops health --storage s3://backups/pgops
  $ pgops health --json --no-alert
  $ pgops health --max-backup-age-hours 50 --long-running-query-seconds 60`)
    .action((_o, cmd: Command) => runCommand<HealthOpts, HealthResult>(cmd, io,
      health,
      (r, { io: o }) => {
        o.out(formatHealthTable(r, { color: o.isTTY, width: o.isTTY ? process.stdout.columns : 160 }));
        o.out(walArchivingInFull(r));
      },
      {
        exitCode: (r) => healthExitCode(r.status),
        // Bad usage or configuration means the checks could not run: UNKNOWN, not CRITICAL.
        errorExitCode: () => 3,
      }));
}
