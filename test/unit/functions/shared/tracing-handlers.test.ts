// Tracing as the handlers wire it: the default tracing follows the settings (POWERTOOLS_TRACE_ENABLED
// through loadSettings), and notify-slack, which does not go through runJob, is traced too, without
// recording the webhook's URL (HTTP capture is off). The first test must stay first: a function keeps
// its tracing for the life of its execution environment, here the test file.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
// The X-Ray SDK under Powertools (a dependency of @aws-lambda-powertools/tracer): only to build the root segment.
import AWSXRay from 'aws-xray-sdk-core';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { instrumented, setClientInstrumentation } from '../../../../functions/core/aws/clients.ts';
import { createTextLogger } from '../../../../functions/core/logger.ts';
import { createNotifySlackHandler } from '../../../../functions/notify-slack/index.ts';
import { runJob } from '../../../../functions/shared/handler.ts';
import { createHandlerTracing } from '../../../../functions/shared/tracing.ts';
import { findLeaks } from '../../../helpers/output-scan.ts';

const WEBHOOK_PATH = '/services/T0/B0/traceSecret314';
let slack: Server;
let posts = 0;

beforeAll(async () => {
  slack = createServer((req, res) => {
    posts++;
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  await new Promise<void>((r) => slack.listen(0, '127.0.0.1', r));
});
afterAll(() => new Promise<void>((r) => slack.close(() => r())));
afterEach(() => {
  vi.unstubAllEnvs();
  setClientInstrumentation(undefined);
});

function inLambda(): void {
  vi.stubEnv('AWS_EXECUTION_ENV', 'AWS_Lambda_nodejs24.x');
  vi.stubEnv('AWS_LAMBDA_INITIALIZATION_TYPE', 'on-demand');
}

async function withRootSegment<T>(body: () => Promise<T>) {
  const root = new AWSXRay.Segment('pgops-test');
  const result = await AWSXRay.getNamespace().runPromise(async () => {
    AWSXRay.setSegment(root);
    return body();
  });
  return { root, result, subsegments: (JSON.parse(JSON.stringify(root)) as { subsegments?: Array<{ name: string; subsegments?: unknown[] }> }).subsegments ?? [] };
}

describe('the default tracing of a handler', () => {
  it('is off when the settings say POWERTOOLS_TRACE_ENABLED=false, even in Lambda', async () => {
    inLambda();
    const { result, subsegments } = await withRootSegment(() => runJob('health', {
      env: { POWERTOOLS_TRACE_ENABLED: 'false', PGOPS_LOG_LEVEL: 'silent' },
      logger: createTextLogger({ write: () => {} }),
    }, async () => instrumented(new SecretsManagerClient({ region: 'eu-west-1' })).middlewareStack.identify().join()));
    expect(result).not.toContain('XRaySDKInstrumentation');
    expect(subsegments).toEqual([]);
  });
});

describe('notify-slack', () => {
  it('is traced in its own subsegment, and the webhook URL it posts to is not in the trace', async () => {
    inLambda();
    const url = `http://127.0.0.1:${(slack.address() as AddressInfo).port}${WEBHOOK_PATH}`;
    const handler = createNotifySlackHandler({
      env: { PGOPS_SLACK_WEBHOOK_URL: url, PGOPS_ENVIRONMENT: 'staging' },
      logger: createTextLogger({ write: () => {} }),
      tracing: createHandlerTracing('pgops-notify-slack', true),
    });
    const alert = { severity: 'critical', job: 'backup', database: 'auth', environment: 'staging', summary: 'backup failed', details: {} };
    const before = posts;
    const { root, result, subsegments } = await withRootSegment(() => handler(alert));
    expect(result).toEqual({ posted: 1, skipped: 0 });
    expect(posts).toBe(before + 1);
    expect(subsegments.map((s) => s.name)).toEqual(['## notify-slack']);
    expect(subsegments[0]!.subsegments).toBeUndefined();
    expect(JSON.stringify(root)).not.toContain('traceSecret314');
    expect(findLeaks('trace', JSON.stringify(root), [url])).toEqual([]);
  });
});
