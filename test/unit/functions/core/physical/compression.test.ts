// Compression of the base tar: gzip in-process, zstd and lz4 through their standard tools, refused
// up front (bad configuration, exit 2) when the tool is not installed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../../../functions/core/errors.ts';
import { checkCompression, openCompressor } from '../../../../../functions/core/physical/compression.ts';

const originalPath = process.env.PATH;
afterEach(() => { process.env.PATH = originalPath; });

async function compress(method: 'gzip' | 'zstd', data: Buffer): Promise<Buffer> {
  const c = openCompressor(method)!;
  const out: Buffer[] = [];
  await pipeline(Readable.from([data]), c.stream, new Writable({ write(chunk: Buffer, _e, cb) { out.push(chunk); cb(); } }));
  await c.finished();
  return Buffer.concat(out);
}

describe('openCompressor', () => {
  it('gzips at level 1, readable by gunzip', async () => {
    const data = Buffer.from('base backup '.repeat(10_000));
    const gz = await compress('gzip', data);
    expect(gz.length).toBeLessThan(data.length / 10);
    expect(gunzipSync(gz).equals(data)).toBe(true);
  });

  it('runs zstd as a process and reports its exit', async () => {
    const zst = await compress('zstd', Buffer.from('x'.repeat(100_000)));
    expect(zst.subarray(0, 4).toString('hex')).toBe('28b52ffd');
  });

  it('compresses nothing for none', () => {
    expect(openCompressor('none')).toBeUndefined();
  });
});

describe('checkCompression', () => {
  it('refuses zstd and lz4 when their tool is not installed, naming the package and the way out', () => {
    const empty = mkdtempSync(join(tmpdir(), 'pgops-nopath-'));
    try {
      process.env.PATH = empty;
      for (const method of ['zstd', 'lz4'] as const) {
        const err = (() => { try { checkCompression(method); return undefined; } catch (e) { return e; } })();
        expect(err).toBeInstanceOf(ConfigError);
        expect((err as Error).message).toMatch(new RegExp(`physical\\.compression "${method}" needs the ${method} command, which is not installed here: install the ${method} package, or set physical\\.compression to "gzip"`));
      }
      expect(() => checkCompression('gzip')).not.toThrow();
      expect(() => checkCompression('none')).not.toThrow();
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
