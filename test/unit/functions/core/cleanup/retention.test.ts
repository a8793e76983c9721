// The retention planner: examples for each policy, then properties over arbitrary backup sets.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backupIdTime } from '../../../../../functions/core/catalog/layout.ts';
import type { ValidBackup } from '../../../../../functions/core/catalog/catalog.ts';
import { isoWeekKey, planByContent, planRetention, type BackupRef, type RetentionPolicy } from '../../../../../functions/core/cleanup/retention.ts';
import { FULL_OPTIONS, validManifest } from '../../../../helpers/manifests.ts';

const NONE: RetentionPolicy = { keepLast: 0, keepDaily: 0, keepWeekly: 0, keepMonthly: 0 };
const at = (iso: string, id = iso): BackupRef => ({ id, completedAt: new Date(iso) });

describe('planRetention examples', () => {
  it('keepLast keeps the N newest and deletes the rest, newest first', () => {
    const bs = ['2026-11-01', '2026-11-02', '2026-11-03', '2026-11-04', '2026-11-05'].map((d) => at(`${d}T02:00:00Z`, d));
    const plan = planRetention(bs, { ...NONE, keepLast: 3 });
    expect(plan.keep).toEqual(['2026-11-05', '2026-11-04', '2026-11-03']);
    expect(plan.delete).toEqual(['2026-11-02', '2026-11-01']);
  });

  it('keeps the newest backup when every policy is 0', () => {
    const plan = planRetention([at('2026-01-01T00:00:00Z', 'old'), at('2026-02-01T00:00:00Z', 'new')], NONE);
    expect(plan).toEqual({ keep: ['new'], delete: ['old'], reasons: { new: ['newest'] } });
  });

  it('an empty list plans nothing', () => {
    expect(planRetention([], { keepLast: 3, keepDaily: 3, keepWeekly: 3, keepMonthly: 3 })).toEqual({ keep: [], delete: [], reasons: {} });
  });

  it('keepDaily keeps the newest backup of each of the N most recent days that have one (UTC)', () => {
    const bs = [
      at('2026-11-05T23:30:00Z', 'd5-late'), at('2026-11-05T01:00:00Z', 'd5-early'),
      // no backup on the 4th: the policy counts days that have backups
      at('2026-11-03T12:00:00Z', 'd3'), at('2026-11-02T12:00:00Z', 'd2'),
    ];
    const plan = planRetention(bs, { ...NONE, keepDaily: 2 });
    expect(plan.keep).toEqual(['d5-late', 'd3']);
    expect(plan.reasons['d3']).toEqual(['daily']);
    expect(plan.reasons['d5-late']).toEqual(['newest', 'daily']);
  });

  it('keepWeekly buckets by ISO week, keepMonthly by calendar month', () => {
    const bs = [
      at('2026-11-10T00:00:00Z', 'tue-w46'), at('2026-11-09T00:00:00Z', 'mon-w46'),
      at('2026-11-08T00:00:00Z', 'sun-w45'), at('2026-11-02T00:00:00Z', 'mon-w45'),
      at('2026-10-31T00:00:00Z', 'oct-31'), at('2026-10-01T00:00:00Z', 'oct-1'), at('2026-09-15T00:00:00Z', 'sep'),
    ];
    expect(planRetention(bs, { ...NONE, keepWeekly: 2 }).keep).toEqual(['tue-w46', 'sun-w45']);
    expect(planRetention(bs, { ...NONE, keepMonthly: 3 }).keep).toEqual(['tue-w46', 'oct-31', 'sep']);
  });

  it('a backup kept by several policies is listed once, with every reason', () => {
    const plan = planRetention([at('2026-11-05T00:00:00Z', 'a'), at('2026-11-04T00:00:00Z', 'b')], { keepLast: 1, keepDaily: 2, keepWeekly: 1, keepMonthly: 1 });
    expect(plan.keep).toEqual(['a', 'b']);
    expect(plan.reasons).toEqual({ a: ['newest', 'last', 'daily', 'weekly', 'monthly'], b: ['daily'] });
  });

  it('computes ISO weeks across year boundaries', () => {
    expect(isoWeekKey(new Date('2026-01-01T00:00:00Z'))).toBe('2026-W01'); // a Thursday
    expect(isoWeekKey(new Date('2026-12-31T23:59:59Z'))).toBe('2026-W53');
    expect(isoWeekKey(new Date('2027-01-03T12:00:00Z'))).toBe('2026-W53'); // Sunday of that week
    expect(isoWeekKey(new Date('2021-01-03T00:00:00Z'))).toBe('2020-W53');
    expect(isoWeekKey(new Date('2024-12-30T00:00:00Z'))).toBe('2025-W01');
  });

  it('refuses an invalid date instead of guessing', () => {
    expect(() => planRetention([{ id: 'x', completedAt: new Date('nope') }], NONE)).toThrow(/x: completedAt is not a valid date/);
  });

  it('reads the time out of a backup id', () => {
    expect(backupIdTime('20261122T020000Z-3fa2')?.toISOString()).toBe('2026-11-22T02:00:00.000Z');
    expect(backupIdTime('garbage')).toBeUndefined();
  });
});

