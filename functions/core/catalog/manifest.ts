// The manifest of a logical backup (DESIGN.md "Backups and storage layout"): its zod schema is the
// one definition, and the TypeScript types are derived from it, so reader and writer cannot drift.
// Fields may be added, never renamed; unknown fields are kept (a newer pgops may add some).
import { z } from 'zod';

export const BACKUP_FORMATS = ['custom', 'directory-tar'] as const;

export const tableCountSchema = z.object({
  schema: z.string(),
  name: z.string(),
  /** Exact count(*) in the dump's snapshot; null for a schema-only backup. */
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
});

export const manifestSchema = z.looseObject({
  id: z.string(),
  database: z.string(),
  /** The PostgreSQL database that was dumped (the database id may differ); absent in early manifests. */
  sourceDatabase: z.string().optional(),
  kind: z.literal('logical'),
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

/** Validate a manifest's JSON text: the manifest, or why it is not one (never throws). */
export function parseManifest(text: string): { manifest: BackupManifest } | { problem: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { problem: `not valid JSON (${err instanceof Error ? err.message : String(err)})` };
  }
  const parsed = manifestSchema.safeParse(json);
  if (parsed.success) return { manifest: parsed.data };
  return { problem: parsed.error.issues.slice(0, 5).map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`).join('; ') };
}
