// `pgops pitr`: point-in-time recovery from a base backup and the WAL archive. Thin: parse the
// target and output flags, build the job's dependencies (the restore_command runs this very CLI),
// call the job, print.
import { Command, Option } from 'commander';
import { ConfigError, UsageError } from '../../functions/core/errors.ts';
import type { PitrDeps, PitrDryRun, PitrProgress, PitrResult } from '../../functions/core/pitr/job.ts';
import type { ManagedPitrDryRun, ManagedPitrResult } from '../../functions/core/pitr/managed/job.ts';
import type { InAwsResult } from '../../functions/core/pitr/managed/in-aws.ts';
import type { FromStateResult } from '../../functions/core/pitr/managed/from-state.ts';
import type { RestoreProgress } from '../../functions/core/pitr/managed/wait.ts';
import type { BackupJobDeps } from '../../functions/core/backup/deps.ts';
import { clearProgressLine, createProgress, progressEnabled, type Progress } from '../render/progress.ts';
import { serverCliArgv } from '../server-cli.ts';
import { runCommand, type CommandContext, type Io } from './run-command.ts';

interface PitrFlags {
  targetTime?: string;
  targetName?: string;
  targetLsn?: string;
  targetXid?: string;
  immediate?: boolean;
  exclusive?: boolean;
  timeline?: string;
  backup?: string;
  targetDb?: string;
  create?: boolean;
  clean?: boolean;
  table?: string[];
  sourceDb?: string;
  export?: boolean;
  dataDir?: string;
  dryRun?: boolean;
  rdsInstance?: string;
  auroraCluster?: string;
  latest?: boolean;
  keep?: boolean;
  inAws?: boolean;
  stateMachine?: string;
  fromState?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** One progress line per phase (fetching the base backup, replaying WAL). */
function phasedProgress(enabled: boolean, write: (s: string) => void): { update(p: PitrProgress): void; done(): void } {
  let phase: string | undefined;
  let line: Progress | undefined;
  return {
    update(p) {
      if (p.phase !== phase) {
        line?.done();
        phase = p.phase;
        line = createProgress(p.phase === 'recovery' ? 'recovery (WAL replayed)' : 'base backup', { enabled, write });
      }
      line?.update(p);
    },
    done: () => line?.done(),
  };
}

async function pitrDeps(ctx: CommandContext<PitrFlags>, onProgress: (p: PitrProgress) => void): Promise<PitrDeps> {
  const { rt } = ctx;
  // --target-db needs the connection's migrations table; --data-dir and --export can do without one.
  const connected: BackupJobDeps | undefined = await rt.backupDeps().catch((err: unknown) => {
    if (err instanceof ConfigError) return undefined;
    throw err;
  });
  return {
    storage: rt.storage(), logger: rt.logger, alerter: rt.alerter, environment: rt.settings.config.environment,
    databaseId: rt.settings.databaseId, target: () => rt.target(), session: rt.session,
    binDir: rt.settings.pgBinDir, serverBinDir: rt.settings.pgBinDir, signal: rt.signal(), migrationsTable: connected?.migrationsTable,
    // The scratch server runs restore_command as its own user: this CLI, in a form that user can run.
    walFetch: { argv: serverCliArgv(), s3Endpoint: rt.settings.s3Endpoint },
    onProgress,
  };
}

export function pitrCommand(io: Io): Command {
  return new Command('pitr')
    .description('point-in-time recovery: a base backup plus the WAL archive, recovered to a target in a scratch cluster')
    .option('--target-time <time>', 'recover to this time: ISO 8601 with Z or an offset (2026-12-01T14:01:00Z)')
    .option('--target-name <name>', 'recover to this restore point (pg_create_restore_point)')
    .option('--target-lsn <lsn>', 'recover to this WAL position (0/3000028)')
    .option('--target-xid <xid>', 'recover to this transaction id (txid_current())')
    .option('--immediate', 'recover only to the base backup\'s consistent point')
    .option('--exclusive', 'stop just before the target (time, LSN or xid) instead of just after it')
    .option('--timeline <tli>', 'the timeline to recover along (default: the newest in the archive)')
    .option('--backup <id>', 'this base backup (default: the newest that ends before the target)')
    .option('--target-db <name>', 'output: restore the recovered database into this database on the connection\'s server')
    .option('--create', 'with --target-db: create it (refused if it exists)')
    .option('--clean', 'with --target-db: replace the contents of an existing database')
    .option('--table <name>', 'with --target-db: only this table, with what hangs on it (repeatable)', collect)
    .option('--source-db <name>', 'the recovered database to restore or export (default: the connection\'s database)')
    .option('--export', 'output: a logical backup of the recovered database in storage ("source": "pitr"), listed and restorable')
    .option('--data-dir <dir>', 'output: the recovered data directory, stopped, ready to start as a new primary (must be empty or new)')
    .option('--dry-run', 'show the plan (base backup, WAL range, continuity, output); create nothing')
    .option('--rds-instance <id>', 'RDS/Aurora: restore this RDS PostgreSQL instance through AWS (a temporary copy)')
    .option('--aurora-cluster <id>', 'RDS/Aurora: restore this Aurora PostgreSQL cluster through AWS (a temporary copy)')
    .option('--latest', 'RDS/Aurora: to the latest restorable time (instead of --target-time)')
    .option('--keep', 'RDS/Aurora: keep the restored copy (cleanup deletes it once its pgops:expires tag has passed)')
    .option('--in-aws', 'RDS/Aurora: plan here, then run it in AWS: start the database\'s state machine and print the execution')
    .option('--state-machine <arn>', 'with --in-aws: the state machine (stack output PitrStateMachineArn<Db>; default: pgops-<environment>-<database id>-pitr)')
    .addOption(new Option('--from-state <json>', 'the state machine\'s output step (on the Fargate task): produce the output from the restored copy this state document describes').hideHelp())
    .addHelpText('after', HELP + MANAGED_HELP)
    .action((_o, cmd: Command) => runCommand<PitrFlags, PitrResult | PitrDryRun | ManagedPitrResult | ManagedPitrDryRun | InAwsResult | FromStateResult>(cmd, io, async (ctx) => {
      if (ctx.opts.fromState !== undefined) return runFromStateCommand(ctx, ctx.opts.fromState);
      if (ctx.opts.inAws || ctx.opts.stateMachine !== undefined) return runInAwsCommand(ctx);
      if ((await import('../../functions/core/pitr/managed/request.ts')).isManagedRequest(ctx.opts)) return runManagedPitrCommand(ctx);
      const progress = phasedProgress(progressEnabled(ctx.opts.json), io.err);
      try {
        const { runPitr } = await import('../../functions/core/pitr/job.ts');
        const o = ctx.opts;
        return await runPitr(await pitrDeps(ctx, (p) => progress.update(p)), {
          target: { targetTime: o.targetTime, targetName: o.targetName, targetLsn: o.targetLsn, targetXid: o.targetXid, immediate: o.immediate, exclusive: o.exclusive, timeline: o.timeline },
          output: { targetDb: o.targetDb, create: o.create, clean: o.clean, tables: o.table, sourceDb: o.sourceDb, export: o.export, dataDir: o.dataDir },
          backup: o.backup,
          dryRun: o.dryRun,
        });
      } finally {
        progress.done();
      }
    }, (r, { io: out }) => out.out(`${'inAws' in r ? describeInAws(r) : 'fromState' in r ? describeFromState(r) : isManagedResult(r) ? describeManagedResult(r) : describeResult(r)}\n`), { job: 'pitr' }));
}

function describeResult(r: PitrResult | PitrDryRun): string {
  if ('dryRun' in r) {
    const p = r.plan;
    return [
      'dry run: nothing was created; the plan:',
      `  base backup ${p.backup.id} (timeline ${p.backup.timeline}, WAL ${p.backup.startLsn} .. ${p.backup.stopLsn}, stopped at ${p.backup.stoppedAt})`,
      `  WAL ${p.wal.firstSegment} .. ${p.wal.lastSegment}: ${p.wal.segments} segment(s), all archived (through ${p.wal.through})`,
      `  recover to ${p.target.type}${p.target.value ? ` ${p.target.value}` : ''}${p.target.inclusive ? '' : ' (exclusive)'} on timeline ${p.timeline}`,
      `  output: ${p.output}`,
    ].join('\n');
  }
  const to = `LSN ${r.recoveredTo.lsn}${r.recoveredTo.time ? `, last transaction at ${r.recoveredTo.time}` : ''}`;
  const o = r.output;
  const output = o.type === 'target-db' ? `restored database ${o.sourceDb} into ${o.database}${o.created ? ' (created)' : ''}: ${o.tables} table(s)`
    : o.type === 'export' ? `exported database ${o.sourceDb} as logical backup ${o.backupId} (${o.key})`
      : `the recovered data directory is at ${o.path} (stopped; start it with pg_ctl -D ${o.path} start)`;
  return `recovered base backup ${r.backupId} + ${r.walSegments} WAL segment(s) to ${to} in ${(r.durationMs / 1000).toFixed(1)} s\n  ${output}`;
}

const HELP = `
Targets, exactly one:
  --target-time T     ISO 8601 with a zone (Z or +01:00); a time without one is refused
  --target-name NAME  a restore point (SELECT pg_create_restore_point('before-deploy'))
  --target-lsn LSN    a WAL position (SELECT pg_current_wal_lsn())
  --target-xid XID    a transaction (txid_current()); inclusive unless --exclusive
  --immediate         the base backup's consistent point
Outputs, exactly one:
  --target-db NAME [--create|--clean] [--table T]...   into a database on the connection's server,
                      with restore's rules (an existing database must be empty unless --clean)
  --export            a logical backup in storage, "source": "pitr" in its manifest
  --data-dir DIR      the recovered data directory (empty or new DIR), stopped cleanly

Before anything is created, the WAL from the base backup's start to the target is checked in the
archive: a missing segment is named and nothing starts. The recovery runs in a scratch PostgreSQL
(server binaries: PGOPS_PG_BINDIR or pg_config --bindir; as root, run as the postgres user) with no
TCP listener, restore_command = pgops wal fetch (this CLI), the one target and promote. "Recovery
ended before the target", any FATAL, or a wal fetch that aborts is a failure (exit 1, one alert),
never a success. The scratch cluster is removed afterwards, success or not; SIGTERM/SIGINT stop it
and clean up (exit 143/130).

Examples:
  $ pgops pitr --target-time 2026-12-01T14:01:00Z --target-db orders_1401 --create
  $ pgops pitr --target-name before-deploy --target-db orders --clean --table orders
  $ pgops pitr --target-xid 748213 --exclusive --export --json
  $ pgops pitr --target-lsn 0/5000060 --data-dir /var/lib/postgresql/recovered --dry-run`;

/** One status line for an RDS restore, redrawn in place on a terminal (nothing with --json or without a TTY). */
function restoreStatusLine(enabled: boolean, write: (s: string) => void): { update(p: RestoreProgress): void; done(): void } {
  let last = '';
  return {
    update(p) {
      if (!enabled) return;
      const secs = Math.floor(p.elapsedMs / 1000);
      clearProgressLine();
      last = `restore: ${p.resource}: ${p.status}  ${String(Math.floor(secs / 60)).padStart(2, '0')}:${String(secs % 60).padStart(2, '0')}`;
      write(`\r\x1b[2K${last}`);
    },
    done: () => { if (last) write(`\r\x1b[2K${last}\n`); },
  };
}

/** `pgops pitr --rds-instance ID | --aurora-cluster ID`: AWS restores a temporary copy; the outputs come from it. */
async function runManagedPitrCommand(ctx: CommandContext<PitrFlags>): Promise<ManagedPitrResult | ManagedPitrDryRun> {
  const { rt, opts: o } = ctx;
  const [{ runManagedPitr }, { managedConfigOf }] = await Promise.all([import('../../functions/core/pitr/managed/job.ts'), import('../../functions/core/config.ts')]);
  const { config } = rt.settings;
  const status = restoreStatusLine(progressEnabled(o.json), ctx.io.err);
  try {
    return await runManagedPitr({
      rds: rt.rdsClient(), config: managedConfigOf(config), storage: rt.optionalStorage(), logger: rt.logger, alerter: rt.alerter,
      environment: config.environment, databaseId: rt.settings.databaseId, target: () => rt.target(), session: rt.session,
      binDir: rt.settings.pgBinDir, signal: rt.signal(), migrationsTable: { schema: config.migrate.migrationsSchema, table: config.migrate.migrationsTable },
      onProgress: (p) => status.update(p),
    }, {
      rdsInstance: o.rdsInstance, auroraCluster: o.auroraCluster,
      target: { targetTime: o.targetTime, latest: o.latest, targetName: o.targetName, targetLsn: o.targetLsn, targetXid: o.targetXid, immediate: o.immediate, exclusive: o.exclusive, timeline: o.timeline },
      output: { targetDb: o.targetDb, create: o.create, clean: o.clean, tables: o.table, sourceDb: o.sourceDb, export: o.export, dataDir: o.dataDir },
      backup: o.backup, keep: o.keep, dryRun: o.dryRun,
    });
  } finally {
    status.done();
  }
}

/** `--in-aws`: plan here, start the database's state machine with the run's state document. */
async function runInAwsCommand(ctx: CommandContext<PitrFlags>): Promise<InAwsResult> {
  const { rt, opts: o } = ctx;
  if (!o.inAws) throw new UsageError('invalid managed pitr', ['--state-machine goes with --in-aws']);
  if (o.rdsInstance === undefined && o.auroraCluster === undefined) throw new UsageError('invalid managed pitr', ['--in-aws runs an RDS/Aurora recovery: give --rds-instance ID or --aurora-cluster ID']);
  const [{ startManagedPitrInAws }, { defaultSfnClient }, { managedConfigOf }] = await Promise.all([
    import('../../functions/core/pitr/managed/in-aws.ts'), import('../../functions/core/aws/sfn-client.ts'), import('../../functions/core/config.ts'),
  ]);
  const { config } = rt.settings;
  return startManagedPitrInAws({
    rds: rt.rdsClient(), sfn: defaultSfnClient, config: managedConfigOf(config), logger: rt.logger, alerter: rt.alerter,
    environment: config.environment, databaseId: rt.settings.databaseId,
  }, {
    rdsInstance: o.rdsInstance, auroraCluster: o.auroraCluster,
    target: { targetTime: o.targetTime, latest: o.latest, targetName: o.targetName, targetLsn: o.targetLsn, targetXid: o.targetXid, immediate: o.immediate, exclusive: o.exclusive, timeline: o.timeline },
    output: { targetDb: o.targetDb, create: o.create, clean: o.clean, tables: o.table, sourceDb: o.sourceDb, export: o.export, dataDir: o.dataDir },
    backup: o.backup, keep: o.keep, dryRun: o.dryRun, stateMachine: o.stateMachine,
  });
}

/** `--from-state`: the state machine's output step, on the database's task. */
async function runFromStateCommand(ctx: CommandContext<PitrFlags>, raw: string): Promise<FromStateResult> {
  const { rt } = ctx;
  const [{ produceOutputFromState }, { managedConfigOf }] = await Promise.all([import('../../functions/core/pitr/managed/from-state.ts'), import('../../functions/core/config.ts')]);
  const { config } = rt.settings;
  return produceOutputFromState({
    rds: rt.rdsClient(), config: managedConfigOf(config), storage: rt.optionalStorage(), logger: rt.logger, alerter: rt.alerter,
    environment: config.environment, databaseId: rt.settings.databaseId, target: () => rt.target(), session: rt.session,
    binDir: rt.settings.pgBinDir, signal: rt.signal(), migrationsTable: { schema: config.migrate.migrationsSchema, table: config.migrate.migrationsTable },
  }, raw);
}

function describeInAws(r: InAwsResult): string {
  const to = r.target.type === 'time' ? r.target.value : 'the latest restorable time';
  const head = r.started
    ? `started ${r.executionName}: restore ${r.source.id} to ${to} into ${r.copy}, then the output on the Fargate task, then delete and notify\n  execution ${r.executionArn ?? ''}`
    : `dry run: nothing was started; the execution's input (--json: .input):\n  ${r.stateMachineArn}: restore ${r.source.id} to ${to} into ${r.copy}`;
  return [head, `  restore window ${r.window.earliest ?? '?'} .. ${r.window.latest ?? '?'}`, '  follow it:', ...r.follow.map((f) => `    $ ${f}`)].join('\n');
}

function describeFromState(r: FromStateResult): string {
  const o = r.output;
  const output = o.type === 'target-db' ? `restored database ${o.sourceDb} into ${o.database}${o.created ? ' (created)' : ''}: ${o.tables} table(s)`
    : o.type === 'export' ? `exported database ${o.sourceDb} as logical backup ${o.backupId} (${o.key})` : '';
  return `output of run ${r.runId} from the restored ${r.restored.cluster ?? r.restored.instance}: ${output}`;
}

function isManagedResult(r: PitrResult | PitrDryRun | ManagedPitrResult | ManagedPitrDryRun): r is ManagedPitrResult | ManagedPitrDryRun {
  return 'source' in r || ('plan' in r && 'source' in r.plan);
}

function describeManagedResult(r: ManagedPitrResult | ManagedPitrDryRun): string {
  if ('dryRun' in r) {
    const p = r.plan;
    const c = p.restored;
    return [
      'dry run: nothing was created; the plan:',
      `  source: ${p.source.kind === 'instance' ? 'RDS instance' : 'Aurora cluster'} ${p.source.id}, restore window ${p.window.earliest} .. ${p.window.latest}`,
      `  restore to ${p.target.type === 'time' ? p.target.value : 'the latest restorable time'}`,
      `  copy: ${c.cluster ? `cluster ${c.cluster}, instance ${c.instance}` : `instance ${c.instance}`} (${c.instanceClass}), subnet group ${c.subnetGroup}, security groups ${c.securityGroups.join(', ')}${c.parameterGroup ? `, parameter group ${c.parameterGroup}` : ''}${c.clusterParameterGroup ? `, cluster parameter group ${c.clusterParameterGroup}` : ''}, not public`,
      `  tags: ${Object.entries(c.tags).map(([k, v]) => `${k}=${v}`).join(' ')}`,
      `  output: ${p.output}`,
      `  then: ${p.keep ? `keep the copy (cleanup deletes it after ${c.expires})` : 'delete the copy (no final snapshot)'}`,
    ].join('\n');
  }
  const o = r.output;
  const output = o.type === 'target-db' ? `restored database ${o.sourceDb} into ${o.database}${o.created ? ' (created)' : ''}: ${o.tables} table(s)`
    : o.type === 'export' ? `exported database ${o.sourceDb} as logical backup ${o.backupId} (${o.key})` : '';
  const c = r.restored;
  const copy = c.kept
    ? `the copy ${c.cluster ?? c.instance} is kept${c.endpoint ? ` at ${c.endpoint.host}:${c.endpoint.port}` : ''} until ${c.expires} (cleanup deletes it then)`
    : `the copy ${c.cluster ?? c.instance} is being deleted`;
  return `restored ${r.source.id} to ${r.target.type === 'time' ? r.target.value : 'its latest restorable time'} (copy available after ${(r.restoreMs / 60_000).toFixed(1)} min)\n  ${output}\n  ${copy}`;
}

const MANAGED_HELP = `

RDS and Aurora (AWS keeps the WAL; pgops restores a temporary copy through the RDS API):
  --rds-instance ID | --aurora-cluster ID   with --target-time T or --latest, and --target-db or --export
  The target is checked against the restore window first (outside: exit 1, the window named). The
  copy (pgops-pitr-<source>-<yyyymmddhhmm>, tagged pgops:purpose=pitr and pgops:expires) gets the
  source's subnet group, security groups and parameter groups, managed.pitr.instanceClass
  (db.t4g.medium), no public access; the output is read from it with the source's credentials; then
  it is deleted (no final snapshot), also on failure or SIGTERM, unless --keep.

  $ pgops pitr --rds-instance auth-prod --target-time 2026-12-01T14:01:00Z --target-db auth_1401 --create --table users
  $ pgops pitr --aurora-cluster orders --latest --export --json
  $ pgops pitr --rds-instance auth-prod --target-time 2026-12-01T14:01:00Z --target-db auth_1401 --create --dry-run

  --in-aws plans here and starts the database's state machine with the plan (its input; no secret):
  restore, wait, the output on the Fargate task, delete, notify the alert topic. It prints the
  execution ARN and how to follow it. --state-machine ARN, else pgops-<environment>-<database id>-pitr.
  $ pgops pitr --rds-instance auth-prod --target-time 2026-12-01T14:01:00Z --target-db auth_restore --table orders --in-aws`;
