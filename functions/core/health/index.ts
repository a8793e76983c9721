export { runHealth, runHealthDetailed, type HealthRun } from './job.ts';
export type { BackupFacts } from './backups.ts';
export {
  CHECK_NAMES, HealthUnknownError, healthExitCode, statusRank, worstStatus,
  type CheckName, type CheckResult, type CheckStatus, type HealthDeps, type HealthOptions, type HealthResult, type HealthThresholds, type OverallStatus,
} from './types.ts';
