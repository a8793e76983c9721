// Rules on the set of migration files that node-pg-migrate checks only once it runs, or never:
// unique version prefixes, file order against the applied history, and empty migrations.
// Every command checks them the same way, so a dry run or `validate` is as strict as `up`.
import { MigrationError } from '../errors.ts';

/** What the rules read of a migration file (files.ts `MigrationFile`; declared here so files.ts can use the rules). */
export interface MigrationFile {
  name: string;
  file: string;
  emptyUp?: boolean;
}

/** A pending migration sorts before applied ones, or two files share a version. */
export class MigrationOrderError extends MigrationError {}

/** A file sorting before an applied migration, which `up` would have to run out of order. */
export interface OutOfOrderMigration {
  name: string;
  file: string;
  /** The last applied migration it sorts before. */
  sortsBefore: string;
}

const VERSION = /^(\d+)(?=[_.-]|$)/;

/** The numeric version prefix of a file (`002` of `002_users.sql`), compared as a number. */
function versionOf(file: MigrationFile): { text: string; value: bigint } | undefined {
  const m = VERSION.exec(file.name);
  return m ? { text: m[1]!, value: BigInt(m[1]!) } : undefined;
}

/** Refuse two files with one version (`002_a.sql`, `002_b.sql`): their order would be an accident of their names. */
export function checkUniqueVersions(files: MigrationFile[]): void {
  const byVersion = new Map<bigint, MigrationFile>();
  const clashes: Array<{ first: MigrationFile; second: MigrationFile; version: string }> = [];
  for (const f of files) {
    const v = versionOf(f);
    if (!v) continue;
    const first = byVersion.get(v.value);
    if (first) clashes.push({ first, second: f, version: v.text });
    else byVersion.set(v.value, f);
  }
  if (clashes.length === 0) return;
  const each = clashes.map((c) => `${c.first.file} and ${c.second.file} share the version ${c.version}`);
  throw new MigrationOrderError(`migration files must have unique version prefixes: ${each.join('; ')} (rename one to a free version, e.g. ${suggestName(clashes[0]!.second, files)})`);
}

/** `file` renamed to the version after the highest one in the directory, same width (`004_b.sql`). */
export function suggestName(file: MigrationFile, files: MigrationFile[]): string {
  const own = versionOf(file);
  const highest = files.reduce((max, f) => { const v = versionOf(f)?.value; return v !== undefined && v > max ? v : max; }, 0n);
  if (!own) return `${String(highest + 1n).padStart(3, '0')}_${file.file}`;
  return `${String(highest + 1n).padStart(own.text.length, '0')}${file.file.slice(own.text.length)}`;
}

/**
 * node-pg-migrate's own rule (checkOrder): the applied migrations, in the order they ran, must be the
 * first files in file order. Returns the pending files that break it, each with the applied one it precedes.
 */
export function findOutOfOrder(files: MigrationFile[], appliedNames: string[]): OutOfOrderMigration[] {
  const position = new Map(files.map((f, i) => [f.name, i]));
  const applied = new Set(appliedNames);
  const lastAppliedAt = Math.max(-1, ...appliedNames.map((n) => position.get(n) ?? -1));
  if (lastAppliedAt < 0) return [];
  const lastApplied = files[lastAppliedAt]!.name;
  return files.slice(0, lastAppliedAt).filter((f) => !applied.has(f.name)).map((f) => ({ name: f.name, file: f.file, sortsBefore: lastApplied }));
}

/** Applied migrations whose run order differs from their file order (a history written by hand or another tool). */
function historyOrderMismatch(files: MigrationFile[], appliedNames: string[]): string | undefined {
  const present = new Set(files.map((f) => f.name));
  const ranInFileOrder = files.map((f) => f.name).filter((n) => appliedNames.includes(n));
  const ran = appliedNames.filter((n) => present.has(n));
  const at = ran.findIndex((n, i) => n !== ranInFileOrder[i]);
  return at < 0 ? undefined : `${ran[at]} ran before ${ranInFileOrder[at]}, but sorts after it`;
}

/** The one refusal every command gives (status reports the same findings without failing). */
export function orderError(files: MigrationFile[], appliedNames: string[]): MigrationOrderError | undefined {
  const found = findOutOfOrder(files, appliedNames);
  if (found.length > 0) {
    const each = found.map((m) => `${m.file} sorts before ${m.sortsBefore}, which is already applied: rename it to sort after ${m.sortsBefore} (e.g. ${suggestName(files.find((f) => f.name === m.name)!, files)})`);
    return new MigrationOrderError(`pending migration${found.length > 1 ? 's' : ''} out of order: ${each.join('; ')}. pgops applies migrations in file order only and refuses to run one out of order (as Flyway does by default)`);
  }
  const mismatch = historyOrderMismatch(files, appliedNames);
  if (mismatch) return new MigrationOrderError(`the migration history does not follow the file order: ${mismatch}. Rename the files so they sort in the order they ran`);
  return undefined;
}

/** A warning per pending migration that would run no SQL (`.sql` files with an empty Up section). */
export function emptyMigrationWarnings(files: MigrationFile[], pendingNames: string[]): string[] {
  const pending = new Set(pendingNames);
  return files.filter((f) => f.emptyUp === true && pending.has(f.name)).map((f) => `migration ${f.file} has no SQL in its Up section: it would be recorded as applied without changing anything`);
}
