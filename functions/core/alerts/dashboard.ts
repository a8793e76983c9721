// The environment's CloudWatch dashboard (lib/constructs/dashboard.ts builds it): its name, and the
// console link every alert carries. Computed from the environment and the region the job runs in
// (Lambda and ECS set AWS_REGION: Settings.region), so no setting is needed; without a region (a
// local CLI run) there is no link.
import type { Alert } from './alerter.ts';

/** `pgops-<environment>`: the dashboard of an environment (the first one, when it takes several). */
export function dashboardName(environment: string): string {
  return `pgops-${environment}`;
}

// What the CDK config accepts as an environment name, and AWS region codes (us-east-1, us-gov-west-1, eu-central-2).
const ENVIRONMENT = /^[a-z][a-z0-9-]{0,19}$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;

/** The console link of a dashboard, from parts that may be tokens at synthesis (the region): not validated. */
export function dashboardConsoleUrl(region: string, name: string): string {
  return `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#dashboards/dashboard/${name}`;
}

/** The console link of the environment's dashboard; undefined without a region or with a name no deployment has. */
export function dashboardUrl(environment: string | undefined, region: string | undefined): string | undefined {
  if (!environment || !region || !ENVIRONMENT.test(environment) || !REGION.test(region)) return undefined;
  return dashboardConsoleUrl(region, dashboardName(environment));
}

/** A link of the shape dashboardUrl builds: the only kind an alert read back from SNS may carry. */
export function isDashboardUrl(v: unknown): v is string {
  return typeof v === 'string' && /^https:\/\/[a-z0-9-]+\.console\.aws\.amazon\.com\/cloudwatch\/home\?region=[a-z0-9-]+#dashboards\/dashboard\/[A-Za-z0-9_-]+$/.test(v);
}

/** The alert with its dashboard link: the one it carries, else the environment's in `region`, else none. */
export function withDashboard<T extends Alert>(alert: T, region: string | undefined): T {
  if (isDashboardUrl(alert.dashboard)) return alert;
  const { dashboard: _dropped, ...rest } = alert;
  const url = dashboardUrl(alert.environment, region);
  return (url ? { ...rest, dashboard: url } : rest) as T;
}
