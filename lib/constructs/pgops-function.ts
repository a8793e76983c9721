// One Lambda function as pgops deploys it: its own inline least-privilege role, an explicit log
// group with retention, an SQS on-failure destination, optionally the database's subnets and
// security groups, and alarms on errors, throttles and a duration near the timeout.
import { Duration } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { BUNDLE, PARSER_WASM } from '../bundling.ts';
import { ENV } from '../../functions/core/config.ts';
import { acknowledge, NAG } from '../nag.ts';
import { topicAlarm } from './alarm.ts';

/** Where the functions and the task reach the database. */
export interface NetworkPlacement {
  vpcId: string;
  subnetIds: string[];
  securityGroupIds: string[];
}

/** A NodejsFunction entry; extra files are placed beside the bundle (the function's cwd is /var/task). */
export interface NodeCode {
  entry: string;
  /** Copy migrations/ next to index.mjs. */
  withMigrations?: boolean;
  /** Written as pgops-config.json next to index.mjs (the runtime's PGOPS_CONFIG). */
  configJson?: string;
}

export interface PgopsFunctionProps {
  /** Short job name for alarm names and descriptions: migrate, backup, ... */
  job: string;
  /** auth, billing, ...; absent for shared functions. */
  databaseId?: string;
  environmentName: string;
  description: string;
  code: { node: NodeCode; repoRoot: string } | { image: lambda.DockerImageCode };
  timeout: Duration;
  memorySize: number;
  environment: Record<string, string>;
  network?: NetworkPlacement;
  architecture: lambda.Architecture;
  logRetention: logs.RetentionDays;
  onFailure: sqs.IQueue;
  /** Lambda's own retries of a failed asynchronous invocation. */
  retryAttempts: number;
  alarmTopic: sns.ITopic;
  /** What on-call should do when this function errors (in the alarm description). */
  onError: string;
  /** X-Ray active tracing and the Powertools tracer (config `tracing`); off, the tracer is told so. */
  tracing: boolean;
}

/** Where NodejsFunction bundles go in Lambda. */
export const TASK_ROOT = '/var/task';
export const CONFIG_FILE = 'pgops-config.json';

