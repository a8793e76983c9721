// The linter's findings as people and tools read them: text (`file:line rule message`), GitHub
// workflow annotations, and the rule list.
import { RULES } from './rules/index.ts';
import type { LintFinding, LintReport } from './types.ts';

/** An error finding remains: `migrate lint` exits 1, and `migrate up` refuses with migrate.lint "error". */
export function hasErrors(report: Pick<LintReport, 'findings'>): boolean {
  return report.findings.some((f) => f.severity === 'error');
}

/** `file:line rule message`, then the severity and the safe way on an indented line. */
export function findingLines(f: LintFinding): string[] {
  return [`${f.file}:${f.line} ${f.rule} ${f.message}`, `    ${f.severity}; safe: ${f.safe}`];
}

export function summary(report: LintReport): string {
  const errors = report.findings.filter((f) => f.severity === 'error').length;
  const warnings = report.findings.length - errors;
  const files = `${report.files} migration file${report.files === 1 ? '' : 's'}`;
  if (report.findings.length === 0) return `ok: ${files} linted, no findings`;
  return `${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'} in ${files}`;
}

export function formatText(report: LintReport): string {
  return [...report.findings.flatMap(findingLines), summary(report)].join('\n') + '\n';
}

/** GitHub Actions workflow commands: one annotation per finding, on its file and line. */
export function formatGithub(report: LintReport): string {
  const lines = report.findings.map((f) => {
    const level = f.severity === 'error' ? 'error' : 'warning';
    return `::${level} file=${property(f.file)},line=${f.line},title=${property(f.rule)}::${data(`${f.message}. Safe: ${f.safe}`)}`;
  });
  return [...lines, summary(report)].join('\n') + '\n';
}

export interface RuleList {
  rules: Array<{ id: string; severity: string; why: string; safe: string }>;
}

/** Every rule: id, severity, why, and the safe way. */
export function ruleList(): RuleList {
  return { rules: RULES.map(({ id, severity, why, safe }) => ({ id, severity, why, safe })) };
}

export function formatRules(list: RuleList): string {
  return list.rules.map((r) => `${r.id} (${r.severity})\n    why:  ${r.why}\n    safe: ${r.safe}`).join('\n') + '\n';
}

// https://docs.github.com/actions/reference/workflow-commands-for-github-actions (escaping)
function data(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function property(s: string): string {
  return data(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
}
