// The handlers' X-Ray tracing (functions/shared/tracing.ts) with the real Powertools Tracer and X-Ray
// SDK: a `## <job>` subsegment per invocation, a subsegment per AWS SDK call (a real client against
// a local HTTP endpoint, so X-Ray's middleware runs), errors recorded redacted, and a pass-through
// when POWERTOOLS_TRACE_ENABLED=false or outside Lambda. The root segment stands in for Lambda's.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
// The X-Ray SDK under Powertools (a dependency of @aws-lambda-powertools/tracer): only to build the root segment.
import AWSXRay from 'aws-xray-sdk-core';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { instrumented, setClientInstrumentation } from '../../../../functions/core/aws/clients.ts';
import { loadSettings } from '../../../../functions/core/config.ts';
import { ConfigError } from '../../../../functions/core/errors.ts';
import { createTextLogger } from '../../../../functions/core/logger.ts';
import { registerSecret } from '../../../../functions/core/redact.ts';
import { FunctionError, runJob } from '../../../../functions/shared/handler.ts';
import { createHandlerTracing, redactedError, type HandlerTracing } from '../../../../functions/shared/tracing.ts';
import { findLeaks } from '../../../helpers/output-scan.ts';

const SECRET_VALUE = 'Tr4ce-Secret-Value-91';
const PASSWORD = 'Tr4ce-Password-77';
let server: Server;
let endpoint: string;

