// Reads what a base backup is from pg_basebackup's tar as it streams past: with `-X none`,
// pg_basebackup -v prints neither the WAL start nor the end point, so the start comes from
// backup_label and the WAL range (start, end, timeline) from backup_manifest, the last member.
// Every chunk is passed on untouched; only tar headers and those two small files are looked at.
import { Transform, type TransformCallback } from 'node:stream';
import { formatLsn, parseLsn } from '../wal/lsn.ts';
import { BaseTarError } from './errors.ts';

const BLOCK = 512;
/** backup_label is a few hundred bytes; the manifest's WAL-Ranges sit in its last few hundred. */
const LABEL_MAX = 64 * 1024;
const MANIFEST_TAIL = 64 * 1024;

export interface WalRange {
  timeline: number;
  startLsn: string;
  endLsn: string;
}

export interface BaseTarFacts {
  /** backup_label's START WAL LOCATION and START TIMELINE. */
  startLsn: string;
  startTimeline: number;
  checkpointLsn?: string;
  /** backup_manifest's WAL-Ranges: one per timeline the backup spans. */
  walRanges: WalRange[];
  /** Bytes of the tar. */
  tarBytes: number;
}

interface Member {
  name: string;
  /** Data bytes plus the padding to the next block. */
  remaining: number;
  dataLeft: number;
  capture?: { limit: number; tail: boolean; chunks: Buffer[]; kept: number };
}

/** A number field: octal text, or GNU base-256 (high bit set) for sizes of 8 GiB and more. */
function tarNumber(field: Buffer): number {
  if ((field[0]! & 0x80) !== 0) {
    let n = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!;
    return n;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  return text === '' ? 0 : Number.parseInt(text, 8);
}

function cString(field: Buffer): string {
  const end = field.indexOf(0);
  return field.toString('utf8', 0, end < 0 ? field.length : end);
}

/** A header block's checksum: the sum of its bytes with the checksum field read as spaces. */
function checksumMatches(block: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : block[i]!;
  return sum === tarNumber(block.subarray(148, 156));
}

function memberName(block: Buffer): string {
  const name = cString(block.subarray(0, 100));
  const ustar = block.toString('latin1', 257, 262) === 'ustar';
  const prefix = ustar ? cString(block.subarray(345, 500)) : '';
  return prefix ? `${prefix}/${name}` : name;
}

export class BaseTarScanner extends Transform {
  bytes = 0;
  private pending: Buffer = Buffer.alloc(0);
  private member: Member | undefined;
  private zeroBlocks = 0;
  private ended = false;
  private label: string | undefined;
  private manifestTail: string | undefined;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.scan(chunk);
    } catch (err) {
      cb(err as Error);
      return;
    }
    this.bytes += chunk.length;
    cb(null, chunk);
  }

  private scan(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length && !this.ended) {
      if (this.member) {
        off += this.consume(this.member, chunk.subarray(off));
        continue;
      }
      const take = Math.min(BLOCK - this.pending.length, chunk.length - off);
      this.pending = this.pending.length === 0 && take === BLOCK ? chunk.subarray(off, off + BLOCK) : Buffer.concat([this.pending, chunk.subarray(off, off + take)]);
      off += take;
      if (this.pending.length === BLOCK) {
        this.header(this.pending);
        this.pending = Buffer.alloc(0);
      }
    }
  }

  private header(block: Buffer): void {
    if (block.every((b) => b === 0)) {
      // Two zero blocks end the archive; whatever follows is padding.
      this.ended = ++this.zeroBlocks >= 2;
      return;
    }
    if (this.zeroBlocks > 0 || !checksumMatches(block)) throw new BaseTarError(`pg_basebackup's output is not a valid tar (bad header at byte ${this.bytes})`);
    const name = memberName(block);
    const size = tarNumber(block.subarray(124, 136));
    const type = String.fromCharCode(block[156]!);
    const regular = type === '0' || type === '\0';
    const member: Member = { name, remaining: Math.ceil(size / BLOCK) * BLOCK, dataLeft: size };
    if (regular && name === 'backup_label') member.capture = { limit: LABEL_MAX, tail: false, chunks: [], kept: 0 };
    if (regular && name === 'backup_manifest') member.capture = { limit: MANIFEST_TAIL, tail: true, chunks: [], kept: 0 };
    this.member = member.remaining > 0 ? member : undefined;
    if (!this.member) this.finish(member);
  }

  /** Take what belongs to the current member from `data`; returns how many bytes it took. */
  private consume(member: Member, data: Buffer): number {
    const n = Math.min(member.remaining, data.length);
    const dataBytes = Math.min(member.dataLeft, n);
    if (member.capture && dataBytes > 0) this.keep(member.capture, data.subarray(0, dataBytes));
    member.dataLeft -= dataBytes;
    member.remaining -= n;
    if (member.remaining === 0) {
      this.member = undefined;
      this.finish(member);
    }
    return n;
  }

  private keep(capture: NonNullable<Member['capture']>, data: Buffer): void {
    // Copied: the chunk itself goes on downstream and may be reused.
    capture.chunks.push(Buffer.from(data));
    capture.kept += data.length;
    while (capture.tail && capture.kept - capture.chunks[0]!.length >= capture.limit) capture.kept -= capture.chunks.shift()!.length;
    if (!capture.tail && capture.kept > capture.limit) throw new BaseTarError(`backup_label is larger than ${capture.limit} bytes`);
  }

  private finish(member: Member): void {
    if (!member.capture) return;
    const text = Buffer.concat(member.capture.chunks).toString('utf8');
    if (member.name === 'backup_label') this.label = text;
    else this.manifestTail = text;
  }

  /** backup_label's start, once the tar has got that far (it is the first member). */
  labelStart(): { startLsn: string; startTimeline: number } | undefined {
    try {
      return this.label === undefined ? undefined : parseBackupLabel(this.label);
    } catch {
      return undefined;
    }
  }

  /** What the tar said, once it ended; a BaseTarError naming what is missing otherwise. */
  facts(): BaseTarFacts {
    if (!this.ended) throw new BaseTarError(`pg_basebackup's tar ended after ${this.bytes} bytes without its end-of-archive marker`);
    if (this.label === undefined) throw new BaseTarError('pg_basebackup\'s tar holds no backup_label');
    if (this.manifestTail === undefined) throw new BaseTarError('pg_basebackup\'s tar holds no backup_manifest (pgops needs PostgreSQL 13 or later, and no --no-manifest)');
    return { ...parseBackupLabel(this.label), walRanges: parseWalRanges(this.manifestTail), tarBytes: this.bytes };
  }
}

