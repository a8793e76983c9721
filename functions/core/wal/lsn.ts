// WAL positions and segment names, as PostgreSQL computes them (xlog_internal.h): an LSN is a
// 64-bit byte position written `X/Y` (high and low 32 bits in hex); a segment file holds
// `wal_segment_size` bytes of it and is named timeline + (segno / segments per 4 GiB) + (segno %
// segments per 4 GiB), each 8 uppercase hex digits.
import { ConfigError } from '../errors.ts';

/** PostgreSQL's default wal_segment_size (initdb --wal-segsize can change it: manifests record it). */
export const DEFAULT_WAL_SEGMENT_SIZE = 16 * 1024 * 1024;

const LSN = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;
const SEGMENT = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/;

export function isLsn(text: string): boolean {
  return LSN.test(text);
}

/** `0/3000028` -> 50331688n; a ConfigError naming the expected form otherwise. */
export function parseLsn(text: string): bigint {
  const m = LSN.exec(text.trim());
  if (!m) throw new ConfigError(`"${text.slice(0, 40)}" is not an LSN: expected two hex numbers separated by a slash, e.g. 0/3000028`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** 50331688n -> `0/3000028`, as PostgreSQL prints it. */
export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

function checkSegmentSize(segmentSize: number): bigint {
  // initdb allows powers of two from 1 MiB to 1 GiB.
  if (!Number.isInteger(segmentSize) || segmentSize < 1 << 20 || segmentSize > 1 << 30 || (segmentSize & (segmentSize - 1)) !== 0) {
    throw new ConfigError(`WAL segment size ${segmentSize} is not a power of two between 1 MiB and 1 GiB`);
  }
  return BigInt(segmentSize);
}

/** The number of the segment holding `lsn`. */
export function segmentNumberOf(lsn: bigint, segmentSize = DEFAULT_WAL_SEGMENT_SIZE): bigint {
  return lsn / checkSegmentSize(segmentSize);
}

/** The first LSN of segment `segno`. */
export function segmentStartLsn(segno: bigint, segmentSize = DEFAULT_WAL_SEGMENT_SIZE): bigint {
  return segno * checkSegmentSize(segmentSize);
}

const hex8 = (n: bigint | number): string => n.toString(16).toUpperCase().padStart(8, '0');

/** The file name of segment `segno` on `timeline`, e.g. 000000010000000000000003. */
export function segmentFileName(timeline: number, segno: bigint, segmentSize = DEFAULT_WAL_SEGMENT_SIZE): string {
  const perId = 0x100000000n / checkSegmentSize(segmentSize);
  return `${hex8(timeline)}${hex8(segno / perId)}${hex8(segno % perId)}`;
}

/** The file name of the segment holding `lsn` on `timeline`. */
export function segmentFileNameOf(timeline: number, lsn: bigint, segmentSize = DEFAULT_WAL_SEGMENT_SIZE): string {
  return segmentFileName(timeline, segmentNumberOf(lsn, segmentSize), segmentSize);
}

/** `000000020000000100000003` -> timeline 2, segno; undefined for anything else (no suffixes). */
export function parseSegmentFileName(name: string, segmentSize = DEFAULT_WAL_SEGMENT_SIZE): { timeline: number; segno: bigint } | undefined {
  const m = SEGMENT.exec(name);
  if (!m) return undefined;
  const perId = 0x100000000n / checkSegmentSize(segmentSize);
  const low = BigInt(`0x${m[3]}`);
  // A segment number beyond the last of its 4 GiB is not a name PostgreSQL writes at this size.
  if (low >= perId) return undefined;
  const timeline = Number.parseInt(m[1]!, 16);
  if (timeline === 0) return undefined;
  return { timeline, segno: BigInt(`0x${m[2]}`) * perId + low };
}

/** 8 hex digits of a timeline, as in WAL and history file names. */
export function timelineHex(timeline: number): string {
  return hex8(timeline);
}
