// The local spool of `wal receive`: the directory pg_receivewal writes into. What in it is ready to
// archive (finished segments, which pg_receivewal renames from `.partial` once complete and
// fsynced, and timeline history files), what is still growing (`.partial`), and the seed file
// that makes pg_receivewal start exactly where the replication slot says.
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseWalName } from '../catalog/layout.ts';
import { parseSegmentFileName } from './lsn.ts';

export interface SpoolFiles {
  /** Complete files to archive, in the order they must be archived: histories, then segments by position. */
  finished: string[];
  /** `<segment>.partial` files, by position (more than one after a timeline switch). */
  partials: string[];
}

/** A fresh spool (0700) under `parent`: every run starts empty, as a new container does. */
export function createSpool(parent: string): Promise<string> {
  return mkdtemp(join(parent, 'pgops-wal-receive-'));
}

export function removeSpool(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true });
}

/** Sort key of a segment name (with or without `.partial`): position, then timeline. */
function position(name: string, segmentSize: number): [bigint, number] {
  const parsed = parseSegmentFileName(name.slice(0, 24), segmentSize);
  return parsed ? [parsed.segno, parsed.timeline] : [-1n, 0];
}

function byPosition(segmentSize: number): (a: string, b: string) => number {
  return (a, b) => {
    const [sa, ta] = position(a, segmentSize);
    const [sb, tb] = position(b, segmentSize);
    return sa !== sb ? (sa < sb ? -1 : 1) : ta - tb;
  };
}

/** What the spool holds now; anything that is not a WAL file name (pg_receivewal's .tmp files) is ignored. */
export async function listSpool(dir: string, segmentSize: number): Promise<SpoolFiles> {
  const histories: string[] = [];
  const segments: string[] = [];
  const partials: string[] = [];
  for (const name of await readdir(dir)) {
    const kind = parseWalName(name)?.kind;
    if (kind === 'history') histories.push(name);
    else if (kind === 'segment') segments.push(name);
    else if (kind === 'partial') partials.push(name);
  }
  const order = byPosition(segmentSize);
  return { finished: [...histories.sort(), ...segments.sort(order)], partials: partials.sort(order) };
}

/**
 * Make pg_receivewal resume at the start of `segment`: with no finished file in its directory it
 * starts from the newest `.partial`, which must be empty or a whole padded segment (anything else
 * it refuses). `content`, the archived partial of that segment, keeps the local copy from ever
 * holding less than the archive does while the segment is streamed again.
 */
export async function seedSpool(dir: string, segment: string, content?: Buffer): Promise<string> {
  const name = `${segment}.partial`;
  await writeFile(join(dir, name), content ?? Buffer.alloc(0), { mode: 0o600, flag: 'wx' });
  return name;
}