// Narrow and wide time ranges, so same-day, same-week and same-month collisions are common.
const dateArb = fc.oneof(
  fc.date({ min: new Date('2026-11-01T00:00:00Z'), max: new Date('2026-11-20T00:00:00Z'), noInvalidDate: true }),
  fc.date({ min: new Date('2024-01-01T00:00:00Z'), max: new Date('2027-12-31T00:00:00Z'), noInvalidDate: true }),
  fc.constantFrom(new Date('2026-11-05T02:00:00Z'), new Date('2026-11-05T02:00:00Z')), // exact ties
);
const backupsArb = fc.array(dateArb, { maxLength: 60 }).map((ds) => ds.map((d, i) => ({ id: `b${String(i).padStart(3, '0')}`, completedAt: d })));
const policyArb = fc.record({
  keepLast: fc.nat({ max: 10 }), keepDaily: fc.nat({ max: 10 }), keepWeekly: fc.nat({ max: 6 }), keepMonthly: fc.nat({ max: 14 }),
});
const newestTime = (bs: BackupRef[]) => Math.max(...bs.map((b) => b.completedAt.getTime()));

describe('planRetention properties', () => {
  it('never deletes the newest backup', () => {
    fc.assert(fc.property(backupsArb.filter((bs) => bs.length > 0), policyArb, (bs, policy) => {
      const plan = planRetention(bs, policy);
      const kept = new Set(plan.keep);
      expect(bs.some((b) => kept.has(b.id) && b.completedAt.getTime() === newestTime(bs))).toBe(true);
    }), { numRuns: 500 });
  });

  it('never keeps more than the policies allow plus the newest', () => {
    fc.assert(fc.property(backupsArb, policyArb, (bs, p) => {
      expect(planRetention(bs, p).keep.length).toBeLessThanOrEqual(p.keepLast + p.keepDaily + p.keepWeekly + p.keepMonthly + 1);
    }), { numRuns: 500 });
  });

  it('keep and delete are disjoint and together are exactly the input', () => {
    fc.assert(fc.property(backupsArb, policyArb, (bs, p) => {
      const plan = planRetention(bs, p);
      expect(plan.keep.filter((id) => plan.delete.includes(id))).toEqual([]);
      expect([...plan.keep, ...plan.delete].sort()).toEqual(bs.map((b) => b.id).sort());
    }), { numRuns: 500 });
  });

  it('does not depend on the order the backups are listed in', () => {
    const arb = backupsArb.chain((bs) => fc.tuple(fc.constant(bs), fc.shuffledSubarray(bs, { minLength: bs.length, maxLength: bs.length })));
    fc.assert(fc.property(arb, policyArb, ([bs, shuffled], p) => {
      expect(planRetention(shuffled, p)).toEqual(planRetention(bs, p));
    }), { numRuns: 500 });
  });

  it('keeps at least the keepLast newest', () => {
    fc.assert(fc.property(backupsArb, policyArb, (bs, p) => {
      const plan = planRetention(bs, p);
      const sorted = [...bs].sort((a, b) => b.completedAt.getTime() - a.completedAt.getTime() || (a.id < b.id ? 1 : -1));
      for (const b of sorted.slice(0, p.keepLast)) expect(plan.keep).toContain(b.id);
    }), { numRuns: 300 });
  });

  it('a more generous policy never deletes a backup a stricter one keeps', () => {
    fc.assert(fc.property(backupsArb, policyArb, policyArb, (bs, p, extra) => {
      const strict = planRetention(bs, p);
      const generous = planRetention(bs, { keepLast: p.keepLast + extra.keepLast, keepDaily: p.keepDaily + extra.keepDaily, keepWeekly: p.keepWeekly + extra.keepWeekly, keepMonthly: p.keepMonthly + extra.keepMonthly });
      for (const id of strict.keep) expect(generous.keep).toContain(id);
    }), { numRuns: 300 });
  });
});

