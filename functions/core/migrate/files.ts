// Migration files on disk: listing (in node-pg-migrate's own order), checksums, and loaders
// that node-pg-migrate's runner calls. The loaders add the checksum bookkeeping to every
// migration's own SQL, so the history row, the checksum row and the change commit together.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ColumnDefinitions, MigrationBuilder } from 'node-pg-migrate';
import { getMigrationFilePaths } from 'node-pg-migrate/migration';
import { MigrationError, errorMessage } from '../errors.ts';
import { quoteIdent } from '../db.ts';
import { checkUniqueVersions } from './rules.ts';
import { splitSqlStatements } from './sql-split.ts';

export const SUPPORTED_EXTENSIONS = ['.sql', '.js', '.mjs', '.cjs'];
// Ignore dotfiles and anything that is not a migration (a README beside the files, say).
export const IGNORE_PATTERN = '(\\..*|.*(?<!\\.(sql|js|mjs|cjs)))';

export interface MigrationFile {
  /** node-pg-migrate's name: the file name without extension. */
  name: string;
  file: string;
  path: string;
  checksum: string;
  /** A `.sql` file whose Up section holds no statement (a warning, not an error). */
  emptyUp?: boolean;
}

export function sha256(content: string | Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

export async function listMigrationFiles(dir: string): Promise<MigrationFile[]> {
  let paths: string[];
  try {
    paths = await getMigrationFilePaths(dir, { ignorePattern: IGNORE_PATTERN });
  } catch (err) {
    throw new MigrationError(`cannot read migrations directory ${dir}: ${errorMessage(err)}`, { cause: err });
  }
  const files = paths.filter((p) => SUPPORTED_EXTENSIONS.includes(extname(p).toLowerCase()));
  const seen = new Map<string, string>();
  const out: MigrationFile[] = [];
  for (const path of files) {
    const file = basename(path);
    const name = basename(path, extname(path));
    const other = seen.get(name);
    if (other) throw new MigrationError(`two migration files share the name ${name}: ${other} and ${file}`);
    seen.set(name, file);
    const content = readFileSync(path);
    const emptyUp = extname(path).toLowerCase() === '.sql' ? splitSqlStatements(parseSqlMigration(content.toString('utf8')).up).length === 0 : undefined;
    out.push({ name, file, path, checksum: sha256(content), ...(emptyUp ? { emptyUp } : {}) });
  }
  // Refused before anything runs, whatever the command.
  checkUniqueVersions(out);
  return out;
}

const NO_TRANSACTION = /^\s*--\s*pgops:no-transaction\s*$/im;
const UP = /^\s*--[\s-]*up\s+migration/im;
const DOWN = /^\s*--[\s-]*down\s+migration/im;

export interface ParsedSql {
  up: string;
  down?: string;
  noTransaction: boolean;
}

/** The `.sql` format of node-pg-migrate (`-- Up Migration` / `-- Down Migration`), plus pgops' marker. */
export function parseSqlMigration(content: string): ParsedSql {
  const upAt = content.search(UP);
  const downAt = content.search(DOWN);
  const up = upAt >= 0 ? content.slice(upAt, downAt > upAt ? downAt : undefined) : content.slice(0, downAt >= 0 ? downAt : undefined);
  const down = downAt >= 0 ? content.slice(downAt, upAt > downAt ? upAt : undefined) : undefined;
  return { up, down, noTransaction: NO_TRANSACTION.test(content) };
}

type Action = (pgm: MigrationBuilder) => void | Promise<void>;
type CallbackAction = (pgm: MigrationBuilder, done: () => void) => void;
interface Actions {
  up?: Action | CallbackAction | false;
  down?: Action | CallbackAction | false;
  shorthands?: ColumnDefinitions;
}

export { historyTables, type HistoryTables } from './history.ts';
import type { HistoryTables } from './history.ts';

function literal(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

export function checksumInsertSql(t: HistoryTables, name: string, checksum: string): string {
  return `INSERT INTO ${quoteIdent(t.schema)}.${quoteIdent(t.checksums)} (name, sha256) VALUES (${literal(name)}, ${literal(checksum)}) ON CONFLICT (name) DO UPDATE SET sha256 = EXCLUDED.sha256, recorded_at = now();`;
}

export function checksumDeleteSql(t: HistoryTables, name: string): string {
  return `DELETE FROM ${quoteIdent(t.schema)}.${quoteIdent(t.checksums)} WHERE name = ${literal(name)};`;
}

async function call(action: Action | CallbackAction, pgm: MigrationBuilder): Promise<void> {
  if (action.length === 2) {
    // A callback-style action may still return a promise: its rejection is the failure.
    await new Promise<void>((resolve, reject) => { Promise.resolve(action(pgm, resolve)).catch(reject); });
  } else {
    await (action as Action)(pgm);
  }
}

async function loadActions(path: string, checksum: string): Promise<{ actions: Actions; noTransaction: boolean }> {
  const ext = extname(path).toLowerCase();
  if (ext === '.sql') {
    const parsed = parseSqlMigration(readFileSync(path, 'utf8'));
    const runSql = (sql: string) => (pgm: MigrationBuilder) => {
      if (parsed.noTransaction) {
        pgm.noTransaction();
        for (const stmt of splitSqlStatements(sql)) pgm.sql(stmt);
      } else {
        pgm.sql(sql);
      }
    };
    return {
      actions: { up: runSql(parsed.up), down: parsed.down === undefined ? false : runSql(parsed.down) },
      noTransaction: parsed.noTransaction,
    };
  }
  // Native import works inside a bundled Lambda too (node-pg-migrate's default loader uses jiti).
  // The query string makes an edited file load afresh within one process.
  let mod: Actions & { default?: Actions };
  try {
    mod = (await import(`${pathToFileURL(path).href}?sha256=${checksum}`)) as Actions & { default?: Actions };
  } catch (err) {
    throw new MigrationError(`migration ${basename(path)} could not be loaded: ${errorMessage(err)}`, { cause: err });
  }
  const actions: Actions = typeof mod.up === 'function' || mod.up === false ? mod : (mod.default ?? mod);
  return { actions, noTransaction: false };
}

/** Records which migration the runner is executing, so a failure can be named by its file. */
export interface ProgressTracker {
  current?: { name: string; file: string; direction: 'up' | 'down'; noTransaction: boolean };
}

/** A node-pg-migrate loader for one file type set, wrapping every action with the checksum bookkeeping. */
export function createPgopsLoader(tables: HistoryTables, tracker: ProgressTracker) {
  return async (filePaths: string[]): Promise<Array<{ id: string; filePaths: string[]; actions: { up: Action; down: Action | false; shorthands: ColumnDefinitions } }>> => {
    const units: Array<{ id: string; filePaths: string[]; actions: { up: Action; down: Action | false; shorthands: ColumnDefinitions } }> = [];
    for (const path of filePaths) {
      const file = basename(path);
      const name = basename(path, extname(path));
      const checksum = sha256(readFileSync(path));
      const { actions, noTransaction } = await loadActions(path, checksum);
      const { up, down } = actions;
      if (typeof up !== 'function') throw new MigrationError(`migration ${file} has no up migration (export an "up" function, or use an "-- Up Migration" section)`);
      const wrappedUp: Action = async (pgm) => {
        tracker.current = { name, file, direction: 'up', noTransaction };
        await call(up, pgm);
        pgm.sql(checksumInsertSql(tables, name, checksum));
      };
      let wrappedDown: Action | false;
      if (down === false) {
        wrappedDown = false;
      } else if (typeof down === 'function') {
        wrappedDown = async (pgm) => {
          tracker.current = { name, file, direction: 'down', noTransaction };
          await call(down, pgm);
          pgm.sql(checksumDeleteSql(tables, name));
        };
      } else {
        // node-pg-migrate infers a down from a reversible up; keep that, plus our bookkeeping.
        wrappedDown = async (pgm) => {
          tracker.current = { name, file, direction: 'down', noTransaction };
          pgm.sql(checksumDeleteSql(tables, name));
          pgm.enableReverseMode();
          await call(up, pgm);
        };
      }
      units.push({ id: path, filePaths: [path], actions: { up: wrappedUp, down: wrappedDown, shorthands: actions.shorthands ?? {} } });
    }
    return units;
  };
}

/** The SQL a migration would run, for --dry-run. Nothing touches the database. */
export async function renderMigrationSql(file: MigrationFile, direction: 'up' | 'down', builderFactory: () => MigrationBuilder): Promise<string> {
  const { actions } = await loadActions(file.path, file.checksum);
  let action = actions[direction];
  const pgm = builderFactory();
  if (direction === 'down' && action === undefined && typeof actions.up === 'function') {
    pgm.enableReverseMode();
    action = actions.up;
  }
  if (action === false || action === undefined) throw new MigrationError(`migration ${file.file} has no ${direction} migration`);
  await call(action, pgm);
  return pgm.getSqlSteps().join('\n');
}
