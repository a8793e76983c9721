// The restore-test record that `backups verify --restore-test` writes beside a backup
// (layout.ts backupKeys().restoreTest): what the catalog accepts as proof that a backup restored.
import * as z from 'zod';

/** Read leniently: `ok` and `checkedAt` decide; the other fields verify writes are kept as they are. */
export const restoreTestSchema = z.looseObject({
  ok: z.boolean(),
  checkedAt: z.iso.datetime({ offset: true }),
  error: z.string().optional(),
  /** Older or hand-written records name the failure in one of these instead. */
  message: z.string().optional(),
  reason: z.string().optional(),
});

export interface RestoreTestRecord {
  backupId: string;
  ok: boolean;
  checkedAt: Date;
  /** Why the restore test failed, as recorded (not yet redacted or shortened). */
  error?: string;
}

/** A record's JSON text -> the record, or undefined when it proves nothing either way. */
export function parseRestoreTest(backupId: string, text: string): RestoreTestRecord | undefined {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  const parsed = restoreTestSchema.safeParse(json);
  if (!parsed.success) return undefined;
  const { ok, checkedAt, error, message, reason } = parsed.data;
  const why = error ?? message ?? reason;
  return { backupId, ok, checkedAt: new Date(checkedAt), ...(why !== undefined ? { error: why } : {}) };
}
