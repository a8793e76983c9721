// Reading libpg-query's parse tree: node kinds, relation names, column types and constraints,
// so that rules say what they look for and not how the tree spells it.
import type {
  AlterTableCmd, AlterTableStmt, ColumnDef, Constraint, DropStmt, Node, RangeVar, TypeName,
} from 'libpg-query';
import type { RelationRef, Statement } from './types.ts';

/** The node's kind (`IndexStmt`) and its body. */
export function kindOf(node: Node | undefined): string | undefined {
  return node ? Object.keys(node)[0] : undefined;
}

/** The body of `node` when it is of `kind`. */
export function as<T>(node: Node | undefined, kind: string): T | undefined {
  if (!node || kindOf(node) !== kind) return undefined;
  return (node as Record<string, unknown>)[kind] as T;
}

export function relationOf(rv: RangeVar | undefined): RelationRef | undefined {
  if (!rv?.relname) return undefined;
  return rv.schemaname ? { schema: rv.schemaname, name: rv.relname } : { name: rv.relname };
}

/** `schema.name` or `name`, as a person writes it. */
export function relationName(ref: RelationRef): string {
  return ref.schema ? `${ref.schema}.${ref.name}` : ref.name;
}

/** One key for a relation, whether or not the statement spelled out the default schema. */
export function relationKey(ref: RelationRef): string {
  return `${ref.schema ?? 'public'}.${ref.name}`;
}

export function stringsOf(nodes: Node[] | undefined): string[] {
  return (nodes ?? []).flatMap((n) => {
    const s = as<{ sval?: string }>(n, 'String');
    return s?.sval !== undefined ? [s.sval] : [];
  });
}

/** The objects of a DROP (each a qualified name). */
export function droppedRelations(drop: DropStmt): RelationRef[] {
  return (drop.objects ?? []).flatMap((o) => {
    const names = stringsOf(as<{ items?: Node[] }>(o, 'List')?.items);
    if (names.length === 0) return [];
    const name = names.at(-1)!;
    return names.length > 1 ? [{ schema: names.at(-2)!, name }] : [{ name }];
  });
}

/** The ALTER TABLE commands of a statement, with the table they alter (ALTER TABLE only, not ALTER INDEX). */
export function alterTableCommands(stmt: Statement): { table: RelationRef; cmds: AlterTableCmd[] } | undefined {
  const alter = as<AlterTableStmt>(stmt.node, 'AlterTableStmt');
  const table = relationOf(alter?.relation);
  if (!alter || !table || (alter.objtype !== undefined && alter.objtype !== 'OBJECT_TABLE')) return undefined;
  const cmds = (alter.cmds ?? []).flatMap((c) => { const cmd = as<AlterTableCmd>(c, 'AlterTableCmd'); return cmd ? [cmd] : []; });
  return { table, cmds };
}

/** The commands of one subtype (`AT_AddColumn`), each with its table. */
export function commandsOf(stmt: Statement, subtype: string): Array<{ table: RelationRef; cmd: AlterTableCmd }> {
  const alter = alterTableCommands(stmt);
  if (!alter) return [];
  return alter.cmds.filter((c) => c.subtype === subtype).map((cmd) => ({ table: alter.table, cmd }));
}

/** Columns added by ALTER TABLE ... ADD COLUMN, each with its table. */
export function addedColumns(stmt: Statement): Array<{ table: RelationRef; column: ColumnDef }> {
  return commandsOf(stmt, 'AT_AddColumn').flatMap(({ table, cmd }) => {
    const column = as<ColumnDef>(cmd.def, 'ColumnDef');
    return column ? [{ table, column }] : [];
  });
}

/** Constraints added by ALTER TABLE ... ADD CONSTRAINT, each with its table. */
export function addedConstraints(stmt: Statement): Array<{ table: RelationRef; constraint: Constraint }> {
  return commandsOf(stmt, 'AT_AddConstraint').flatMap(({ table, cmd }) => {
    const constraint = as<Constraint>(cmd.def, 'Constraint');
    return constraint ? [{ table, constraint }] : [];
  });
}

export function columnConstraints(column: ColumnDef): Constraint[] {
  return (column.constraints ?? []).flatMap((c) => { const con = as<Constraint>(c, 'Constraint'); return con ? [con] : []; });
}

export function hasConstraint(column: ColumnDef, contype: string): boolean {
  return columnConstraints(column).some((c) => c.contype === contype);
}

/** Every column definition a statement declares: CREATE TABLE's and ALTER TABLE ... ADD COLUMN's. */
export function declaredColumns(stmt: Statement): Array<{ table: RelationRef; column: ColumnDef; inCreate: boolean }> {
  const create = as<{ relation?: RangeVar; tableElts?: Node[] }>(stmt.node, 'CreateStmt');
  const table = relationOf(create?.relation);
  if (create && table) {
    return (create.tableElts ?? []).flatMap((e) => {
      const column = as<ColumnDef>(e, 'ColumnDef');
      return column ? [{ table, column, inCreate: true }] : [];
    });
  }
  return addedColumns(stmt).map((c) => ({ ...c, inCreate: false }));
}

/** Column names a CREATE TABLE lists in a table-level PRIMARY KEY (...). */
export function tablePrimaryKeyColumns(stmt: Statement): Set<string> {
  const create = as<{ tableElts?: Node[] }>(stmt.node, 'CreateStmt');
  const keys = new Set<string>();
  for (const e of create?.tableElts ?? []) {
    const con = as<Constraint>(e, 'Constraint');
    if (con?.contype === 'CONSTR_PRIMARY') for (const k of stringsOf(con.keys)) keys.add(k);
  }
  return keys;
}

/** A type's own name, without pg_catalog (`int4`, `varchar`, `serial`, `timestamptz`). */
export function typeNameOf(t: TypeName | undefined): string | undefined {
  return stringsOf(t?.names).at(-1)?.toLowerCase();
}

/** How a person writes the type (`varchar(50)`, `int4`). */
export function typeDisplay(t: TypeName | undefined): string {
  const name = typeNameOf(t) ?? 'unknown';
  const mods = (t?.typmods ?? []).map((m) => as<{ ival?: { ival?: number } }>(m, 'A_Const')?.ival?.ival).filter((v) => v !== undefined);
  return mods.length > 0 ? `${name}(${mods.join(',')})` : name;
}

/** Every node of a tree, depth first, with the key it hangs from. Strings (function bodies) are leaves. */
export function* walk(value: unknown, key = ''): Generator<{ key: string; value: unknown }> {
  yield { key, value };
  if (Array.isArray(value)) {
    for (const item of value) yield* walk(item, key);
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) yield* walk(v, k);
  }
}

/** Function names called anywhere in a tree (the last part of a qualified name). */
export function calledFunctions(node: unknown): string[] {
  const out: string[] = [];
  for (const { key, value } of walk(node)) {
    if (key === 'FuncCall') {
      const name = stringsOf((value as { funcname?: Node[] }).funcname).at(-1);
      if (name) out.push(name.toLowerCase());
    }
  }
  return out;
}

/** ` name` for a message, or nothing when the statement left it to PostgreSQL. */
export function named(name: string | undefined): string {
  return name ? ` ${name}` : '';
}