/** backup_label: `START WAL LOCATION: 0/2000028 (file ...)`, `CHECKPOINT LOCATION: ...`, `START TIMELINE: 1`. */
export function parseBackupLabel(text: string): { startLsn: string; startTimeline: number; checkpointLsn?: string } {
  const start = /^START WAL LOCATION: ([0-9A-F]+\/[0-9A-F]+)/m.exec(text);
  const timeline = /^START TIMELINE: (\d+)/m.exec(text);
  const checkpoint = /^CHECKPOINT LOCATION: ([0-9A-F]+\/[0-9A-F]+)/m.exec(text);
  if (!start || !timeline) throw new BaseTarError(`backup_label does not name its start (START WAL LOCATION, START TIMELINE): ${JSON.stringify(text.slice(0, 300))}`);
  return {
    startLsn: formatLsn(parseLsn(start[1]!)),
    startTimeline: Number(timeline[1]),
    ...(checkpoint ? { checkpointLsn: formatLsn(parseLsn(checkpoint[1]!)) } : {}),
  };
}

/** backup_manifest's `"WAL-Ranges": [ { "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100" } ]`. */
export function parseWalRanges(manifestTail: string): WalRange[] {
  const list = /"WAL-Ranges"\s*:\s*\[([^\]]*)\]/.exec(manifestTail);
  if (!list) throw new BaseTarError('backup_manifest has no WAL-Ranges');
  const ranges: WalRange[] = [];
  for (const m of list[1]!.matchAll(/\{[^}]*\}/g)) {
    const timeline = /"Timeline"\s*:\s*(\d+)/.exec(m[0]);
    const start = /"Start-LSN"\s*:\s*"([0-9A-Fa-f]+\/[0-9A-Fa-f]+)"/.exec(m[0]);
    const end = /"End-LSN"\s*:\s*"([0-9A-Fa-f]+\/[0-9A-Fa-f]+)"/.exec(m[0]);
    if (!timeline || !start || !end) throw new BaseTarError(`backup_manifest has a WAL range it does not spell out: ${m[0].slice(0, 200)}`);
    ranges.push({ timeline: Number(timeline[1]), startLsn: formatLsn(parseLsn(start[1]!)), endLsn: formatLsn(parseLsn(end[1]!)) });
  }
  if (ranges.length === 0) throw new BaseTarError('backup_manifest lists no WAL range');
  return ranges;
}
