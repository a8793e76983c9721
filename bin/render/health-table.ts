// The readable form of a health result: a status line (as a monitoring plugin prints) and a table.
import { redactString } from '../../functions/core/redact.ts';
import type { CheckStatus, HealthResult } from '../../functions/core/health/types.ts';

const LABEL: Record<CheckStatus, string> = { ok: 'OK', info: 'INFO', warning: 'WARNING', critical: 'CRITICAL', unknown: 'UNKNOWN' };
const COLOR: Record<CheckStatus, string> = { ok: '32', info: '36', warning: '33', critical: '31', unknown: '35' };

function paint(s: string, status: CheckStatus, color: boolean): string {
  return color ? `\u001b[${COLOR[status]}m${s}\u001b[0m` : s;
}

function shorten(s: string, width: number): string {
  return s.length > width ? `${s.slice(0, width - 3)}...` : s;
}

export function formatHealthTable(r: HealthResult, options: { color?: boolean; width?: number } = {}): string {
  const color = options.color ?? false;
  const width = Math.max(60, options.width ?? 120);
  const failing = r.checks.filter((c) => c.status !== 'ok' && c.status !== 'info');
  const counts = (['critical', 'unknown', 'warning'] as const)
    .map((s) => [s, r.checks.filter((c) => c.status === s).length] as const)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${n} ${s}`);
  const lines: string[] = [];
  lines.push(`${paint(LABEL[r.status], r.status, color)} - ${r.environment}/${r.database}: ${failing.length === 0 ? 'all checks passed' : counts.join(', ')} (${r.checks.length} checks, ${r.durationMs} ms)`);
  lines.push('');
  const nameWidth = Math.max(5, ...r.checks.map((c) => c.name.length));
  const statusWidth = 8;
  const summaryWidth = width - nameWidth - statusWidth - 4;
  lines.push(`${'CHECK'.padEnd(nameWidth)}  ${'STATUS'.padEnd(statusWidth)}  SUMMARY`);
  for (const c of r.checks) {
    const label = LABEL[c.status].padEnd(statusWidth);
    lines.push(`${c.name.padEnd(nameWidth)}  ${paint(label, c.status, color)}  ${shorten(redactString(c.summary).replace(/\s+/g, ' '), summaryWidth)}`);
  }
  return `${lines.join('\n')}\n`;
}
