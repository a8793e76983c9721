import { describe, expect, it } from 'vitest';
import { formatHealthTable } from '../../../../bin/render/health-table.ts';
import { worstStatus, type CheckResult, type CheckStatus, type HealthResult } from '../../../../functions/core/health/types.ts';

function result(statuses: Partial<Record<string, CheckStatus>>): HealthResult {
  const checks = Object.entries({ connection: 'ok', 'backup-age': 'ok', bloat: 'ok', ...statuses }).map(([name, status]) => ({ name, status, summary: `${name} is ${status}` }) as CheckResult);
  return { status: worstStatus(checks.map((c) => c.status)), checks, database: 'app', environment: 'prod', checkedAt: '2026-11-22T00:00:00Z', durationMs: 1 };
}

describe('health table', () => {
  it('prints a status line and a table', () => {
    const text = formatHealthTable(result({ 'backup-age': 'critical', bloat: 'warning' }));
    expect(text.split('\n')[0]).toBe('CRITICAL - prod/app: 1 critical, 1 warning (3 checks, 1 ms)');
    expect(text).toMatch(/backup-age\s+CRITICAL\s+backup-age is critical/);
    expect(text).not.toContain('\u001b[');
    expect(formatHealthTable(result({}), { color: true })).toContain('\u001b[32mOK');
  });
});

