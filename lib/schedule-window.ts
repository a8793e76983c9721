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

// --- Silence alarms: "the job has not succeeded within its schedule plus slack" -----------------
//
// CloudWatch limits an alarm's evaluation range (period x evaluation periods) to 7 days, and to
// 1 day when the period is under an hour (PutMetricAlarm). A silence alarm sums the job's success
// metric over a window of the schedule's longest gap plus slack, with missing data breaching: it
// fires when every period of the window is empty. Periods are whole hours (1 to 24), so the window
// may span up to 7 days: gaps of up to 167 h fit; a weekly job (168 h) leaves no room for slack and
// is watched through an age metric instead (the restore test: RestoreTestAgeHours from the health check).

export const MAX_ALARM_RANGE_HOURS = 7 * 24;

const DAY_NAMES: Record<string, number> = { SUN: 1, MON: 2, TUE: 3, WED: 4, THU: 5, FRI: 6, SAT: 7 };

/** The values a cron field allows within [min, max], or undefined for what this parser does not model (L, W, #). */
function cronValues(field: string, min: number, max: number, names: Record<string, number> = {}): number[] | undefined {
  const value = (s: string) => names[s.toUpperCase()] ?? (/^\d+$/.test(s) ? Number(s) : NaN);
  const out = new Set<number>();
  for (const part of field.split(',')) {
    const m = /^(\*|\?|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:\/(\d+))?$/.exec(part);
    if (!m) return undefined;
    const [range, step] = [m[1]!, m[2] === undefined ? 1 : Number(m[2])];
    let [lo, hi] = [min, max];
    if (range !== '*' && range !== '?') {
      const [a, b] = range.split('-');
      lo = value(a!);
      hi = b === undefined ? (m[2] === undefined ? lo : max) : value(b);
    }
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || step < 1 || lo < min || hi > max || lo > hi) return undefined;
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  return [...out].sort((x, y) => x - y);
}

/** The longest gap between consecutive values of a cycle of `length` (one value: the whole cycle). */
function longestGap(values: number[], length: number): number {
  let gap = 0;
  values.forEach((v, i) => { gap = Math.max(gap, (i + 1 < values.length ? values[i + 1]! : values[0]! + length) - v); });
  return gap;
}

/**
 * The longest time in hours between two runs of a schedule expression: exact for rate(), an upper
 * bound for cron() (hours and days of the week; a day-of-month or month rule counts as monthly,
 * 744 h); undefined for at(), which runs once.
 */
export function scheduleGapHours(expression: string): number | undefined {
  const rate = rateHours(expression);
  if (rate !== undefined) return rate;
  const m = /^cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)$/.exec(expression);
  if (!m) return undefined;
  const [, minute, hour, dom, month, dow] = m as unknown as [string, string, string, string, string, string];
  if ((dom !== '*' && dom !== '?') || month !== '*') return 31 * 24;
  const hours = cronValues(hour, 0, 23);
  const days = cronValues(dow, 1, 7, DAY_NAMES);
  const minutes = cronValues(minute, 0, 59);
  if (!hours || !days || !minutes) return 31 * 24;
  // Within a day: the longest gap between run hours (several minutes in one hour count as one hour).
  const withinDay = hours.length === 24 ? 1 : longestGap(hours, 24);
  if (days.length === 7) return withinDay;
  // Across days: the longest gap between run days, plus the day's own spread (an upper bound).
  return longestGap(days, 7) * 24 + (withinDay === 24 ? 0 : 24 - withinDay);
}

export type SilenceWindow =
  | { kind: 'sum'; period: Duration; evaluationPeriods: number; windowHours: number }
  | { kind: 'too-long'; gapHours: number }
  | { kind: 'once' };

const PERIOD_HOURS = [1, 2, 3, 4, 6, 8, 12, 24];

/**
 * The window of a silence alarm: the schedule's longest gap plus half of it as slack (at least
 * 1 h; less when the 7-day range leaves less), split into the shortest whole-hour period that
 * needs at most 24 evaluation periods.
 */
export function silenceWindow(expression: string): SilenceWindow {
  const gap = scheduleGapHours(expression);
  if (gap === undefined) return { kind: 'once' };
  if (gap + 1 > MAX_ALARM_RANGE_HOURS) return { kind: 'too-long', gapHours: gap };
  const windowHours = Math.ceil(Math.min(MAX_ALARM_RANGE_HOURS, Math.max(gap + 1, gap * 1.5)));
  const periodHours = PERIOD_HOURS.find((p) => Math.ceil(windowHours / p) <= 24 && Math.ceil(windowHours / p) * p <= MAX_ALARM_RANGE_HOURS) ?? 24;
  const evaluationPeriods = Math.min(Math.floor(MAX_ALARM_RANGE_HOURS / periodHours), Math.ceil(windowHours / periodHours));
  return { kind: 'sum', period: Duration.hours(periodHours), evaluationPeriods, windowHours: periodHours * evaluationPeriods };
}
