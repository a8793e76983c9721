// The migration linter's public face: lint files, the gate of `migrate up`, destructive changes.
export { lintMigrationFiles, findDestructiveChanges, type LintResult, type LintTarget, type LintOptions } from './lint.ts';
export { lintGate, MigrationLintError, type LintGateInput } from './gate.ts';
export type { DestructiveChange, DestructiveKind } from './destructive.ts';
export { RULES } from './rules/index.ts';
export type { LintFinding, LintMode, LintReport, RuleId, Severity } from './types.ts';
