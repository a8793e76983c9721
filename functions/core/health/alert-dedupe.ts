// Health alert dedupe per (database, check), with the state in <database>/state/alerts.json:
// a check that stays failing is not re-sent within health.alertRepeatHours unless its status
// rises, and a recovery sends `resolved`. planHealthAlerts is pure; the rest is storage and sending.
import type { Alert, Alerter } from '../alerts/alerter.ts';
import { stateKeys } from '../catalog/layout.ts';
import { errorMessage } from '../errors.ts';
import type { CheckResult, CheckStatus, HealthResult } from './types.ts';
import { statusRank } from './types.ts';
import type { Logger } from '../logger.ts';
import { redactString } from '../redact.ts';
import type { Storage } from '../storage/types.ts';

export interface CheckAlertState {
  status: CheckStatus;
  /** When the check started failing. */
  since: string;
  lastSentAt: string;
  /** The status last notified: only a higher one is re-sent early. */
  lastSentStatus: CheckStatus;
  summary: string;
}

export interface AlertState {
  version: 1;
  checks: Record<string, CheckAlertState>;
}

export type AlertChange = 'new' | 'escalated' | 'repeat';

export interface AlertPlan {
  alerts: Alert[];
  state: AlertState;
  /** Checks in the failure alert, with why they are sent. */
  notified: Array<{ name: string; change: AlertChange }>;
  resolved: string[];
  /** Failing checks not re-sent (inside the repeat window). */
  suppressed: string[];
}

export interface PlanOptions {
  now: Date;
  repeatHours: number;
  runId?: string;
  job?: string;
}

export function emptyAlertState(): AlertState {
  return { version: 1, checks: {} };
}

const failing = (s: CheckStatus): boolean => s === 'warning' || s === 'critical' || s === 'unknown';

/** Alerts have no `unknown`: a check that cannot run is worth a warning, not a page. */
function severityOf(statuses: CheckStatus[]): 'critical' | 'warning' {
  return statuses.includes('critical') ? 'critical' : 'warning';
}

function line(c: Pick<CheckResult, 'name' | 'status' | 'summary'>): string {
  return `${c.name} ${c.status}: ${c.summary}`;
}

function joinSummary(parts: string[], max = 400): string {
  const s = parts.join('; ');
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}

interface Transitions {
  state: AlertState;
  notified: AlertPlan['notified'];
  resolved: Array<{ check: CheckResult; was: CheckAlertState }>;
  suppressed: string[];
}

/** Why a failing check is sent now, or undefined to hold it back (inside the repeat window). */
function changeOf(c: CheckResult, prev: CheckAlertState | undefined, o: PlanOptions): AlertChange | undefined {
  if (!prev) return 'new';
  if (statusRank(c.status) > statusRank(prev.lastSentStatus)) return 'escalated';
  const lastSent = Date.parse(prev.lastSentAt);
  if (Number.isNaN(lastSent) || o.now.getTime() - lastSent >= o.repeatHours * 3_600_000) return 'repeat';
  return undefined;
}

/** Compare each check with what was last notified: new state, and which checks to send, resolve or hold back. */
function transitions(result: HealthResult, previous: AlertState, o: PlanOptions): Transitions {
  const now = o.now.toISOString();
  const t: Transitions = { state: { version: 1, checks: {} }, notified: [], resolved: [], suppressed: [] };
  for (const c of result.checks) {
    const prev = previous.checks[c.name];
    if (!failing(c.status)) {
      if (prev) t.resolved.push({ check: c, was: prev });
      continue;
    }
    const change = changeOf(c, prev, o);
    if (change) {
      t.notified.push({ name: c.name, change });
      t.state.checks[c.name] = { status: c.status, since: prev?.since ?? now, lastSentAt: now, lastSentStatus: c.status, summary: c.summary };
    } else {
      t.suppressed.push(c.name);
      t.state.checks[c.name] = { ...prev!, status: c.status, summary: c.summary };
    }
  }
  return t;
}

/** What every alert of one run shares. */
interface AlertContext {
  base: Pick<Alert, 'job' | 'database' | 'environment'>;
  time: string;
  runId?: string;
}

/** One alert for every check sent now, worst first. */
function failureAlert(result: HealthResult, t: Transitions, { base, time, runId }: AlertContext): Alert {
  const checks = t.notified.map((n) => result.checks.find((c) => c.name === n.name)!);
  const order = [...checks].sort((a, b) => statusRank(b.status) - statusRank(a.status));
  const stillFailing = t.suppressed.map((n) => result.checks.find((c) => c.name === n)!);
  return {
    ...base,
    severity: severityOf(checks.map((c) => c.status)),
    summary: joinSummary(order.map(line)),
    time,
    details: {
      overall: result.status,
      ...(runId ? { runId } : {}),
      checks: order.map((c) => ({ name: c.name, status: c.status, summary: c.summary, value: c.value, threshold: c.threshold, change: t.notified.find((n) => n.name === c.name)!.change })),
      ...(stillFailing.length > 0 ? { alsoFailing: stillFailing.map((c) => c.name).join(', ') } : {}),
    },
  };
}

