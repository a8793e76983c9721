// Which statements of a migration destroy or move existing data: drops, renames, type changes,
// truncation. Independent of ignore comments and of `migrate.lint` (an acknowledged drop still drops),
// for `migrate.backupBefore: "destructive"`.
import type { DropStmt, RenameStmt, TruncateStmt } from 'libpg-query';
import { as, commandsOf, droppedRelations, kindOf, relationName, relationOf, stringsOf } from './ast.ts';
import type { RelationRef, Statement } from './types.ts';

export type DestructiveKind =
  | 'drop-table' | 'drop-column' | 'drop-schema' | 'drop-database'
  | 'rename-table' | 'rename-column' | 'type-change' | 'truncate'
  /** The SQL could not be known (it does not parse, or a .js migration queries the database to build it). */
  | 'unknown';

export interface DestructiveChange {
  file: string;
  line: number;
  kind: DestructiveKind;
  /** What it touches (`orders`, `orders.total`), or why it is unknown. */
  target: string;
}

/** The destructive changes of one statement; a table created earlier in the same migration holds no data yet. */
export function destructiveChangesOf(stmt: Statement, isNewTable: (ref: RelationRef) => boolean): Array<{ kind: DestructiveKind; target: string }> {
  const old = (ref: RelationRef | undefined): ref is RelationRef => ref !== undefined && !isNewTable(ref);
  switch (kindOf(stmt.node)) {
    case 'DropStmt': return drops(as<DropStmt>(stmt.node, 'DropStmt')!, old);
    case 'DropdbStmt': return [{ kind: 'drop-database', target: as<{ dbname?: string }>(stmt.node, 'DropdbStmt')?.dbname ?? '' }];
    case 'TruncateStmt': {
      const tables = (as<TruncateStmt>(stmt.node, 'TruncateStmt')!.relations ?? []).map((r) => relationOf(as(r, 'RangeVar'))).filter(old);
      return tables.map((t) => ({ kind: 'truncate', target: relationName(t) }));
    }
    case 'RenameStmt': return renames(as<RenameStmt>(stmt.node, 'RenameStmt')!, old);
    case 'AlterTableStmt': return [
      ...commandsOf(stmt, 'AT_DropColumn').filter(({ table }) => old(table)).map(({ table, cmd }) => ({ kind: 'drop-column' as const, target: `${relationName(table)}.${cmd.name ?? ''}` })),
      ...commandsOf(stmt, 'AT_AlterColumnType').filter(({ table }) => old(table)).map(({ table, cmd }) => ({ kind: 'type-change' as const, target: `${relationName(table)}.${cmd.name ?? ''}` })),
    ];
    default: return [];
  }
}

function drops(drop: DropStmt, old: (ref: RelationRef | undefined) => ref is RelationRef): Array<{ kind: DestructiveKind; target: string }> {
  if (drop.removeType === 'OBJECT_TABLE') return droppedRelations(drop).filter(old).map((t) => ({ kind: 'drop-table', target: relationName(t) }));
  // A schema is named by a bare String, not a qualified List.
  if (drop.removeType === 'OBJECT_SCHEMA') return stringsOf(drop.objects).map((name) => ({ kind: 'drop-schema', target: name }));
  return [];
}

function renames(rename: RenameStmt, old: (ref: RelationRef | undefined) => ref is RelationRef): Array<{ kind: DestructiveKind; target: string }> {
  const table = relationOf(rename.relation);
  if (!old(table)) return [];
  if (rename.renameType === 'OBJECT_TABLE') return [{ kind: 'rename-table', target: relationName(table) }];
  if (rename.renameType === 'OBJECT_COLUMN' && rename.relationType === 'OBJECT_TABLE') return [{ kind: 'rename-column', target: `${relationName(table)}.${rename.subname ?? ''}` }];
  return [];
}
