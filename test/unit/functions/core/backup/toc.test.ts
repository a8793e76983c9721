// The table of contents of a dump and what `restore --table` picks from it, on a real
// `pg_restore --list --verbose` of PostgreSQL 15 (a serial and an identity column, a check, a unique
// and a partial index, a trigger, a comment, a foreign key across schemas, a mixed-case name).
import { describe, expect, it } from 'vitest';
import { UsageError, exitCodeOf } from '../../../../../functions/core/errors.ts';
import { closeMatches, describeEntry, listFile, matchTables, parseToc, selectTableEntries, tocTables } from '../../../../../functions/core/backup/toc.ts';

const LISTING = `;
; Archive created at 2026-12-01 06:44:14 UTC
; Selected TOC Entries:
3368; 0 0 ENCODING - ENCODING 
3371; 1262 5 DATABASE - postgres postgres
3372; 0 0 COMMENT - DATABASE postgres postgres
;	depends on: 3371
6; 2615 16384 SCHEMA - app postgres
7; 2615 16500 SCHEMA - my schema postgres
220; 1255 16409 FUNCTION public trg() postgres
218; 1259 16399 TABLE app tokens postgres
;	depends on: 6
217; 1259 16398 SEQUENCE app tokens_id_seq postgres
;	depends on: 218 6
219; 1259 16411 TABLE public Mixed Case postgres
221; 1259 16511 TABLE my schema tokens postgres
;	depends on: 7
216; 1259 16386 TABLE public users postgres
3373; 0 0 COMMENT public TABLE users postgres
;	depends on: 216
215; 1259 16385 SEQUENCE public users_id_seq postgres
;	depends on: 216
3374; 0 0 SEQUENCE OWNED BY public users_id_seq postgres
;	depends on: 215
3208; 2604 16389 DEFAULT public users id postgres
;	depends on: 216 215 216
3364; 0 16399 TABLE DATA app tokens postgres
;	depends on: 218
3365; 0 16411 TABLE DATA public Mixed Case postgres
;	depends on: 219
3362; 0 16386 TABLE DATA public users postgres
;	depends on: 216
3375; 0 0 SEQUENCE SET app tokens_id_seq postgres
;	depends on: 217
3376; 0 0 SEQUENCE SET public users_id_seq postgres
;	depends on: 215
3216; 2606 16403 CONSTRAINT app tokens tokens_pkey postgres
;	depends on: 218
3214; 2606 16395 CONSTRAINT public users users_pkey postgres
;	depends on: 216
3211; 1259 16397 INDEX public users_active postgres
;	depends on: 216 216
3212; 1259 16396 INDEX public users_email postgres
;	depends on: 216
3218; 2620 16410 TRIGGER public users t postgres
;	depends on: 220 216
3217; 2606 16404 FK CONSTRAINT app tokens tokens_user_id_fkey postgres
;	depends on: 216 218 3214
3219; 0 0 COMMENT app CONSTRAINT tokens_user_id_fkey ON tokens postgres
;	depends on: 3217
`;

const toc = parseToc(LISTING);
const ids = (entries: { id: number }[]) => entries.map((e) => e.id);

describe('parsing pg_restore --list --verbose', () => {
  it('reads each entry with its type, schema, name and dependencies', () => {
    expect(toc.find((e) => e.id === 3208)).toMatchObject({ type: 'DEFAULT', schema: 'public', name: 'users id', dependsOn: [216, 215, 216] });
    expect(toc.find((e) => e.id === 3217)).toMatchObject({ type: 'FK CONSTRAINT', schema: 'app', name: 'tokens tokens_user_id_fkey', dependsOn: [216, 218, 3214] });
    expect(toc.find((e) => e.id === 3368)).toMatchObject({ type: 'ENCODING', schema: '-', name: 'ENCODING' });
    // Names and schema names with spaces: the SCHEMA entries tell where the schema ends.
    expect(toc.find((e) => e.id === 219)).toMatchObject({ schema: 'public', name: 'Mixed Case' });
    expect(toc.find((e) => e.id === 221)).toMatchObject({ schema: 'my schema', name: 'tokens' });
  });

  it('lists the tables', () => {
    expect(tocTables(toc).map((t) => `${t.schema}.${t.name}`)).toEqual(['app.tokens', 'my schema.tokens', 'public.Mixed Case', 'public.users']);
  });
});

