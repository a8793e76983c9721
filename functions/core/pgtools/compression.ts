// How backups are compressed. A logical dump: `gzip:N` (0-9; `gzip` alone is pg_dump's default 6),
// `lz4`, `zstd:N` (1-22) or `none`, as pg_dump's own --compress; gzip and none run with any pg_dump,
// lz4 and zstd need pg_dump 16 or newer (PostgreSQL 15's pg_dump knows only zlib levels). A base
// backup's tar (physical/compression.ts): the same methods, a bare one at the measured level 1.
import * as z from 'zod';
import { ConfigError } from '../errors.ts';
import type { PhysicalCompression } from '../catalog/layout.ts';
import type { ToolVersion } from './tools.ts';

export type CompressionMethod = 'gzip' | 'lz4' | 'zstd' | 'none';

export interface CompressionSpec {
  method: CompressionMethod;
  /** gzip 0-9, zstd 1-22; undefined: the method's default (lz4 has none to set). */
  level?: number;
}

const LEVELS: Record<CompressionMethod, [number, number] | null> = { gzip: [0, 9], zstd: [1, 22], lz4: null, none: null };

/** The default for new backups, chosen on the bench (README "Compression"): zlib level 1. */
export const DEFAULT_DUMP_COMPRESSION = 'gzip:1';

/** Parses `gzip:6`, `zstd:3`, `lz4`, `none`; a message naming the accepted forms otherwise. */
export function parseCompression(text: string): CompressionSpec | string {
  const m = /^(gzip|lz4|zstd|none)(?::(\d{1,2}))?$/.exec(text.trim());
  const accepted = 'expected gzip:N (0-9), zstd:N (1-22), lz4 or none';
  if (!m) return `"${text}": ${accepted}`;
  const method = m[1] as CompressionMethod;
  if (m[2] === undefined) return { method };
  const range = LEVELS[method];
  const level = Number(m[2]);
  if (!range) return `"${text}": ${method} takes no level (${accepted})`;
  if (level < range[0] || level > range[1]) return `"${text}": ${method} levels run from ${range[0]} to ${range[1]}`;
  return { method, level };
}

/** The zod field for the setting: a string that parses. */
export const compressionSetting = z.string().superRefine((s, ctx) => {
  const parsed = parseCompression(s);
  if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', message: parsed });
});

/** The canonical text of a spec, as recorded in a manifest (`gzip` alone becomes `gzip:6`). */
export function formatCompression(spec: CompressionSpec): string {
  if (spec.method === 'gzip') return `gzip:${spec.level ?? 6}`;
  return spec.level === undefined ? spec.method : `${spec.method}:${spec.level}`;
}

/** Parses or throws a ConfigError naming the setting. */
export function compressionOf(text: string, setting = 'backup.compression'): CompressionSpec {
  const spec = parseCompression(text);
  if (typeof spec === 'string') throw new ConfigError('invalid configuration', [`${setting} ${spec}`]);
  return spec;
}

/**
 * pg_dump's --compress for `spec`: a plain level where PostgreSQL 15 understands it, the
 * method:level form otherwise; refused when this pg_dump is too old for the method.
 */
export function pgDumpCompressArg(spec: CompressionSpec, pgDump: ToolVersion): string {
  if (spec.method === 'gzip') return `--compress=${spec.level ?? 6}`;
  if (spec.method === 'none') return '--compress=0';
  if (pgDump.num < 160000) {
    throw new ConfigError('invalid configuration', [
      `backup.compression "${formatCompression(spec)}" needs pg_dump 16 or newer, and this one is ${Math.floor(pgDump.num / 10000)}: install newer client tools (PGOPS_PG_BINDIR) or use gzip:N`,
    ]);
  }
  return `--compress=${formatCompression(spec)}`;
}

/** A base backup's default level per method (measured: physical/compression.ts). */
export const COMPRESSION_LEVEL: Record<PhysicalCompression, number | null> = { gzip: 1, zstd: 1, lz4: 1, none: null };

/** The levels each method takes (`zstd:N` above 19 runs with --ultra). */
const LEVEL_RANGE: Record<PhysicalCompression, [number, number] | null> = { gzip: [1, 9], zstd: [1, 22], lz4: [1, 12], none: null };

export interface PhysicalCompressionSpec {
  method: PhysicalCompression;
  /** null for none. */
  level: number | null;
}

/**
 * `physical.compression` / `basebackup --compression`: gzip, zstd, lz4 or none, optionally with a
 * level (`zstd:3`, `gzip:6`, `lz4:9`); a bare method takes the measured default, level 1.
 */
export function parsePhysicalCompression(text: string): PhysicalCompressionSpec | string {
  const m = /^(gzip|zstd|lz4|none)(?::(\d{1,2}))?$/.exec(text.trim());
  if (!m) return `"${text}": expected gzip[:1-9], zstd[:1-22], lz4[:1-12] or none`;
  const method = m[1] as PhysicalCompression;
  const range = LEVEL_RANGE[method];
  if (m[2] === undefined) return { method, level: COMPRESSION_LEVEL[method] };
  const level = Number(m[2]);
  if (!range) return `"${text}": none takes no level`;
  if (level < range[0] || level > range[1]) return `"${text}": ${method} levels run from ${range[0]} to ${range[1]}`;
  return { method, level };
}
