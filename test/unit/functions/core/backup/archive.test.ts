import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { VerifiedTail } from '../../../../../functions/core/backup/archive.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const data = Buffer.from(Array.from({ length: 10_000 }, (_, i) => i % 251));

/** Writes `chunks` without ending, and collects what comes out. */
function feed(tail: VerifiedTail, chunks: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  tail.on('data', (c: Buffer) => out.push(c));
  for (const c of chunks) tail.write(c);
  return out;
}

describe('VerifiedTail', () => {
  it('passes everything but the last holdBytes until the end has matched the manifest', async () => {
    const tail = new VerifiedTail({ bytes: data.length, sha256: sha(data) }, () => new Error('mismatch'), 3000);
    const out = feed(tail, [data.subarray(0, 4000), data.subarray(4000, 8000), data.subarray(8000)]);
    await new Promise((r) => setImmediate(r));
    const before = Buffer.concat(out).length;
    expect(before).toBeLessThanOrEqual(data.length - 3000);
    expect(tail.released).toBe(false);
    tail.end();
    await new Promise((r) => tail.on('end', r));
    expect(Buffer.concat(out)).toEqual(data);
    expect(tail.released).toBe(true);
  });

  it('errors at the end of a changed or short object and never releases its tail', async () => {
    const changed = Buffer.from(data);
    changed[5] = 0xff;
    for (const [input, expected] of [[changed, /sha256: the stored object hashes to/], [data.subarray(0, 9000), /size: the stored object has 9000 bytes, the manifest says 10000/]] as const) {
      const tail = new VerifiedTail({ bytes: data.length, sha256: sha(data) }, (problems) => new Error(problems.join('; ')), 3000);
      const sink = new PassThrough();
      const out: Buffer[] = [];
      sink.on('data', (c: Buffer) => out.push(c));
      const failed = new Promise<Error>((resolve) => tail.on('error', resolve));
      tail.pipe(sink);
      tail.end(input);
      expect((await failed).message).toMatch(expected);
      expect(tail.released).toBe(false);
      expect(Buffer.concat(out).length).toBeLessThanOrEqual(input.length - 3000);
    }
  });
});
