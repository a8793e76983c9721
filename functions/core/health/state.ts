// What the health job remembers between runs, in <database>/state/health.json: database size
// samples (growth) and the archiver's failure counter (failures since the last run).
import { stateKeys } from '../catalog/layout.ts';
import type { Storage } from '../storage/types.ts';
import type { ArchiverSnapshot } from './database.ts';

export interface SizeSample {
  at: string;
  bytes: number;
}

export interface HealthState {
  version: 1;
  sizes: SizeSample[];
  archiver?: ArchiverSnapshot;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Samples are kept about an hour apart for 8 days: at most ~200, whatever the schedule. */
const SAMPLE_SPACING = HOUR;
const SAMPLE_KEEP = 8 * DAY;

export function healthStateKey(databaseId: string): string {
  return stateKeys(databaseId).health;
}

export function emptyHealthState(): HealthState {
  return { version: 1, sizes: [] };
}

export async function readHealthState(storage: Storage, databaseId: string): Promise<HealthState> {
  const raw = await storage.getBytes(healthStateKey(databaseId));
  if (!raw) return emptyHealthState();
  try {
    const json = JSON.parse(raw.toString('utf8')) as Partial<HealthState>;
    const sizes = Array.isArray(json.sizes) ? json.sizes.filter((s) => typeof s?.at === 'string' && typeof s?.bytes === 'number' && !Number.isNaN(Date.parse(s.at))) : [];
    const archiver = json.archiver && typeof json.archiver.failedCount === 'number' ? json.archiver : undefined;
    return { version: 1, sizes, ...(archiver ? { archiver } : {}) };
  } catch {
    return emptyHealthState(); // a damaged state file only costs one run of history
  }
}

export async function writeHealthState(storage: Storage, databaseId: string, state: HealthState): Promise<void> {
  await storage.putBytes(healthStateKey(databaseId), `${JSON.stringify(state)}\n`, { contentType: 'application/json' });
}

export interface Growth {
  /** Growth ratio per day, against a sample about a day old (or the oldest one). */
  dailyRatio: number;
  since: string;
  baselineBytes: number;
}

/**
 * Growth against the newest sample at least a day old, or else the oldest one. Over more than a
 * day the ratio is spread per day; over less it is taken as is (that much growth already happened).
 */
export function growthSince(samples: SizeSample[], bytes: number, now: Date): Growth | undefined {
  const past = samples.filter((s) => Date.parse(s.at) < now.getTime()).sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  if (past.length === 0) return undefined;
  const dayAgo = now.getTime() - DAY;
  const base = [...past].reverse().find((s) => Date.parse(s.at) <= dayAgo) ?? past[0]!;
  if (base.bytes <= 0) return undefined;
  const days = (now.getTime() - Date.parse(base.at)) / DAY;
  const ratio = (bytes - base.bytes) / base.bytes;
  return { dailyRatio: days > 1 ? ratio / days : ratio, since: base.at, baselineBytes: base.bytes };
}

export function addSizeSample(samples: SizeSample[], bytes: number, now: Date): SizeSample[] {
  const kept = samples
    .filter((s) => now.getTime() - Date.parse(s.at) <= SAMPLE_KEEP && Date.parse(s.at) < now.getTime())
    .sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  const last = kept[kept.length - 1];
  if (last && now.getTime() - Date.parse(last.at) < SAMPLE_SPACING) return kept;
  return [...kept, { at: now.toISOString(), bytes }];
}
