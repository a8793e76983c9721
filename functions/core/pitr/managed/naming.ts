// What a restored PITR copy is called and how it is tagged: the name says what it is
// (pgops-pitr-<source>-<yyyymmddhhmm> of the restore time, within RDS's identifier rules), and the
// tags are the contract cleanup relies on: nothing without both pgops:purpose=pitr and pgops:expires is ever deleted.
import type { Tag } from '@aws-sdk/client-rds';

export const PITR_TAG = {
  purpose: 'pgops:purpose',
  expires: 'pgops:expires',
  source: 'pgops:source',
  /** The run that created it: a retried start adopts its own copy, never another run's. */
  run: 'pgops:run',
  target: 'pgops:target',
  environment: 'pgops:environment',
} as const;

export const PITR_PURPOSE = 'pitr';

const PREFIX = 'pgops-pitr-';
const MAX_IDENTIFIER = 63;
/** RDS identifiers: a letter first, letters, digits and hyphens, no "--", no trailing "-", at most 63. */
const RDS_IDENTIFIER = /^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){0,62}$/;

export function isRdsIdentifier(s: string): boolean {
  return RDS_IDENTIFIER.test(s);
}

const pad = (n: number) => String(n).padStart(2, '0');

/** 202612011401: the minute of `at`, in UTC. */
export function minuteStamp(at: Date): string {
  return `${at.getUTCFullYear()}${pad(at.getUTCMonth() + 1)}${pad(at.getUTCDate())}${pad(at.getUTCHours())}${pad(at.getUTCMinutes())}`;
}

/**
 * `pgops-pitr-<source>-<yyyymmddhhmm>`, lower case: the source shortened (and its trailing hyphens
 * dropped) so the whole, plus `reserve` characters a caller appends (Aurora's instance: "-1"),
 * stays within 63 characters and RDS's rules.
 */
export function restoredIdentifier(source: string, at: Date, reserve = 0): string {
  const tail = `-${minuteStamp(at)}`;
  const room = MAX_IDENTIFIER - reserve - PREFIX.length - tail.length;
  const cleaned = source.toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/-{2,}/g, '-');
  const short = cleaned.slice(0, room).replace(/^-+|-+$/g, '');
  return `${PREFIX}${short || 'db'}${tail}`;
}

export interface PitrTagValues {
  source: string;
  expires: Date;
  runId: string;
  /** ISO time, or "latest". */
  target: string;
  environment: string;
}

/** RDS tag values allow letters, digits, spaces and _.:/=+-@ only: anything else becomes "-". */
export const tagValue = (s: string) => s.replace(/[^\p{L}\p{N}\s_.:/=+\-@]/gu, '-').slice(0, 256);

/** An ISO time to the second, as the expiry tag carries it. */
export const isoSecond = (d: Date): string => `${d.toISOString().slice(0, 19)}Z`;

export function pitrTags(v: PitrTagValues): Tag[] {
  return [
    { Key: PITR_TAG.purpose, Value: PITR_PURPOSE },
    { Key: PITR_TAG.expires, Value: isoSecond(v.expires) },
    { Key: PITR_TAG.source, Value: tagValue(v.source) },
    { Key: PITR_TAG.run, Value: tagValue(v.runId) },
    { Key: PITR_TAG.target, Value: tagValue(v.target) },
    { Key: PITR_TAG.environment, Value: tagValue(v.environment) },
  ];
}

/**
 * When a tagged resource expires: only with pgops:purpose=pitr and a pgops:expires that is a valid
 * ISO 8601 time with a zone; undefined for anything else (which cleanup never touches).
 */
export function pitrExpiry(tags: Record<string, string>): Date | undefined {
  if (tags[PITR_TAG.purpose] !== PITR_PURPOSE) return undefined;
  const raw = tags[PITR_TAG.expires];
  if (raw === undefined || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(raw)) return undefined;
  const at = new Date(raw);
  return Number.isNaN(at.getTime()) ? undefined : at;
}
