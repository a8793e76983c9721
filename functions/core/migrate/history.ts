// The names of the migration history tables; kept apart from files.ts so that jobs needing only
// the names do not load node-pg-migrate.

export interface HistoryTables {
  schema: string;
  /** node-pg-migrate's table. */
  table: string;
  /** pgops' checksum table beside it. */
  checksums: string;
}

export function historyTables(schema: string, table: string): HistoryTables {
  return { schema, table, checksums: `${table}_checksums` };
}
