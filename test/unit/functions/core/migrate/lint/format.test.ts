import { describe, expect, it } from 'vitest';
import { formatGithub, formatRules, formatText, ruleList } from '../../../../../../functions/core/migrate/lint/format.ts';
import { RULES } from '../../../../../../functions/core/migrate/lint/rules/index.ts';
import type { LintReport } from '../../../../../../functions/core/migrate/lint/types.ts';

const REPORT: LintReport = {
  files: 2,
  findings: [
    { file: 'migrations/009_orders.sql', line: 3, rule: 'require-concurrent-index-creation', severity: 'error', message: 'CREATE INDEX on orders (38.0 GiB, 210M rows) without CONCURRENTLY', safe: 'CREATE INDEX CONCURRENTLY, 100% safe:\nreally' },
    { file: 'migrations/010,odd:name.sql', line: 7, rule: 'prefer-text-field', severity: 'warning', message: 'column name of people is varchar(50)', safe: 'text' },
  ],
};

describe('lint output', () => {
  it('text: file:line rule message, then severity and safe form, then a summary', () => {
    expect(formatText(REPORT).split('\n')).toEqual([
      'migrations/009_orders.sql:3 require-concurrent-index-creation CREATE INDEX on orders (38.0 GiB, 210M rows) without CONCURRENTLY',
      '    error; safe: CREATE INDEX CONCURRENTLY, 100% safe:\nreally'.split('\n')[0],
      'really',
      'migrations/010,odd:name.sql:7 prefer-text-field column name of people is varchar(50)',
      '    warning; safe: text',
      '1 error, 1 warning in 2 migration files',
      '',
    ]);
    expect(formatText({ files: 8, findings: [] })).toBe('ok: 8 migration files linted, no findings\n');
  });

  it('github: one workflow annotation per finding, escaped as GitHub reads them', () => {
    expect(formatGithub(REPORT).split('\n')).toEqual([
      '::error file=migrations/009_orders.sql,line=3,title=require-concurrent-index-creation::CREATE INDEX on orders (38.0 GiB, 210M rows) without CONCURRENTLY. Safe: CREATE INDEX CONCURRENTLY, 100%25 safe:%0Areally',
      '::warning file=migrations/010%2Codd%3Aname.sql,line=7,title=prefer-text-field::column name of people is varchar(50). Safe: text',
      '1 error, 1 warning in 2 migration files',
      '',
    ]);
  });

  it('the rule list names every rule with its severity, why and safe form', () => {
    const text = formatRules(ruleList());
    for (const r of RULES) expect(text).toContain(`${r.id} (${r.severity})\n    why:  ${r.why}\n    safe: ${r.safe}`);
  });
});
