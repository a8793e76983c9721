// Key rules shared by both backends, so a key that works on local storage works on S3 and
// can never climb out of the configured prefix.
import { StorageKeyError } from './errors.ts';

/** Temporary files written by FileStorage; keys whose last segment looks like one are refused. */
export const TEMP_FILE = /^\..*\.pgops-tmp-[0-9a-f]+$/;

function checkSegments(input: string, segments: string[]): void {
  for (const segment of segments) {
    if (segment === '') throw new StorageKeyError(input, 'empty path segment (leading, trailing or doubled "/")');
    if (segment === '.' || segment === '..') throw new StorageKeyError(input, `"${segment}" segment`);
    if (TEMP_FILE.test(segment)) throw new StorageKeyError(input, 'reserved temporary-file name');
  }
}

function isControlCharacter(ch: string): boolean {
  const code = ch.charCodeAt(0);
  return code <= 0x1f || code === 0x7f;
}

function checkCharacters(input: string): void {
  if (input.startsWith('/')) throw new StorageKeyError(input, 'absolute path');
  if (input.includes('\\')) throw new StorageKeyError(input, 'backslash (keys use "/")');
  // Control characters (NUL included) break file names and S3 XML listings alike.
  if ([...input].some(isControlCharacter)) throw new StorageKeyError(input, 'control character');
}

/** Validates an object key and returns its segments. */
export function keySegments(key: string): string[] {
  if (typeof key !== 'string' || key === '') throw new StorageKeyError(String(key), 'empty key');
  checkCharacters(key);
  const segments = key.split('/');
  checkSegments(key, segments);
  return segments;
}

export function validateKey(key: string): string {
  keySegments(key);
  return key;
}

/**
 * Validates a listing prefix: '' (everything), 'a/b/' (a "directory") or 'a/b' (any key starting
 * with it, as on S3). Every complete segment obeys the key rules.
 */
export function validatePrefix(prefix: string): string {
  if (typeof prefix !== 'string') throw new StorageKeyError(String(prefix), 'prefix must be a string');
  if (prefix === '') return prefix;
  checkCharacters(prefix);
  const segments = prefix.split('/');
  const last = segments.pop() ?? '';
  checkSegments(prefix, segments);
  // The last segment may be partial ("2026" of "20261122T..."), but never a dot segment.
  if (last === '.' || last === '..') throw new StorageKeyError(prefix, `"${last}" segment`);
  return prefix;
}

/** S3 lists keys in UTF-8 byte order; FileStorage sorts the same way. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
