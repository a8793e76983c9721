// The safety point of `migrate up`: before anything is applied, a full logical backup (migrate.backupBefore)
// and a restore point (pg_create_restore_point, where the role may), so a migration run is one command
// from undone. A dry run reports what the safety point would be and takes none.
import type pg from 'pg';
import type { FileConfig } from '../config.ts';
import type { DbTarget } from '../db.ts';
import { ConfigError, errorMessage, MigrationError, PgopsError, type AlertLevel } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { redactString } from '../redact.ts';
import { InterruptedError } from '../run-job.ts';
import type { MigrationFile } from './files.ts';
import type { DestructiveChange } from './lint/destructive.ts';
import { findDestructiveChanges } from './lint/lint.ts';

export type BackupBefore = FileConfig['migrate']['backupBefore'];

/** Takes a full logical backup of the database; resolves once it exists (its manifest is written). */
export type SafetyBackup = () => Promise<{ id: string }>;

export interface SafetyPointDeps {
  /** `migrate.backupBefore` (default "never"). */
  backupBefore?: BackupBefore;
  /** How this runner backs up (storage and pg_dump, or the backup function); undefined when it cannot. */
  takeBackup?: SafetyBackup;
  target: DbTarget;
  databaseId: string;
  logger: Logger;
  clock?: () => Date;
}

/** What was recorded before applying, and how to go back to it (the result's and the failure alert's `safetyPoint`). */
export interface SafetyPoint {
  /** The restore point; in a dry run only the name it would have (a real run stamps its own time). */
  restorePoint?: { name: string; lsn?: string };
  /** The full logical backup taken first (migrate.backupBefore). */
  backupId?: string;
  /** Why a backup was taken (or in a dry run would be). */
  backupReason?: string;
  /** The destructive changes that called for it (migrate.backupBefore "destructive"). */
  destructive?: DestructiveChange[];
  /** What was not recorded, and why (a role that may not create restore points, wal_level minimal). */
  skipped?: string[];
  /** The commands that bring the database back to this point. */
  goBack?: string[];
  /** A dry run: nothing was recorded or taken. */
  planned?: true;
}

/** The backup before migrating failed: nothing was applied. Pages at the level its cause would have. */
export class SafetyPointError extends MigrationError {
  override readonly alert: AlertLevel;
  constructor(message: string, options: { cause: unknown }) {
    super(message, options);
    this.alert = options.cause instanceof PgopsError ? options.cause.alert : 'critical';
  }
}

// PostgreSQL's limit for a restore point name (MAXFNAMELEN - 1).
const MAX_RESTORE_POINT = 63;

/** `pgops-migrate-<UTC timestamp>-<first pending migration>`, cut to PostgreSQL's 63 characters. */
export function restorePointName(at: Date, firstMigration: string): string {
  const stamp = at.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
  // Plain characters only: the name travels on a command line (pgops pitr --target-name).
  const migration = firstMigration.replace(/[^A-Za-z0-9._-]/g, '_');
  return `pgops-migrate-${stamp}-${migration}`.slice(0, MAX_RESTORE_POINT);
}

interface RestorePointAbility {
  /** Why no restore point can be made here; undefined when it can. */
  unable?: string;
  /** WAL reaches an archive (archive_mode, or a physical replication slot for `pgops wal receive`). */
  pitr: boolean;
}

async function restorePointAbility(client: pg.Client): Promise<RestorePointAbility> {
  const r = await client.query<{ wal_level: string; may: boolean; recovery: boolean; archiving: boolean; slot: boolean; role: string }>(`
    SELECT current_setting('wal_level') AS wal_level,
           has_function_privilege('pg_catalog.pg_create_restore_point(text)', 'EXECUTE') AS may,
           pg_is_in_recovery() AS recovery,
           current_setting('archive_mode') <> 'off' AS archiving,
           EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_type = 'physical') AS slot,
           current_user AS role`);
  const row = r.rows[0]!;
  const pitr = row.archiving || row.slot;
  if (row.wal_level === 'minimal') return { pitr, unable: 'wal_level is minimal, so a restore point could not be replayed to (set wal_level = replica to have one)' };
  if (row.recovery) return { pitr, unable: 'the server is a standby (in recovery)' };
  if (!row.may) return { pitr, unable: `role ${row.role} may not execute pg_create_restore_point (a superuser may; or GRANT EXECUTE ON FUNCTION pg_create_restore_point(text) TO ${row.role})` };
  return { pitr };
}

/** The restore point's LSN, or why there is none: no privilege or wal_level minimal skip it, anything else fails. */
async function createRestorePoint(client: pg.Client, name: string): Promise<{ lsn?: string; unable?: string }> {
  try {
    const r = await client.query<{ lsn: string }>('SELECT pg_create_restore_point($1)::text AS lsn', [name]);
    return { lsn: r.rows[0]!.lsn };
  } catch (err) {
    const code = (err as { code?: string }).code;
    // 42501: insufficient_privilege; 55000: object_not_in_prerequisite_state (wal_level, recovery).
    if (code === '42501' || code === '55000') return { unable: `pg_create_restore_point refused: ${redactString(errorMessage(err))}` };
    throw err;
  }
}

interface BackupDecision { reason: string; destructive?: DestructiveChange[] }

/** A ConfigError when migrate.backupBefore may call for a backup this runner cannot take (checked before anything is written). */
export function checkBackupBefore(deps: Pick<SafetyPointDeps, 'backupBefore' | 'takeBackup'>): void {
  const mode = deps.backupBefore ?? 'never';
  if (mode === 'never' || deps.takeBackup) return;
  throw new ConfigError('invalid configuration', [`migrate.backupBefore is "${mode}", but no backup can be taken here: configure storage (--storage / PGOPS_STORAGE: s3://bucket/prefix or file:///absolute/path; the deployed migrate function uses the backup function, PGOPS_BACKUP_FUNCTION), or set migrate.backupBefore to "never"`]);
}

