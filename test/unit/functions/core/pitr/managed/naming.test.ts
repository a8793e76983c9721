// The copy's name and tags: within RDS's identifier rules for any source name, saying what it is;
// the expiry read only from copies that carry both pgops tags.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isRdsIdentifier, pitrExpiry, pitrTags, restoredIdentifier } from '../../../../../../functions/core/pitr/managed/naming.ts';

const at = new Date('2026-12-01T14:01:59.999Z');

describe('restoredIdentifier', () => {
  it('names the source and the minute restored to', () => {
    expect(restoredIdentifier('auth-prod', at)).toBe('pgops-pitr-auth-prod-202612011401');
  });

  it('shortens a long source so the name, and Aurora\'s "-1" instance after it, stay within 63 characters', () => {
    const source = `orders-${'x'.repeat(70)}`;
    const name = restoredIdentifier(source, at);
    expect(name).toHaveLength(63);
    expect(name.endsWith('-202612011401')).toBe(true);
    const cluster = restoredIdentifier(source, at, 2);
    expect(`${cluster}-1`).toHaveLength(63);
    expect(isRdsIdentifier(`${cluster}-1`)).toBe(true);
  });

  it('never ends the shortened source with a hyphen (no "--" before the time)', () => {
    // 39 characters of room for the source: cut right after a hyphen.
    const source = `${'a'.repeat(38)}-tail`;
    const name = restoredIdentifier(source, at);
    expect(name).toBe(`pgops-pitr-${'a'.repeat(38)}-202612011401`);
    expect(name).not.toContain('--');
  });

  it('is a valid RDS identifier for any source name and time (letters, digits, hyphens; a letter first; no "--"; no trailing "-"; at most 63)', () => {
    fc.assert(fc.property(
      fc.string({ minLength: 1, maxLength: 80, unit: fc.constantFrom(...'abcXYZ09-_.'.split('')) }),
      fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2099-12-31T23:59:59Z'), noInvalidDate: true }),
      fc.constantFrom(0, 2),
      (source, time, reserve) => {
        const name = restoredIdentifier(source, time, reserve);
        expect(name.length + reserve).toBeLessThanOrEqual(63);
        expect(isRdsIdentifier(name)).toBe(true);
        expect(isRdsIdentifier(`${name}${reserve ? '-1' : ''}`)).toBe(true);
        expect(name.startsWith('pgops-pitr-')).toBe(true);
      },
    ));
  });
});

describe('isRdsIdentifier', () => {
  it('holds RDS\'s rules', () => {
    expect(isRdsIdentifier('a')).toBe(true);
    expect(isRdsIdentifier('a'.repeat(63))).toBe(true);
    expect(isRdsIdentifier('a'.repeat(64))).toBe(false);
    expect(isRdsIdentifier('1abc')).toBe(false);
    expect(isRdsIdentifier('ab--c')).toBe(false);
    expect(isRdsIdentifier('abc-')).toBe(false);
    expect(isRdsIdentifier('ab_c')).toBe(false);
  });
});

describe('pitrTags and pitrExpiry', () => {
  const tags = pitrTags({ source: 'auth-prod', expires: new Date('2026-12-02T15:00:00.400Z'), runId: 'a1b2c3d4e5f6', target: '2026-12-01T14:01:00.000Z', environment: 'prod' });
  const map = Object.fromEntries(tags.map((t) => [t.Key, t.Value]));

  it('tags the purpose, the expiry (to the second), the source, the run, the target and the environment', () => {
    expect(map).toEqual({
      'pgops:purpose': 'pitr', 'pgops:expires': '2026-12-02T15:00:00Z', 'pgops:source': 'auth-prod', 'pgops:run': 'a1b2c3d4e5f6',
      'pgops:target': '2026-12-01T14:01:00.000Z', 'pgops:environment': 'prod',
    });
  });

  it('reads the expiry only with both tags and a valid time with a zone', () => {
    expect(pitrExpiry(map as Record<string, string>)?.toISOString()).toBe('2026-12-02T15:00:00.000Z');
    expect(pitrExpiry({ 'pgops:expires': '2026-12-02T15:00:00Z' })).toBeUndefined();
    expect(pitrExpiry({ 'pgops:purpose': 'pitr' })).toBeUndefined();
    expect(pitrExpiry({ 'pgops:purpose': 'backup', 'pgops:expires': '2026-12-02T15:00:00Z' })).toBeUndefined();
    expect(pitrExpiry({ 'pgops:purpose': 'pitr', 'pgops:expires': 'tomorrow' })).toBeUndefined();
    expect(pitrExpiry({ 'pgops:purpose': 'pitr', 'pgops:expires': '2026-12-02T15:00:00' })).toBeUndefined();
    expect(pitrExpiry({ 'pgops:purpose': 'pitr', 'pgops:expires': '2026-13-45T15:00:00Z' })).toBeUndefined();
  });
});