beforeAll(async () => {
  // Secrets Manager's JSON protocol, enough for GetSecretValue.
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify({ Name: 'pgops/db', SecretString: JSON.stringify({ username: 'app', password: SECRET_VALUE }) }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));
afterEach(() => {
  vi.unstubAllEnvs();
  setClientInstrumentation(undefined);
});

function secretsClient(): SecretsManagerClient {
  return new SecretsManagerClient({ region: 'eu-west-1', endpoint, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test' }, maxAttempts: 1 });
}

/** As in Lambda: AWS_EXECUTION_ENV and the initialization type set, POWERTOOLS_TRACE_ENABLED as given. */
function lambdaEnvironment(traceEnabled?: string): void {
  vi.stubEnv('AWS_EXECUTION_ENV', 'AWS_Lambda_nodejs24.x');
  vi.stubEnv('AWS_LAMBDA_INITIALIZATION_TYPE', 'on-demand');
  if (traceEnabled !== undefined) vi.stubEnv('POWERTOOLS_TRACE_ENABLED', traceEnabled);
}

type Segment = InstanceType<typeof AWSXRay.Segment>;
interface RecordedSubsegment {
  name: string;
  annotations?: Record<string, unknown>;
  subsegments?: RecordedSubsegment[];
  fault?: boolean;
  error?: boolean;
  in_progress?: boolean;
  cause?: { exceptions: Array<{ message: string; type: string; stack: Array<{ label: string }> }> };
  aws?: Record<string, unknown>;
}

/** Run `body` with a root segment in X-Ray's context (Lambda's facade segment plays this part). */
async function withRootSegment<T>(body: (root: Segment) => Promise<T>): Promise<{ root: Segment; result?: T; error?: unknown }> {
  const root = new AWSXRay.Segment('pgops-test');
  const ns = AWSXRay.getNamespace();
  return ns.runPromise(async () => {
    AWSXRay.setSegment(root);
    try {
      return { root, result: await body(root) };
    } catch (error) {
      return { root, error };
    }
  });
}

function recorded(root: Segment): RecordedSubsegment[] {
  return (JSON.parse(JSON.stringify(root)) as { subsegments?: RecordedSubsegment[] }).subsegments ?? [];
}

describe('tracing on (in Lambda, POWERTOOLS_TRACE_ENABLED unset)', () => {
  it('runs the invocation in a "## <job>" subsegment annotated with job, database and cold start, and restores the parent', async () => {
    lambdaEnvironment();
    const tracing = createHandlerTracing('pgops-migrate', true);
    expect(tracing.enabled).toBe(true);
    const { root, result } = await withRootSegment(async (r) => {
      const value = await tracing.trace('migrate', { job: 'migrate', database: 'auth', absent: undefined }, async () => 'done');
      expect(AWSXRay.getSegment()).toBe(r);
      return value;
    });
    expect(result).toBe('done');
    const [sub, ...more] = recorded(root);
    expect(more).toEqual([]);
    expect(sub).toMatchObject({ name: '## migrate', annotations: { job: 'migrate', database: 'auth', ColdStart: true, Service: 'pgops-migrate' } });
    expect(sub!.in_progress).toBeUndefined();
    expect(Object.keys(sub!.annotations!)).not.toContain('absent');
    // The next invocation of the same execution environment is warm.
    const warm = await withRootSegment(() => tracing.trace('migrate', {}, async () => undefined));
    expect(recorded(warm.root)[0]!.annotations).toMatchObject({ ColdStart: false });
  });

  it('records each AWS SDK call of a captured client inside the invocation, without the secret it returned', async () => {
    lambdaEnvironment();
    const tracing = createHandlerTracing('pgops-health', true);
    const client = tracing.captureClient(secretsClient());
    expect(tracing.captureClient(client)).toBe(client);
    const { root, error } = await withRootSegment(() => tracing.trace('health', { job: 'health' }, async () => {
      const res = await client.send(new GetSecretValueCommand({ SecretId: 'pgops/db' }));
      return res.SecretString;
    }));
    expect(error).toBeUndefined();
    const [handler] = recorded(root);
    expect(handler!.name).toBe('## health');
    expect(handler!.subsegments).toHaveLength(1);
    expect(handler!.subsegments![0]).toMatchObject({ name: 'SecretsManager', aws: { operation: 'GetSecretValue', region: 'eu-west-1' } });
    expect(findLeaks('trace', JSON.stringify(root), [SECRET_VALUE])).toEqual([]);
  });

  it('records a failure as a fault with the message redacted and no message line among the frames, and rethrows it', async () => {
    lambdaEnvironment();
    registerSecret(PASSWORD);
    const tracing = createHandlerTracing('pgops-backup', true);
    const failure = new ConfigError('invalid configuration', [`password ${PASSWORD} rejected`, 'second issue line']);
    const { root, error } = await withRootSegment(() => tracing.trace('backup', {}, async () => { throw failure; }));
    expect(error).toBe(failure);
    const [sub] = recorded(root);
    expect(sub!.fault).toBe(true);
    const [exception] = sub!.cause!.exceptions;
    expect(exception!.type).toBe('ConfigError');
    expect(exception!.message).toContain('invalid configuration');
    expect(exception!.message).toContain('second issue line');
    expect(exception!.stack.map((f) => f.label).join('\n')).not.toMatch(/issue line|rejected/);
    expect(findLeaks('trace', JSON.stringify(root), [PASSWORD])).toEqual([]);
  });

  it('without a parent segment (an invocation not sampled), runs the body untraced', async () => {
    lambdaEnvironment();
    const tracing = createHandlerTracing('pgops-cleanup', true);
    await expect(AWSXRay.getNamespace().runPromise(() => tracing.trace('cleanup', {}, async () => 42))).resolves.toBe(42);
  });
});

describe('tracing off', () => {
  it('POWERTOOLS_TRACE_ENABLED=false: settings say so, nothing is recorded and clients stay as they are', async () => {
    lambdaEnvironment('false');
    expect(loadSettings({}, { POWERTOOLS_TRACE_ENABLED: 'false' }).tracing).toBe(false);
    expect(loadSettings({}, { POWERTOOLS_TRACE_ENABLED: 'FALSE' }).tracing).toBe(false);
    expect(loadSettings({}, {}).tracing).toBe(true);
    const tracing = createHandlerTracing('pgops-migrate', true);
    expect(tracing.enabled).toBe(false);
    const client = secretsClient();
    expect(tracing.captureClient(client)).toBe(client);
    expect(client.middlewareStack.identify().join()).not.toContain('XRaySDKInstrumentation');
    const { root, result } = await withRootSegment(() => tracing.trace('migrate', { job: 'migrate' }, async () => {
      await client.send(new GetSecretValueCommand({ SecretId: 'pgops/db' }));
      return 'ran';
    }));
    expect(result).toBe('ran');
    expect(recorded(root)).toEqual([]);
  });

  it('the settings turn it off even in Lambda (the CDK sets POWERTOOLS_TRACE_ENABLED=false with tracing: false)', async () => {
    lambdaEnvironment();
    const tracing = createHandlerTracing('pgops-migrate', false);
    expect(tracing.enabled).toBe(false);
    const { root } = await withRootSegment(() => tracing.trace('migrate', {}, async () => undefined));
    expect(recorded(root)).toEqual([]);
  });

  it('outside Lambda (the CLI, tests) Powertools turns itself off', () => {
    vi.stubEnv('AWS_EXECUTION_ENV', '');
    expect(createHandlerTracing('pgops-migrate', true).enabled).toBe(false);
  });

  it('refuses a POWERTOOLS_TRACE_ENABLED that is neither true nor false, naming it', () => {
    expect(() => loadSettings({}, { POWERTOOLS_TRACE_ENABLED: 'yes please' })).toThrow(/POWERTOOLS_TRACE_ENABLED: must be true or false/);
  });
});

describe('the handler wrapper', () => {
  function run(tracing: HandlerTracing, job: () => Promise<unknown>) {
    const lines: string[] = [];
    const logger = createTextLogger({ write: (l) => lines.push(l) });
    return { lines, promise: runJob('cleanup', { env: { PGOPS_DATABASE_ID: 'auth', PGOPS_LOG_LEVEL: 'silent' }, tracing, logger }, job) };
  }

  it('traces the job and captures every client the job creates (instrumented)', async () => {
    lambdaEnvironment();
    const tracing = createHandlerTracing('pgops-cleanup', true);
    const { root, result } = await withRootSegment(() => run(tracing, async () => {
      await instrumented(secretsClient()).send(new GetSecretValueCommand({ SecretId: 'pgops/db' }));
      return 'cleaned';
    }).promise);
    expect(result).toBe('cleaned');
    const [sub] = recorded(root);
    expect(sub).toMatchObject({ name: '## cleanup', annotations: { job: 'cleanup', database: 'auth' } });
    expect(sub!.subsegments!.map((s) => s.name)).toEqual(['SecretsManager']);
  });

  it('off, the clients a job creates are not instrumented and the job runs as before', async () => {
    lambdaEnvironment('false');
    const tracing = createHandlerTracing('pgops-cleanup', true);
    const { root, result } = await withRootSegment(() => run(tracing, async () => instrumented(secretsClient()).middlewareStack.identify().join()).promise);
    expect(result).not.toContain('XRaySDKInstrumentation');
    expect(recorded(root)).toEqual([]);
  });

  it('a failing job is recorded in its subsegment and still reaches the invoker as a FunctionError', async () => {
    lambdaEnvironment();
    const tracing = createHandlerTracing('pgops-cleanup', true);
    const { root, error } = await withRootSegment(() => run(tracing, async () => { throw new ConfigError('no storage configured'); }).promise);
    expect(error).toBeInstanceOf(FunctionError);
    expect((error as Error).message).toBe('cleanup failed: no storage configured');
    expect(recorded(root)[0]).toMatchObject({ name: '## cleanup', fault: true, cause: { exceptions: [{ type: 'ConfigError', message: 'no storage configured' }] } });
  });
});

describe('redactedError', () => {
  it('keeps name and frames, redacts the message, and drops the message lines from the stack', () => {
    registerSecret(PASSWORD);
    const original = new TypeError(`line one ${PASSWORD}\nline two`);
    const e = redactedError(original);
    expect(e.name).toBe('TypeError');
    expect(e.message).toBe('line one ***\nline two');
    const lines = e.stack!.split('\n');
    expect(lines[0]).toBe('TypeError: (message recorded separately)');
    expect(lines.slice(1).every((l) => /^\s+at /.test(l))).toBe(true);
    expect(lines.length).toBeGreaterThan(1);
    expect(redactedError('plain').message).toBe('plain');
  });
});
