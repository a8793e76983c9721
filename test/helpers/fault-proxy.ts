// A small HTTP proxy in front of s3rver that injects S3 failures: a 500 InternalError, a 503
// SlowDown or a dropped connection, for the next N requests matching a predicate or for all of
// them. Everything else is forwarded unchanged (Host included, so SigV4 signatures still match).
// Loopback only; the request log is bounded.
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll } from 'vitest';

export interface ProxiedRequest {
  method: string;
  /** Path without the query, e.g. /bucket/some/key */
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
}

export type RequestMatcher = (request: ProxiedRequest) => boolean;
export type Fault = 'internal-error' | 'slow-down' | 'drop-connection';

export interface LoggedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  /** The status answered, or 'dropped'. */
  outcome: number | 'dropped';
  fault?: Fault;
}

interface Rule {
  match: RequestMatcher;
  fault: Fault;
  remaining: number;
}

const MAX_LOG = 10_000;

const XML_ERRORS: Record<'internal-error' | 'slow-down', { status: number; code: string; message: string }> = {
  'internal-error': { status: 500, code: 'InternalError', message: 'We encountered an internal error. Please try again.' },
  'slow-down': { status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' },
};

/** Predicates for the S3 operations the storage layer sends (path-style addressing). */
export const s3Op = {
  putObject: (r: ProxiedRequest) => r.method === 'PUT' && !r.query.has('uploadId') && !r.query.has('tagging') && r.path.split('/').length > 2,
  createMultipartUpload: (r: ProxiedRequest) => r.method === 'POST' && r.query.has('uploads'),
  uploadPart: (r: ProxiedRequest) => r.method === 'PUT' && r.query.has('uploadId') && r.query.has('partNumber'),
  completeMultipartUpload: (r: ProxiedRequest) => r.method === 'POST' && r.query.has('uploadId'),
  abortMultipartUpload: (r: ProxiedRequest) => r.method === 'DELETE' && r.query.has('uploadId'),
  listObjectsV2: (r: ProxiedRequest) => r.method === 'GET' && r.query.get('list-type') === '2',
  any: () => true,
} satisfies Record<string, RequestMatcher>;

export class FaultProxy {
  private rules: Rule[] = [];
  private readonly entries: LoggedRequest[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 32 });

  private constructor(
    private readonly server: Server,
    private readonly target: URL,
    readonly endpoint: string,
  ) {}

  static async start(target: string): Promise<FaultProxy> {
    const server = createServer();
    server.maxConnections = 128;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    const proxy = new FaultProxy(server, new URL(target), `http://127.0.0.1:${port}`);
    server.on('connection', (socket) => {
      proxy.sockets.add(socket);
      socket.once('close', () => proxy.sockets.delete(socket));
    });
    server.on('request', (req, res) => proxy.handle(req, res));
    return proxy;
  }

  /** Fail the next `times` requests that match (default: one). */
  failNext(match: RequestMatcher, times = 1, fault: Fault = 'internal-error'): void {
    this.rules.push({ match, fault, remaining: times });
  }

  /** Fail every matching request until clear(). */
  failAll(match: RequestMatcher, fault: Fault = 'internal-error'): void {
    this.rules.push({ match, fault, remaining: Number.POSITIVE_INFINITY });
  }

  /** Drop all rules and the log. */
  clear(): void {
    this.rules = [];
    this.entries.length = 0;
  }

  get log(): readonly LoggedRequest[] {
    return this.entries;
  }

  /** Logged requests matching `match` (headers are not logged: predicates see none). */
  requests(match: RequestMatcher): LoggedRequest[] {
    return this.entries.filter((e) => match({ method: e.method, path: e.path, query: e.query, headers: {} }));
  }

  async close(): Promise<void> {
    this.rules = [];
    for (const socket of this.sockets) socket.destroy();
    this.agent.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private record(entry: LoggedRequest): void {
    if (this.entries.length >= MAX_LOG) this.entries.shift();
    this.entries.push(entry);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://proxy.invalid');
    const info: ProxiedRequest = { method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, headers: req.headers };
    const rule = this.rules.find((r) => r.remaining > 0 && r.match(info));
    if (rule) {
      rule.remaining -= 1;
      // Read the whole body first: answering mid-upload would turn the fault into an EPIPE.
      req.resume();
      req.once('end', () => this.inject(rule.fault, info, res));
      return;
    }
    const upstream = httpRequest(
      { host: this.target.hostname, port: this.target.port, method: info.method, path: req.url, headers: req.headers, agent: this.agent },
      (upstreamRes) => {
        this.record({ method: info.method, path: info.path, query: info.query, outcome: upstreamRes.statusCode ?? 0 });
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        upstreamRes.pipe(res);
      },
    );
    upstream.setTimeout(30_000, () => upstream.destroy(new Error('upstream timed out')));
    upstream.once('error', () => {
      this.record({ method: info.method, path: info.path, query: info.query, outcome: 502 });
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    req.pipe(upstream);
  }

  private inject(fault: Fault, info: ProxiedRequest, res: ServerResponse): void {
    if (fault === 'drop-connection') {
      this.record({ method: info.method, path: info.path, query: info.query, outcome: 'dropped', fault });
      res.socket?.destroy();
      return;
    }
    const { status, code, message } = XML_ERRORS[fault];
    this.record({ method: info.method, path: info.path, query: info.query, outcome: status, fault });
    const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>fault-proxy</RequestId></Error>`;
    res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
    res.end(info.method === 'HEAD' ? undefined : body);
  }
}

/** A FaultProxy in front of `target()` (e.g. () => s3.endpoint), started in beforeAll, closed in afterAll. */
export function useFaultProxy(target: () => string): { readonly proxy: FaultProxy; readonly endpoint: string } {
  let proxy: FaultProxy | undefined;
  beforeAll(async () => {
    proxy = await FaultProxy.start(target());
  });
  afterAll(async () => {
    await proxy?.close();
  });
  return {
    get proxy() {
      if (!proxy) throw new Error('fault proxy not started (use it inside a test)');
      return proxy;
    },
    get endpoint() {
      return this.proxy.endpoint;
    },
  };
}
