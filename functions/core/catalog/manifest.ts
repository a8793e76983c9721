// The manifest of a logical backup (DESIGN.md "Backups and storage layout"): its zod schema is the
// one definition, and the TypeScript types are derived from it, so reader and writer cannot drift.
// Fields may be added, never renamed; unknown fields are kept (a newer pgops may add some).
import * as z from 'zod';

export const BACKUP_FORMATS = ['custom', 'directory-tar'] as const;

/** What a backup holds (DESIGN.md): only `full` is a backup of the whole database. */
export const BACKUP_CONTENTS = ['full', 'schema-only', 'data-only', 'partial'] as const;
export type BackupContent = (typeof BACKUP_CONTENTS)[number];

/** Written by pgops before manifests said what they hold: the content follows from `options`. */
export const LEGACY_KIND = 'logical';

/** The manifest format this pgops reads; a manifest without `formatVersion` is format 1. */
export const MANIFEST_FORMAT_VERSION = 1;

export const tableCountSchema = z.object({
  schema: z.string(),
  name: z.string(),
  /** count(*) in the dump's snapshot (or the planner's estimate, options.rowCounts); null for a schema-only backup or an unknown estimate. */
  rows: z.number().int().nonnegative().nullable(),
});

/** The options a backup ran with, as normalizeBackupOptions fills them in. */
export const backupOptionsSchema = z.looseObject({
  schemaOnly: z.boolean(),
  dataOnly: z.boolean(),
  /** pg_dump -t patterns. */
  tables: z.array(z.string()),
  /** pg_dump -T patterns. */
  excludeTables: z.array(z.string()),
  jobs: z.number().int().positive(),
  /** pg_dump's compression (gzip:N, lz4, zstd:N, none); absent in manifests before it was chosen: pg_dump's default gzip:6. */
  compression: z.string().optional(),
  /** How `tables[].rows` was taken; absent: exact. */
  rowCounts: z.enum(['exact', 'estimate']).optional(),
});

export const manifestSchema = z.looseObject({
  id: z.string(),
  database: z.string(),
  /** The PostgreSQL database that was dumped (the database id may differ); absent in early manifests. */
  sourceDatabase: z.string().optional(),
  /** What the backup holds; `logical` in manifests written before kinds existed. */
  kind: z.enum([...BACKUP_CONTENTS, LEGACY_KIND]),
  formatVersion: z.literal(MANIFEST_FORMAT_VERSION).optional(),
  format: z.enum(BACKUP_FORMATS),
  startedAt: z.iso.datetime({ offset: true }),
  completedAt: z.iso.datetime({ offset: true }),
  durationMs: z.number().nonnegative(),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  serverVersion: z.string(),
  pgDumpVersion: z.string(),
  options: backupOptionsSchema,
  /** Last applied migration, null when the database has no migration history. */
  migration: z.string().nullable(),
  /** Storage key of the dump, relative to the storage root. */
  key: z.string(),
  tables: z.array(tableCountSchema).default([]),
});

export type BackupManifest = z.infer<typeof manifestSchema>;
export type BackupFormat = BackupManifest['format'];
export type TableCount = z.infer<typeof tableCountSchema>;
export type NormalizedBackupOptions = z.infer<typeof backupOptionsSchema>;
export type RowCounts = 'exact' | 'estimate';

/** The kind a new manifest records for a backup run with these options: anything filtered is not the whole database. */
export function contentOfOptions(options: NormalizedBackupOptions): BackupContent {
  if (options.schemaOnly) return 'schema-only';
  if (options.dataOnly) return 'data-only';
  if (options.tables.length > 0 || options.excludeTables.length > 0) return 'partial';
  return 'full';
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A manifest this pgops cannot read because a newer one wrote it: said so, rather than "invalid field". */
function newerFormatProblem(json: unknown): string | undefined {
  if (!isRecord(json)) return undefined;
  const upgrade = 'written by a newer pgops: upgrade pgops to read it';
  const { formatVersion, kind } = json;
  if (formatVersion !== undefined && formatVersion !== MANIFEST_FORMAT_VERSION) {
    return `formatVersion ${JSON.stringify(formatVersion)} (this pgops reads ${MANIFEST_FORMAT_VERSION}): ${upgrade}`;
  }
  if (typeof kind === 'string' && !(BACKUP_CONTENTS as readonly string[]).includes(kind) && kind !== LEGACY_KIND) {
    return `kind ${JSON.stringify(kind.slice(0, 40))} is unknown (this pgops knows ${BACKUP_CONTENTS.join(', ')}): ${upgrade}`;
  }
  return undefined;
}

/** Validate a manifest's JSON text: the manifest, or why it is not one (never throws). */
export function parseManifest(text: string): { manifest: BackupManifest } | { problem: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { problem: `not valid JSON (${err instanceof Error ? err.message : String(err)})` };
  }
  const newer = newerFormatProblem(json);
  if (newer !== undefined) return { problem: newer };
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    return { problem: parsed.error.issues.slice(0, 5).map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`).join('; ') };
  }
  const m = parsed.data;
  // A kind that contradicts the options (a hand edit) must not let a partial backup pass as full.
  if (m.kind !== LEGACY_KIND && m.kind !== contentOfOptions(m.options)) {
    return { problem: `kind "${m.kind}" contradicts its options, which make it ${contentOfOptions(m.options)}` };
  }
  return { manifest: m };
}
