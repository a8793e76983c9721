// How a base tar is compressed on its way to storage. pgops compresses (not pg_basebackup's
// --compress=client-*, which PostgreSQL 15 accepts with -D -) because it must read backup_label and
// backup_manifest from the plain tar (tar-scan.ts). Levels were measured on a 525 MB tar (pgbench
// scale 20 + 150 MB random bytea, bench/basebackup.ts): gzip -1 182.9 MB in 7.2 s, -3 182.2 MB in
// 8.1 s, -6 180.4 MB in 12.2 s; zstd -1 176.3 MB in 0.9 s, -3 175.9 MB in 1.8 s. Higher levels buy
// under 1.5 % for 12-70 % more CPU on the machine that also runs pg_basebackup: level 1 it is.
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { Duplex } from 'node:stream';
import { constants as zlibConstants, createGzip } from 'node:zlib';
import type { PhysicalCompression } from '../catalog/layout.ts';
import { childEnvironment } from '../config.ts';
import { ConfigError, UsageError } from '../errors.ts';
import { COMPRESSION_LEVEL, parsePhysicalCompression, type PhysicalCompressionSpec } from '../pgtools/compression.ts';
import { describeExit, exitOk, startTool, type RunningTool } from '../pgtools/tools.ts';
import { BaseBackupError } from './errors.ts';

export { COMPRESSION_LEVEL } from '../pgtools/compression.ts';

/** Parses or throws a UsageError naming the setting. */
export function physicalCompressionOf(text: string): PhysicalCompressionSpec {
  const spec = parsePhysicalCompression(text);
  if (typeof spec === 'string') throw new UsageError('invalid base backup options', [`--compression / physical.compression ${spec}`]);
  return spec;
}

/** Node 20 has neither zstd nor lz4 in zlib: those run as the standard command-line tools. */
const EXTERNAL: Partial<Record<PhysicalCompression, { command: string; pkg: string }>> = {
  zstd: { command: 'zstd', pkg: 'zstd' },
  lz4: { command: 'lz4', pkg: 'lz4' },
};

export interface Compressor {
  /** Plain tar in, compressed bytes out. */
  stream: Duplex;
  /** Resolves once the compressor has finished cleanly; a BaseBackupError when its process failed. */
  finished(): Promise<void>;
  kill(): void;
}

function findOnPath(command: string): string | undefined {
  const dirs = (childEnvironment().PATH ?? '').split(delimiter).filter(Boolean);
  return dirs.map((d) => join(d, command)).find((p) => existsSync(p));
}

/** Refuse before anything starts when the configured compression cannot run here. */
export function checkCompression(compression: PhysicalCompression): void {
  const external = EXTERNAL[compression];
  if (external && !findOnPath(external.command)) {
    throw new ConfigError('invalid configuration', [
      `physical.compression "${compression}" needs the ${external.command} command, which is not installed here: install the ${external.pkg} package, or set physical.compression to "gzip"`,
    ]);
  }
}

function externalCompressor(compression: PhysicalCompression, level: number, signal: AbortSignal | undefined): Compressor {
  const external = EXTERNAL[compression]!;
  const command = findOnPath(external.command);
  if (!command) throw new BaseBackupError(`the ${external.command} command is not installed`);
  const tool: RunningTool = startTool({ command, args: ['-q', '-c', ...(compression === 'zstd' && level > 19 ? ['--ultra'] : []), `-${level}`], env: childEnvironment() }, { stdin: 'pipe', stdout: 'pipe', signal });
  return {
    stream: Duplex.from({ writable: tool.child.stdin!, readable: tool.child.stdout! }),
    async finished() {
      const exit = await tool.done;
      if (!exitOk(exit)) throw new BaseBackupError(describeExit(external.command, exit));
    },
    kill: () => tool.kill(),
  };
}

/** The compressor for `compression` at `level` (default: the measured level 1), or undefined for none. */
export function openCompressor(compression: PhysicalCompression, signal?: AbortSignal, level = COMPRESSION_LEVEL[compression]): Compressor | undefined {
  if (compression === 'none' || level === null) return undefined;
  if (compression === 'gzip') {
    // zlib runs on libuv's thread pool: beside pg_basebackup, not on the event loop.
    const gzip = createGzip({ level, chunkSize: 64 * 1024, strategy: zlibConstants.Z_DEFAULT_STRATEGY });
    return { stream: gzip, finished: () => Promise.resolve(), kill: () => gzip.destroy() };
  }
  return externalCompressor(compression, level, signal);
}
