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
import { checkCompression, openCompressor, physicalCompressionOf } from '../../../../../functions/core/physical/compression.ts';
import { fileConfigSchema } from '../../../../../functions/core/config.ts';

const originalPath = process.env.PATH;
afterEach(() => { process.env.PATH = originalPath; });

async function compress(method: 'gzip' | 'zstd', data: Buffer, level?: number): Promise<Buffer> {
  const c = openCompressor(method, undefined, level)!;
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

describe('physical.compression levels', () => {
  it('takes method:level, a bare method at level 1, and names a bad one', () => {
    expect(physicalCompressionOf('zstd:3')).toEqual({ method: 'zstd', level: 3 });
    expect(physicalCompressionOf('gzip')).toEqual({ method: 'gzip', level: 1 });
    expect(physicalCompressionOf('none')).toEqual({ method: 'none', level: null });
    expect(() => physicalCompressionOf('gzip:0')).toThrow(/"gzip:0": gzip levels run from 1 to 9/);
    expect(() => physicalCompressionOf('none:3')).toThrow(/none takes no level/);
    expect(() => physicalCompressionOf('brotli')).toThrow(/"brotli": expected gzip\[:1-9\], zstd\[:1-22\], lz4\[:1-12\] or none/);
    expect(fileConfigSchema.safeParse({ physical: { compression: 'lz4:13' } }).error?.issues[0]?.message).toBe('"lz4:13": lz4 levels run from 1 to 12');
  });

  it('compresses at the level asked: gzip 9 is smaller than gzip 1 on the same data, zstd 19 smaller than zstd 1', async () => {
    const data = Buffer.from(Array.from({ length: 20_000 }, (_, i) => `${JSON.stringify({ id: i, name: `customer ${i % 313}`, city: ['Oslo', 'Lima', 'Pune', 'Kyiv'][i % 4], total: (i * 37) % 1000 })}\n`).join(''));
    const [g1, g9] = [await compress('gzip', data, 1), await compress('gzip', data, 9)];
    expect(g9.length).toBeLessThan(g1.length);
    expect(gunzipSync(g9).equals(data)).toBe(true);
    const [z1, z19] = [await compress('zstd', data, 1), await compress('zstd', data, 19)];
    expect(z19.length).toBeLessThan(z1.length);
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
