// Progress for long transfers: bytes moved and rate, redrawn in place on a terminal.
// Nothing at all with --json or when stderr is not a terminal (CI logs, pipes).
import { formatBytes } from '../../functions/core/format.ts';

export interface Progress {
  update(p: { bytes: number; elapsedMs: number; total?: number }): void;
  done(): void;
}

export function formatProgress(label: string, p: { bytes: number; elapsedMs: number; total?: number }): string {
  const secs = Math.max(p.elapsedMs / 1000, 0.001);
  const rate = `${formatBytes(p.bytes / secs)}/s`;
  const pct = p.total ? ` ${Math.min(100, (100 * p.bytes) / p.total).toFixed(0)}% of ${formatBytes(p.total)}` : '';
  const mm = String(Math.floor(secs / 60)).padStart(2, '0');
  const ss = String(Math.floor(secs % 60)).padStart(2, '0');
  return `${label}: ${formatBytes(p.bytes)}${pct}  ${rate}  ${mm}:${ss}`;
}

// The progress line being drawn, so a log line can clear it first instead of running into it.
let active: { clear(): void } | undefined;

/** Clear the progress line, if one is drawn; the next update redraws it. */
export function clearProgressLine(): void {
  active?.clear();
}

export function createProgress(label: string, options: { enabled: boolean; write?: (s: string) => void }): Progress {
  if (!options.enabled) return { update() {}, done() {} };
  const write = options.write ?? ((s: string) => process.stderr.write(s));
  let drawn = false;
  let last = '';
  const handle = {
    clear() {
      if (drawn) write('\r\x1b[2K');
      drawn = false;
    },
  };
  active = handle;
  return {
    update(p) {
      last = formatProgress(label, p);
      write(`\r\x1b[2K${last}`);
      drawn = true;
    },
    done() {
      if (active === handle) active = undefined;
      // Leave the final figures on screen.
      if (last) write(`\r\x1b[2K${last}\n`);
    },
  };
}

/** Progress is for people: a terminal on stderr, and not --json. */
export function progressEnabled(json: boolean | undefined): boolean {
  return !json && Boolean(process.stderr.isTTY);
}
