// The manifest schema: what the catalog accepts, what it rejects and how it says why, including
// manifests of a newer format, and the kind a new manifest records.
import { describe, expect, it } from 'vitest';
import { contentOfOptions, parseManifest } from '../../../../../functions/core/catalog/manifest.ts';
import { FULL_OPTIONS, validManifest } from '../../../../helpers/manifests.ts';

const ID = '20261101T020000Z-0a01';
const parse = (value: unknown) => parseManifest(JSON.stringify(value));

describe('contentOfOptions: the kind of a new manifest', () => {
  it('full only without any filter', () => {
    expect(contentOfOptions(FULL_OPTIONS)).toBe('full');
    expect(contentOfOptions({ ...FULL_OPTIONS, schemaOnly: true })).toBe('schema-only');
    expect(contentOfOptions({ ...FULL_OPTIONS, dataOnly: true })).toBe('data-only');
    expect(contentOfOptions({ ...FULL_OPTIONS, tables: ['public.users'] })).toBe('partial');
    expect(contentOfOptions({ ...FULL_OPTIONS, excludeTables: ['audit_logs'] })).toBe('partial');
    expect(contentOfOptions({ ...FULL_OPTIONS, jobs: 4 })).toBe('full');
  });
});

describe('parseManifest', () => {
  it('accepts every content kind and the legacy `logical` kind, keeping the kind as written', () => {
    for (const kind of ['full', 'logical'] as const) expect(parse({ ...validManifest('auth', ID), kind })).toEqual({ manifest: { ...validManifest('auth', ID), kind } });
    const schemaOnly = validManifest('auth', ID, { options: { ...FULL_OPTIONS, schemaOnly: true } });
    expect(parse(schemaOnly)).toEqual({ manifest: schemaOnly });
    expect(schemaOnly.kind).toBe('schema-only');
  });

  it('a future formatVersion is invalid, and the problem says a newer pgops wrote it', () => {
    const r = parse({ ...validManifest('auth', ID), formatVersion: 2, somethingNew: { x: 1 } });
    expect(r).toEqual({ problem: 'formatVersion 2 (this pgops reads 1): written by a newer pgops: upgrade pgops to read it' });
    expect(parse({ ...validManifest('auth', ID), formatVersion: 1 })).toHaveProperty('manifest');
  });

  it('an unknown kind is invalid as written by a newer pgops, even when other fields are wrong too', () => {
    expect(parse({ ...validManifest('auth', ID), kind: 'incremental' })).toEqual({
      problem: 'kind "incremental" is unknown (this pgops knows full, schema-only, data-only, partial): written by a newer pgops: upgrade pgops to read it',
    });
    expect(parse({ kind: 'incremental' })).toEqual({ problem: expect.stringContaining('written by a newer pgops') });
  });

  it('an ordinary schema failure is named field by field, not blamed on a newer pgops', () => {
    const r = parse({ ...validManifest('auth', ID), sha256: 'nope', kind: 42 });
    expect('problem' in r && r.problem).toMatch(/kind: .*; sha256: /);
    expect('problem' in r && r.problem).not.toContain('newer pgops');
    expect(parseManifest('{ "id": ')).toEqual({ problem: expect.stringMatching(/^not valid JSON/) });
  });
});
