// The state of one managed PITR run: a small JSON document, with no secret in it, that each step
// takes and returns (plan -> start restore -> wait -> produce output -> delete). The CLI runs the
// steps in one process; a state machine can run each alone, passing the document along.
import * as z from 'zod';
import { identifier, rdsIdentifier } from '../../config.ts';

const isoTime = z.string().refine((s) => !Number.isNaN(Date.parse(s)) && /(Z|[+-]\d{2}:\d{2})$/.test(s), 'must be an ISO 8601 time with a zone');
const plainName = identifier;

export const PHASES = ['planned', 'restoring', 'available', 'output-produced', 'deleted', 'kept'] as const;
export type Phase = (typeof PHASES)[number];

export const managedPitrStateSchema = z.strictObject({
  version: z.literal(1),
  /** Random; the copy's pgops:run tag: a retried step adopts its own copy and deletes nothing else. */
  runId: z.string().regex(/^[a-z0-9]{8,32}$/),
  environment: z.string().min(1).max(64),
  source: z.strictObject({ kind: z.enum(['instance', 'cluster']), id: rdsIdentifier }),
  target: z.discriminatedUnion('type', [
    z.strictObject({ type: z.literal('time'), value: isoTime }),
    z.strictObject({ type: z.literal('latest') }),
  ]),
  /** The source's restore window when planned. */
  window: z.strictObject({ earliest: isoTime.nullable(), latest: isoTime.nullable() }),
  /** The copy, as the restore call creates it. */
  restored: z.strictObject({
    instance: rdsIdentifier,
    /** Aurora: the restored cluster (its one instance is `instance`). */
    cluster: rdsIdentifier.optional(),
    instanceClass: z.string().min(1),
    engine: z.string().min(1),
    subnetGroup: z.string().min(1),
    securityGroups: z.array(z.string().min(1)).min(1),
    parameterGroup: z.string().min(1).optional(),
    clusterParameterGroup: z.string().min(1).optional(),
    serverlessV2: z.strictObject({ minCapacity: z.number(), maxCapacity: z.number() }).optional(),
    /** The source's master user: the one whose password a restored copy can be given. */
    masterUsername: z.string().min(1).optional(),
    expires: isoTime,
    tags: z.record(z.string(), z.string()),
  }),
  output: z.discriminatedUnion('kind', [
    z.strictObject({ kind: z.literal('target-db'), database: plainName, create: z.boolean(), clean: z.boolean(), tables: z.array(z.string().min(1)), sourceDb: plainName.optional() }),
    z.strictObject({ kind: z.literal('export'), sourceDb: plainName.optional() }),
  ]),
  keep: z.boolean(),
  phase: z.enum(PHASES),
  plannedAt: isoTime,
  /** When the restore call was accepted. */
  restoreStartedAt: isoTime.optional(),
  /** The copy's endpoint once available (a host name and port: no credentials). */
  endpoint: z.strictObject({ host: z.string().min(1), port: z.number().int().positive() }).optional(),
  /** The copy's master password was set to the source's current one (it held the one of its restore time). */
  passwordReset: z.boolean().optional(),
  /** What the output step produced (pitr/outputs.ts OutputResult). */
  result: z.record(z.string(), z.unknown()).optional(),
});

export type ManagedPitrState = z.infer<typeof managedPitrStateSchema>;

/** A state from outside (a state machine's input): validated, every bad field named. */
export function parseManagedPitrState(raw: unknown): { state?: ManagedPitrState; issues: string[] } {
  const r = managedPitrStateSchema.safeParse(raw);
  if (r.success) return { state: r.data, issues: [] };
  return { issues: r.error.issues.map((i) => `state.${i.path.map(String).join('.')}: ${i.message}`) };
}

/** The copy's resource names in messages: "instance X" or "cluster X (instance Y)". */
export function describeCopy(state: Pick<ManagedPitrState, 'restored'>): string {
  const r = state.restored;
  return r.cluster ? `Aurora cluster ${r.cluster} (instance ${r.instance})` : `instance ${r.instance}`;
}