describe('matching --table names the way pg_dump does', () => {
  const tables = tocTables(toc);
  const names = (patterns: string[]) => matchTables(patterns, tables, 'B1').map((t) => `${t.schema}.${t.name}`);

  it('takes schema-qualified, bare, quoted and wildcard names', () => {
    expect(names(['public.users'])).toEqual(['public.users']);
    expect(names(['users'])).toEqual(['public.users']);
    expect(names(['USERS'])).toEqual(['public.users']);
    expect(names(['"Mixed Case"'])).toEqual(['public.Mixed Case']);
    expect(names(['public."Mixed Case"'])).toEqual(['public.Mixed Case']);
    expect(names(['app.tokens'])).toEqual(['app.tokens']);
    expect(names(['"my schema".tokens'])).toEqual(['my schema.tokens']);
    expect(names(['*.tokens'])).toEqual(['app.tokens', 'my schema.tokens']);
  });

  it('refuses a name not in the backup (exit 2), naming close matches, and a bare name in two schemas', () => {
    const err = (() => { try { names(['user', 'public.users', 'nothing_like_it']); } catch (e) { return e; } })();
    expect(err).toBeInstanceOf(UsageError);
    expect(exitCodeOf(err)).toBe(2);
    expect((err as Error).message).toMatch(/--table user: no such table in backup B1 \(close matches: public\.users\)/);
    expect((err as Error).message).toMatch(/--table nothing_like_it: no such table in backup B1$/m);
    expect(() => names(['"mixed case"'])).toThrow(/no such table .*close matches: public\.Mixed Case/);
    expect(() => names(['tokens'])).toThrow(/--table tokens is ambiguous: app\.tokens, my schema\.tokens \(qualify it with its schema\)/);
  });

  it('suggests by substring and edit distance', () => {
    expect(closeMatches('usr', tables)).toEqual(['public.users']);
    expect(closeMatches('token', tables)).toEqual(['app.tokens', 'my schema.tokens']);
    expect(closeMatches('zzzzzz', tables)).toEqual([]);
  });
});

describe('choosing the entries of a table', () => {
  const users = [{ schema: 'public', name: 'users' }];
  const tokens = [{ schema: 'app', name: 'tokens' }];

  it('restores a table with its data, sequence, default, constraints, indexes, trigger and comment, and their function', () => {
    const s = selectTableEntries(toc, users, { target: 'new' });
    expect(s.entries.map(describeEntry)).toEqual([
      'FUNCTION public trg()', 'TABLE public users', 'COMMENT public TABLE users', 'SEQUENCE public users_id_seq',
      'SEQUENCE OWNED BY public users_id_seq', 'DEFAULT public users id', 'TABLE DATA public users', 'SEQUENCE SET public users_id_seq',
      'CONSTRAINT public users users_pkey', 'INDEX public users_active', 'INDEX public users_email', 'TRIGGER public users t',
    ]);
    // The foreign key of another table that points at this one stays out with that table.
    expect(s.skipped.map((x) => x.entry.id)).toEqual([3217, 3219]);
    expect(listFile(s.entries).split('\n')[0]).toBe('220; 1255 16409 FUNCTION public trg() postgres');
  });

  it('skips a foreign key to a table not restored (and the comment on it), saying why', () => {
    const s = selectTableEntries(toc, tokens, { target: 'new' });
    expect(ids(s.entries)).toEqual([6, 218, 217, 3364, 3375, 3216]);
    expect(s.skipped.map((x) => `${describeEntry(x.entry)}: ${x.reason}`)).toEqual([
      'FK CONSTRAINT app tokens tokens_user_id_fkey: needs TABLE public users, CONSTRAINT public users users_pkey, which is not restored',
      'COMMENT app CONSTRAINT tokens_user_id_fkey ON tokens: needs FK CONSTRAINT app tokens tokens_user_id_fkey, which is not restored',
    ]);
  });

  it('keeps the foreign key when both tables are restored', () => {
    const s = selectTableEntries(toc, [...users, ...tokens], { target: 'new' });
    expect(ids(s.entries)).toEqual(expect.arrayContaining([3217, 3219, 3214]));
    expect(s.skipped).toEqual([]);
  });

  it('into an existing target (--clean): no schema or function, and foreign keys to and from the table are re-made', () => {
    const t = selectTableEntries(toc, tokens, { target: 'existing' });
    expect(ids(t.entries)).toEqual([218, 217, 3364, 3375, 3216, 3217, 3219]);
    expect(t.skipped).toEqual([]);
    const u = selectTableEntries(toc, users, { target: 'existing' });
    expect(ids(u.entries)).not.toContain(220);
    expect(ids(u.entries)).toEqual(expect.arrayContaining([216, 3362, 3214, 3211, 3212, 3218, 3217]));
  });
});
