// `pgops pitr --rds-instance ID | --aurora-cluster ID ... --in-aws`: plan here (the target checked
// against the source's restore window, the copy named and tagged) and hand the run's state document
// to the database's state machine (lib/constructs/jobs/managed-pitr.ts), which restores, waits,
// produces the output on the Fargate task, deletes the copy and notifies. The document is the
// execution's input: no secret in it (the task reads the database's secret itself).
import { randomBytes } from 'node:crypto';
import type { Alerter } from '../../alerts/alerter.ts';
import type { ClientFactory } from '../../aws/clients.ts';
import type { Rds } from '../../aws/rds.ts';
import { findStateMachine, startExecution, type Sfn } from '../../aws/sfn.ts';
import type { ManagedConfig } from '../../config.ts';
import { ConfigError, UsageError } from '../../errors.ts';
import type { Logger } from '../../logger.ts';
import { redactString } from '../../redact.ts';
import { runJob } from '../../run-job.ts';
import { PitrError } from '../errors.ts';
import type { OutputFlags } from '../outputs.ts';
import type { TargetFlags } from '../targets.ts';
import { minuteStamp } from './naming.ts';
import { planManagedPitr } from './plan.ts';
import { parseManagedRequest } from './request.ts';
import { readSource } from './source.ts';
import { describeCopy, parseManagedPitrState, type ManagedPitrState } from './state.ts';

/** The state machine of one database (the CDK stack names it so). */
export function pitrStateMachineName(environment: string, databaseId: string): string {
  return `pgops-${environment}-${databaseId}-pitr`;
}

const STATE_MACHINE_ARN = /^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]{1,80}$/;

export interface InAwsDeps {
  rds: ClientFactory<Rds>;
  sfn: ClientFactory<Sfn>;
  config: ManagedConfig;
  logger: Logger;
  alerter: Alerter;
  environment: string;
  /** --database-id / PGOPS_DATABASE_ID: finds the state machine by name when --state-machine is not given. */
  databaseId?: string;
  clock?: () => Date;
  runId?: () => string;
}

export interface InAwsOptions {
  rdsInstance?: string;
  auroraCluster?: string;
  target: TargetFlags & { latest?: boolean };
  output: OutputFlags;
  backup?: string;
  keep?: boolean;
  dryRun?: boolean;
  /** The state machine's ARN (the stack's output PitrStateMachineArn<Db>). */
  stateMachine?: string;
}

export interface InAwsResult {
  inAws: true;
  /** False for --dry-run: the execution's input was planned, nothing started. */
  started: boolean;
  stateMachineArn: string;
  executionName: string;
  executionArn?: string;
  startDate?: string;
  source: ManagedPitrState['source'];
  target: ManagedPitrState['target'];
  window: ManagedPitrState['window'];
  copy: string;
  /** The execution's input: the run's state document. */
  input: ManagedPitrState;
  /** Commands that follow the execution. */
  follow: string[];
}

const newRunId = (): string => randomBytes(6).toString('hex');

/** Unique per run, readable in the console: <source>-<minute of the target>-<run id> (80 characters at most). */
export function executionName(state: ManagedPitrState, at: Date): string {
  return `${state.source.id.slice(0, 50)}-${minuteStamp(at)}-${state.runId}`.slice(0, 80);
}

async function resolveStateMachine(deps: InAwsDeps, sfn: () => Promise<Sfn>, given: string | undefined): Promise<string> {
  if (given !== undefined) {
    if (!STATE_MACHINE_ARN.test(given)) throw new UsageError('invalid --state-machine', [`--state-machine ${JSON.stringify(given.slice(0, 120))}: must be a state machine ARN (arn:aws:states:<region>:<account>:stateMachine:<name>), the stack output PitrStateMachineArn<Db>`]);
    return given;
  }
  if (deps.databaseId === undefined) {
    throw new ConfigError('invalid configuration', ['--in-aws needs the state machine: give --state-machine ARN (the stack output PitrStateMachineArn<Db>), or --database-id ID to find pgops-<environment>-<id>-pitr']);
  }
  const name = pitrStateMachineName(deps.environment, deps.databaseId);
  const arn = await findStateMachine(await sfn(), name);
  if (!arn) throw new PitrError(`no state machine ${name} in this account and region: deploy the database's stack with managed.rdsInstance or managed.auroraCluster, or give --state-machine ARN`);
  return arn;
}

export function startManagedPitrInAws(deps: InAwsDeps, options: InAwsOptions): Promise<InAwsResult> {
  return runJob({ alerter: deps.alerter, logger: deps.logger, databaseId: deps.databaseId ?? 'unknown', environment: deps.environment }, {
    job: 'pitr',
    silent: options.dryRun,
    wrap: (m, cause) => new PitrError(`pitr --in-aws failed: ${redactString(m)}`, { cause }),
  }, async () => {
    const request = parseManagedRequest({ rdsInstance: options.rdsInstance, auroraCluster: options.auroraCluster, target: options.target, output: options.output, backup: options.backup });
    let sfnClient: Promise<Sfn> | undefined;
    const sfn = () => (sfnClient ??= Promise.resolve(deps.sfn()));
    const stateMachineArn = await resolveStateMachine(deps, sfn, options.stateMachine);
    const source = await readSource(await deps.rds(), request.source);
    const now = (deps.clock ?? (() => new Date()))();
    const planned = planManagedPitr({
      source, target: request.target, output: request.output, config: deps.config, now, keep: !!options.keep,
      runId: (deps.runId ?? newRunId)(), environment: deps.environment,
    });
    // What the state machine and its task will parse: checked here, once.
    const { state, issues } = parseManagedPitrState(JSON.parse(JSON.stringify(planned)));
    if (!state) throw new PitrError(`the planned state is not a valid input: ${issues.join('; ')}`);
    const at = state.target.type === 'time' ? new Date(state.target.value) : now;
    const name = executionName(state, at);
    const base = {
      inAws: true as const, stateMachineArn, executionName: name, source: state.source, target: state.target, window: state.window,
      copy: describeCopy(state), input: state,
    };
    if (options.dryRun) {
      return { ...base, started: false, follow: [`aws stepfunctions start-execution --state-machine-arn ${stateMachineArn} --name ${name} --input file://input.json`] };
    }
    const started = await startExecution(await sfn(), { stateMachineArn, name, input: JSON.stringify(state) });
    deps.logger.info(`started ${name} on ${stateMachineArn}: restore ${state.source.id} into ${describeCopy(state)}`);
    return {
      ...base, started: true, executionArn: started.executionArn, startDate: started.startDate.toISOString(),
      follow: [
        `aws stepfunctions describe-execution --execution-arn ${started.executionArn} --query status`,
        `aws stepfunctions get-execution-history --execution-arn ${started.executionArn} --reverse-order --max-items 5`,
      ],
    };
  });
}
