// The backup-age alarm treats missing data as breaching, so its period must be at least the
// health check's interval: otherwise the empty periods between two runs would raise it.
import { Duration } from 'aws-cdk-lib';

/** Hours between two runs of a rate() expression; undefined for cron() and at(). */
export function rateHours(expression: string): number | undefined {
  const m = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expression);
  if (!m) return undefined;
  const n = Number(m[1]);
  return m[2]!.startsWith('minute') ? n / 60 : m[2]!.startsWith('hour') ? n : n * 24;
}

/**
 * Period: the interval rounded up to whole hours (a cron schedule is assumed to run at least
 * daily), 1 to 24 hours. Two periods in a row must breach when a period is shorter than 6 hours,
 * so one late run does not page.
 */
export function healthAlarmWindow(healthExpression: string): { period: Duration; evaluationPeriods: number } {
  const hours = Math.min(24, Math.max(1, Math.ceil(rateHours(healthExpression) ?? 24)));
  return { period: Duration.hours(hours), evaluationPeriods: hours < 6 ? 2 : 1 };
}