describe('planByContent: partial backups never count toward or displace full ones (issue 10)', () => {
  const DEFAULTS: RetentionPolicy = { keepLast: 7, keepDaily: 7, keepWeekly: 4, keepMonthly: 12 };
  const backup = (id: string, options: Partial<typeof FULL_OPTIONS> = {}, kind?: 'logical'): ValidBackup =>
    ({ id, objects: [], manifest: validManifest('auth', id, { options: { ...FULL_OPTIONS, ...options }, ...(kind ? { kind } : {}) }) });
  const ids = (n: number, day: string) => Array.from({ length: n }, (_, i) => `${day}T02${String(i).padStart(2, '0')}00Z-00${String(i).padStart(2, '0')}`);

  it('eight schema-only backups after one full one, default policy: the full backup is kept', () => {
    const full = backup('20261101T010000Z-0f01');
    const schemaOnly = ids(8, '20261101').map((id) => backup(id, { schemaOnly: true }));
    const catalogOrder = [...schemaOnly].reverse().concat(full); // newest first, as the catalog lists them
    const plan = planByContent(catalogOrder, DEFAULTS);
    expect(plan.keep).toContain(full.id);
    expect(plan.reasons[full.id]).toEqual(expect.arrayContaining(['newest', 'last']));
    // The partial ones follow the same rules among themselves: the 7 newest kept, the oldest goes.
    expect(plan.delete).toEqual([schemaOnly[0]!.id]);
    expect(plan.keep).toEqual(catalogOrder.map((b) => b.id).filter((id) => id !== schemaOnly[0]!.id));
  });

  it('full backups are planned exactly as if no partial backup existed; legacy manifests by their options', () => {
    const fulls = ['20261101T020000Z-0a01', '20261102T020000Z-0a02', '20261103T020000Z-0a03'].map((id, i) => backup(id, {}, i === 0 ? 'logical' : undefined));
    const partials = [backup('20261104T020000Z-0b01', { tables: ['users'] }), backup('20261105T020000Z-0b02', { dataOnly: true }, 'logical')];
    const all = [...partials, ...fulls].reverse();
    const policy = { ...NONE, keepLast: 2 };
    const plan = planByContent(all, policy);
    const alone = planRetention(fulls.map((b) => ({ id: b.id, completedAt: new Date(b.manifest.completedAt) })), policy);
    expect(plan.keep.filter((id) => fulls.some((b) => b.id === id))).toEqual(alone.keep);
    expect(plan.delete).toEqual(['20261101T020000Z-0a01']);
    expect(plan.keep).toEqual(['20261105T020000Z-0b02', '20261104T020000Z-0b01', '20261103T020000Z-0a03', '20261102T020000Z-0a02']);
  });

  it('property: adding any partial backups never changes which full backups are kept', () => {
    const day = fc.integer({ min: 0, max: 400 });
    fc.assert(fc.property(fc.uniqueArray(day, { minLength: 1, maxLength: 12 }), fc.uniqueArray(day, { maxLength: 12 }), (fullDays, partialDays) => {
      const idOf = (d: number, tag: string) => `${new Date(Date.UTC(2026, 0, 1) + d * 86_400_000).toISOString().slice(0, 10).replace(/-/g, '')}T020000Z-${tag}`;
      const fulls = fullDays.map((d) => backup(idOf(d, 'f000')));
      const partials = partialDays.map((d) => backup(idOf(d, 'a000'), { schemaOnly: true }));
      const alone = planByContent(fulls, DEFAULTS);
      const mixed = planByContent([...fulls, ...partials], DEFAULTS);
      expect(mixed.keep.filter((id) => id.endsWith('f000')).sort()).toEqual([...alone.keep].sort());
    }));
  });
});