export function lambdaArchitecture(architecture: 'arm64' | 'x86_64'): lambda.Architecture {
  return architecture === 'arm64' ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64;
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function bundlingFor(code: NodeCode): nodejs.BundlingOptions {
  return {
    // lib/bundling.ts, in NodejsFunction's terms.
    format: nodejs.OutputFormat.ESM,
    target: BUNDLE.target,
    banner: BUNDLE.banner,
    define: { ...BUNDLE.define },
    mainFields: [...BUNDLE.mainFields],
    minify: BUNDLE.minify,
    keepNames: BUNDLE.keepNames,
    sourceMap: BUNDLE.sourcemap,
    sourcesContent: BUNDLE.sourcesContent,
    esbuildArgs: { '--legal-comments': BUNDLE.legalComments },
    logLevel: nodejs.LogLevel.WARNING,
    // The exact SDK versions the tests ran against, not whatever the runtime ships.
    externalModules: [],
    commandHooks: {
      beforeInstall: () => [],
      beforeBundling: () => [],
      afterBundling: (inputDir: string, outputDir: string) => {
        const commands: string[] = [];
        if (code.withMigrations) {
          commands.push(`cp -R ${shellQuote(`${inputDir}/migrations`)} ${shellQuote(`${outputDir}/migrations`)}`);
          // migrate up lints first: the parser loads its WASM from beside index.mjs.
          commands.push(`cp ${shellQuote(`${inputDir}/${PARSER_WASM}`)} ${shellQuote(`${outputDir}/`)}`);
        }
        if (code.configJson !== undefined) {
          // base64: no shell quoting of JSON; node is there wherever the bundling runs.
          const b64 = Buffer.from(code.configJson, 'utf8').toString('base64');
          commands.push(`node -e "require('fs').writeFileSync(process.argv[1], Buffer.from(process.argv[2], 'base64'))" ${shellQuote(`${outputDir}/${CONFIG_FILE}`)} ${b64}`);
        }
        return commands;
      },
    },
  };
}

export class PgopsFunction extends Construct {
  readonly function: lambda.Function;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  readonly alarms: cloudwatch.Alarm[];

  constructor(scope: Construct, id: string, props: PgopsFunctionProps) {
    super(scope, id);
    const name = props.databaseId ? `${props.job} (${props.databaseId})` : props.job;

    this.logGroup = new logs.LogGroup(this, 'Logs', { retention: props.logRetention });
    // No managed policies: everything the function may do is listed in its inline policy.
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `pgops ${props.environmentName} ${name} function`,
    });
    this.role.addToPolicy(new iam.PolicyStatement({
      sid: 'WriteOwnLogs',
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      resources: [this.logGroup.logGroupArn],
    }));

    if (props.network) {
      // What AWSLambdaVPCAccessExecutionRole grants; Lambda manages the function's network interfaces.
      this.role.addToPolicy(new iam.PolicyStatement({
        sid: 'ManageVpcNetworkInterfaces',
        actions: ['ec2:CreateNetworkInterface', 'ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets', 'ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'],
        resources: ['*'],
      }));
      acknowledge(this.role, NAG.vpcNetworkInterfaces);
    }

    const common = {
      description: props.description,
      role: this.role,
      logGroup: this.logGroup,
      timeout: props.timeout,
      memorySize: props.memorySize,
      architecture: props.architecture,
      environment: props.tracing ? props.environment : { ...props.environment, [ENV.traceEnabled]: 'false' },
      tracing: props.tracing ? lambda.Tracing.ACTIVE : lambda.Tracing.DISABLED,
      onFailure: new destinations.SqsDestination(props.onFailure),
      retryAttempts: props.retryAttempts,
    } satisfies Partial<lambda.FunctionProps>;

    if ('node' in props.code) {
      const { node, repoRoot } = props.code;
      this.function = new nodejs.NodejsFunction(this, 'Function', {
        ...common,
        entry: node.entry,
        handler: 'handler',
        runtime: lambda.Runtime.NODEJS_24_X,
        projectRoot: repoRoot,
        depsLockFilePath: `${repoRoot}/package-lock.json`,
        bundling: bundlingFor(node),
        // No --enable-source-maps: Node would parse the map at every cold start (measured by
        // bench/cold-start.ts); the map ships in the asset to decode a trace when one is needed.
      });
    } else {
      this.function = new lambda.DockerImageFunction(this, 'Function', { ...common, code: props.code.image });
    }

    // CDK adds the X-Ray write statement (Resource "*") to the role for active tracing.
    if (props.tracing) acknowledge(this.role, NAG.xrayTraces);

    if (props.network) {
      // Set on the L1: the L2 wants an IVpc, and importing one needs its AZs (a lookup, or guesses).
      (this.function.node.defaultChild as lambda.CfnFunction).vpcConfig = {
        subnetIds: props.network.subnetIds,
        securityGroupIds: props.network.securityGroupIds,
      };
    }

    this.alarms = this.createAlarms(props, name);
  }

  /** Errors, throttles and a duration above 80% of the timeout, each to the alert topic. */
  private createAlarms(props: PgopsFunctionProps, name: string): cloudwatch.Alarm[] {
    const prefix = ['pgops', props.environmentName, props.databaseId, props.job].filter(Boolean).join('-');
    const timeoutMs = props.timeout.toMilliseconds();
    const five = Duration.minutes(5);
    const specs: Array<{ id: string; suffix: string; metric: cloudwatch.IMetric; threshold: number; description: string }> = [
      {
        id: 'Errors',
        suffix: 'errors',
        metric: this.function.metricErrors({ period: five, statistic: 'Sum' }),
        threshold: 1,
        description: `The pgops ${name} function failed. ${props.onError}`,
      },
      {
        id: 'Throttles',
        suffix: 'throttles',
        metric: this.function.metricThrottles({ period: five, statistic: 'Sum' }),
        threshold: 1,
        description: `The pgops ${name} function was throttled: the account or function concurrency limit was reached and the run may not have happened. Check the account's Lambda concurrency (ConcurrentExecutions) and invoke the function again if needed.`,
      },
      {
        id: 'DurationNearTimeout',
        suffix: 'duration',
        metric: this.function.metricDuration({ period: five, statistic: 'Maximum' }),
        threshold: Math.floor(timeoutMs * 0.8),
        description: `The pgops ${name} function ran for more than 80% of its ${props.timeout.toSeconds()} s timeout: it is about to time out. Look at its logs for the slow step; for backups, lower backup.inlineMaxBytes so large databases go to Fargate.`,
      },
    ];
    return specs.map((s) => topicAlarm(this, `${s.id}Alarm`, {
      alarmName: `${prefix}-${s.suffix}`,
      description: s.description,
      metric: s.metric,
      threshold: s.threshold,
      topic: props.alarmTopic,
    }));
  }

  /** Add a statement to the function's inline policy. */
  allow(statement: iam.PolicyStatement): void {
    this.role.addToPolicy(statement);
  }

  get functionArn(): string {
    return this.function.functionArn;
  }
}