/** One `resolved` alert for every check that recovered. */
function resolvedAlert(result: HealthResult, t: Transitions, { base, time, runId }: AlertContext): Alert {
  const stillBad = result.checks.filter((c) => failing(c.status)).map((c) => c.name);
  return {
    ...base,
    severity: 'resolved',
    summary: joinSummary([`recovered: ${t.resolved.map((r) => r.check.name).join(', ')}`, stillBad.length > 0 ? `still failing: ${stillBad.join(', ')}` : `overall ${result.status}`]),
    time,
    details: {
      overall: result.status,
      ...(runId ? { runId } : {}),
      checks: t.resolved.map((r) => ({ name: r.check.name, status: r.check.status, summary: r.check.summary, was: r.was.status, failingSince: r.was.since })),
    },
  };
}

export function planHealthAlerts(result: HealthResult, previous: AlertState, o: PlanOptions): AlertPlan {
  const t = transitions(result, previous, o);
  const ctx: AlertContext = { base: { job: o.job ?? 'health', database: result.database, environment: result.environment }, time: o.now.toISOString(), ...(o.runId ? { runId: o.runId } : {}) };
  const alerts: Alert[] = [];
  if (t.notified.length > 0) alerts.push(failureAlert(result, t, ctx));
  if (t.resolved.length > 0) alerts.push(resolvedAlert(result, t, ctx));
  return { alerts, state: t.state, notified: t.notified, resolved: t.resolved.map((r) => r.check.name), suppressed: t.suppressed };
}

export function alertStateKey(databaseId: string): string {
  return stateKeys(databaseId).alerts;
}

export async function readAlertState(storage: Storage, databaseId: string): Promise<AlertState> {
  const raw = await storage.getBytes(alertStateKey(databaseId));
  if (!raw) return emptyAlertState();
  try {
    const json = JSON.parse(raw.toString('utf8')) as Partial<AlertState>;
    const checks: Record<string, CheckAlertState> = {};
    for (const [name, v] of Object.entries(json.checks ?? {})) {
      if (v && typeof v.status === 'string' && typeof v.lastSentAt === 'string' && typeof v.lastSentStatus === 'string') checks[name] = v;
    }
    return { version: 1, checks };
  } catch {
    return emptyAlertState(); // a damaged file costs at most one repeated alert
  }
}

export async function writeAlertState(storage: Storage, databaseId: string, state: AlertState): Promise<void> {
  await storage.putBytes(alertStateKey(databaseId), `${JSON.stringify(state, null, 2)}\n`, { contentType: 'application/json' });
}

export interface DeliverDeps {
  result: HealthResult;
  alerter: Alerter;
  logger: Logger;
  repeatHours: number;
  /** Without storage there is no dedupe: every failing run alerts, and no `resolved` is known. */
  storage?: Storage;
  clock?: () => Date;
  runId?: string;
}

export interface Delivery {
  sent: Alert[];
  suppressed: string[];
}

/**
 * Plan, send and remember. Never throws: a broken destination or storage is logged and the health
 * result stands. A failed send keeps the previous state for its checks, so the next run tries again.
 */
export async function deliverHealthAlerts(d: DeliverDeps): Promise<Delivery> {
  const now = (d.clock ?? (() => new Date()))();
  const id = d.result.database;
  let previous = emptyAlertState();
  let stateReadable = true;
  if (d.storage) {
    try {
      previous = await readAlertState(d.storage, id);
    } catch (err) {
      stateReadable = false;
      d.logger.warn('could not read the alert state; alerting without dedupe', { error: redactString(errorMessage(err)) });
    }
  }
  const plan = planHealthAlerts(d.result, previous, { now, repeatHours: d.repeatHours, runId: d.runId });
  const state = plan.state;
  const sent: Alert[] = [];
  for (const alert of plan.alerts) {
    try {
      await d.alerter.send(alert);
      sent.push(alert);
    } catch (err) {
      d.logger.error('could not send the health alert', { error: redactString(errorMessage(err)), severity: alert.severity });
      const names = alert.severity === 'resolved' ? plan.resolved : plan.notified.map((n) => n.name);
      for (const n of names) {
        const prev = previous.checks[n];
        if (prev) state.checks[n] = prev;
        else delete state.checks[n];
      }
    }
  }
  if (d.storage && stateReadable) {
    const changed = JSON.stringify(state) !== JSON.stringify(previous);
    if (changed) {
      try {
        await writeAlertState(d.storage, id, state);
      } catch (err) {
        d.logger.warn('could not save the alert state', { error: redactString(errorMessage(err)) });
      }
    }
  }
  if (plan.suppressed.length > 0) d.logger.info('alerts already sent, not repeated', { checks: plan.suppressed.join(', ') });
  return { sent, suppressed: plan.suppressed };
}
