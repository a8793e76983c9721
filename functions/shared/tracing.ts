// X-Ray tracing of the Lambda handlers through Powertools Tracer: one `## <job>` subsegment per
// invocation (annotated with the job, the database and ColdStart) and one per AWS SDK call.
// The X-Ray SDK loads with this module, at cold start, as it must: in Lambda it enters its context
// when it loads, and loaded later (inside an invocation) it would trace that invocation only.
// Off, every call passes through: POWERTOOLS_TRACE_ENABLED=false (the CDK's `tracing: false`),
// or outside Lambda (Powertools itself checks AWS_EXECUTION_ENV).
import { Tracer } from '@aws-lambda-powertools/tracer';
import { setClientInstrumentation } from '../core/aws/clients.ts';
import type { Settings } from '../core/config.ts';
import { errorMessage } from '../core/errors.ts';
import { redactString } from '../core/redact.ts';

export interface HandlerTracing {
  readonly enabled: boolean;
  /** Run one invocation in its own subsegment; a failure is recorded (its message redacted) and rethrown. */
  trace<T>(job: string, annotations: Record<string, string | undefined>, body: () => Promise<T>): Promise<T>;
  /** The client with X-Ray's middleware (idempotent); as it is when tracing is off. */
  captureClient<C extends object>(client: C): C;
}

/**
 * A tracer for one function. HTTP(S) capture stays off: it would record the Slack webhook's URL,
 * a secret, and the AWS calls are captured per client. Results are not recorded (they may hold
 * SQL and query texts); errors are, redacted.
 */
export function createHandlerTracing(serviceName: string, enabled: boolean): HandlerTracing {
  const tracer = new Tracer({ serviceName, enabled, captureHTTPsRequests: false });
  return {
    enabled: tracer.isTracingEnabled(),
    captureClient: (client) => tracer.captureAWSv3Client(client),
    async trace(job, annotations, body) {
      const parent = tracer.isTracingEnabled() ? tracer.getSegment() : undefined;
      if (!parent) return body();
      const subsegment = parent.addNewSubsegment(`## ${job}`);
      tracer.setSegment(subsegment);
      tracer.annotateColdStart();
      tracer.addServiceNameAnnotation();
      for (const [key, value] of Object.entries(annotations)) if (value !== undefined) tracer.putAnnotation(key, value);
      try {
        return await body();
      } catch (err) {
        tracer.addErrorAsMetadata(redactedError(err));
        throw err;
      } finally {
        subsegment.close();
        tracer.setSegment(parent);
      }
    },
  };
}

/**
 * What X-Ray records of an error: its name, its message redacted, and its stack frames only (X-Ray
 * parses every line after the first as a frame, so a message's further lines must not be there).
 */
export function redactedError(err: unknown): Error {
  const error = new Error(redactString(errorMessage(err)));
  error.name = err instanceof Error ? err.name : 'Error';
  const frames = (err instanceof Error ? err.stack ?? '' : '').split('\n').filter((line) => /^\s+at /.test(line));
  error.stack = [`${error.name}: (message recorded separately)`, ...frames].join('\n');
  return error;
}

let current: HandlerTracing | undefined;

/**
 * This function's tracing, made on the first invocation (the settings decide whether it is on) and
 * kept for the life of the execution environment, so ColdStart is true exactly once.
 */
export function handlerTracing(serviceName: string, enabled: boolean): HandlerTracing {
  return (current ??= createHandlerTracing(serviceName, enabled));
}

/** Every AWS SDK client the jobs create from now on is captured by `tracing` (when it is on). */
export function traceAwsClients(tracing: HandlerTracing): void {
  setClientInstrumentation(tracing.enabled ? (client) => tracing.captureClient(client) : undefined);
}

/**
 * Run one invocation of a handler traced: this function's tracing (or `tracing`, from a test) made
 * from the settings, every AWS SDK client captured, the body in its `## <job>` subsegment.
 */
export function withHandlerTracing<T>(job: string, settings: Pick<Settings, 'tracing' | 'databaseId'>, tracing: HandlerTracing | undefined, body: () => Promise<T>): Promise<T> {
  const t = tracing ?? handlerTracing(`pgops-${job}`, settings.tracing);
  traceAwsClients(t);
  return t.trace(job, { job, database: settings.databaseId }, body);
}