/** Whether a backup is due before applying `names`. */
async function decideBackup(deps: SafetyPointDeps, files: MigrationFile[], names: string[]): Promise<BackupDecision | undefined> {
  const mode = deps.backupBefore ?? 'never';
  if (mode === 'never') return undefined;
  checkBackupBefore(deps);
  if (mode === 'always') return { reason: 'migrate.backupBefore is "always"' };
  const byName = new Map(files.map((f) => [f.name, f]));
  const targets = names.flatMap((n) => { const f = byName.get(n); return f ? [{ path: f.path, file: f.file }] : []; });
  const destructive = await findDestructiveChanges(targets, deps.logger);
  if (destructive.length === 0) return undefined;
  const shown = destructive.slice(0, 5).map((d) => `${d.kind} ${d.target} (${d.file}:${d.line})`).join(', ');
  return { reason: `migrate.backupBefore is "destructive" and the pending migrations hold ${destructive.length} destructive change(s): ${shown}${destructive.length > 5 ? ', ...' : ''}`, destructive };
}

/** The full backup, or a SafetyPointError (nothing applied); a configuration problem or an interruption stays what it is. */
async function takeBackup(take: SafetyBackup, decision: BackupDecision, logger: Logger): Promise<string> {
  logger.info(`safety point: taking a full backup before applying (${decision.reason})`);
  try {
    const { id } = await take();
    logger.info(`safety point: backup ${id} taken`);
    return id;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    // The backup inside pages nobody (the runtime quiets it): the migrate job reports the interruption.
    if (err instanceof InterruptedError) throw new InterruptedError('migrate', err.signalName, { cause: err, exitCode: err.exitCode });
    const message = redactString(errorMessage(err));
    throw new SafetyPointError(`the backup before migrating failed, so nothing was applied: ${message} (fix the cause and run migrate up again; migrate.backupBefore "never" migrates without a backup)`, { cause: err });
  }
}

const shellWord = (s: string): string => (/^[A-Za-z0-9_.:/=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** The commands that replace the database's contents with the safety point's (run with the same connection and storage settings). */
export function goBackCommands(point: Pick<SafetyPoint, 'backupId' | 'restorePoint'>, pitr: boolean, deps: Pick<SafetyPointDeps, 'target' | 'databaseId'>): string[] {
  const db = shellWord(deps.target.database);
  const id = deps.databaseId !== deps.target.database ? ` --database-id ${shellWord(deps.databaseId)}` : '';
  const commands: string[] = [];
  if (point.backupId) commands.push(`pgops restore ${point.backupId} --target-db ${db} --clean${id}`);
  if (point.restorePoint?.lsn && pitr) commands.push(`pgops pitr --target-name ${shellWord(point.restorePoint.name)} --target-db ${db} --clean${id}`);
  return commands;
}

/** Before applying `names` (an up): the backup first when due, then the restore point, as close to the change as it gets. */
export async function recordSafetyPoint(client: pg.Client, deps: SafetyPointDeps, files: MigrationFile[], names: string[]): Promise<SafetyPoint> {
  const decision = await decideBackup(deps, files, names);
  const point: SafetyPoint = {};
  if (decision) {
    point.backupId = await takeBackup(deps.takeBackup!, decision, deps.logger);
    point.backupReason = decision.reason;
    if (decision.destructive) point.destructive = decision.destructive;
  }
  const ability = await restorePointAbility(client);
  const name = restorePointName((deps.clock ?? (() => new Date()))(), names[0]!);
  const made = ability.unable ? { unable: ability.unable } : await createRestorePoint(client, name);
  if (made.lsn) {
    point.restorePoint = { name, lsn: made.lsn };
    deps.logger.info(`safety point: restore point ${name} at ${made.lsn}`);
  } else {
    point.skipped = [`no restore point: ${made.unable}`];
    deps.logger.warn(`safety point: no restore point: ${made.unable}`);
  }
  const goBack = goBackCommands(point, ability.pitr, deps);
  if (goBack.length > 0) point.goBack = goBack;
  return point;
}

/** A dry run's safety point: what a real run would record and take; nothing is. */
export async function planSafetyPoint(client: pg.Client, deps: SafetyPointDeps, files: MigrationFile[], names: string[]): Promise<SafetyPoint> {
  const decision = await decideBackup(deps, files, names);
  const ability = await restorePointAbility(client);
  const point: SafetyPoint = { planned: true };
  if (ability.unable) point.skipped = [`no restore point: ${ability.unable}`];
  else point.restorePoint = { name: restorePointName((deps.clock ?? (() => new Date()))(), names[0]!) };
  if (decision) {
    point.backupReason = decision.reason;
    if (decision.destructive) point.destructive = decision.destructive;
  }
  return point;
}

/** One line for a failure message: what was recorded and the way back. */
export function describeSafetyPoint(point: SafetyPoint): string {
  const parts: string[] = [];
  if (point.backupId) parts.push(`backup ${point.backupId}`);
  if (point.restorePoint?.lsn) parts.push(`restore point ${point.restorePoint.name} (${point.restorePoint.lsn})`);
  if (parts.length === 0) return '';
  return `Safety point taken before this run: ${parts.join(', ')}.${point.goBack?.length ? ` To go back: ${point.goBack.join('  or  ')}` : ''}`;
}
