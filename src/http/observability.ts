/**
 * The HTTP side of observability: per-request context, one structured log line per request
 * (request id, route, status, duration, token name — never its value), request metrics, the
 * pipe_stats_rt / endpoint_errors records of endpoint and Query API calls, and `GET /metrics`
 * (ADMIN token) or a loopback-only metrics port (PIPIT_METRICS_PORT) that needs no token.
 */
import http from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { redactSecrets } from '../basics/log-redact.js';
import { attachInfo, infoOf, requestContext, type RequestInfo } from '../observability/context.js';
import { PROMETHEUS_CONTENT_TYPE } from '../observability/metrics.js';
import type { Observability } from '../observability/observability.js';

/** The route family of a request: `sql`, `events`, `datasources`, ..., `endpoint` for pipe data. */
export function routeFamily(route: string | undefined, info: RequestInfo | undefined): string {
  if (info?.pipe && info.pipe.id !== 'query_api') return 'endpoint';
  if (!route) return 'unmatched';
  const m = /^\/v0\/([^/:]+)/.exec(route);
  if (m) return m[1];
  return route === '/metrics' ? 'metrics' : route === '/tokens' ? 'tokens' : 'other';
}

/** The error message of an error body (`{"error": "..."}`), from the payload about to be sent. */
function errorOf(payload: unknown): string | undefined {
  const text = typeof payload === 'string' ? payload : Buffer.isBuffer(payload) && payload.length < 65536 ? payload.toString('utf8') : undefined;
  if (!text) return undefined;
  try {
    const e = (JSON.parse(text) as { error?: unknown }).error;
    return typeof e === 'string' ? e : undefined;
  } catch {
    return text.slice(0, 1000);
  }
}

/**
 * Routes whose GET and POST requests record no operation and start no job through the request
 * context (endpoint data and pipe reads, the Query API; the Events API, whose inserts report their
 * request ids themselves and which enters the context only to create a data source): they run
 * outside it, whose promise hooks would otherwise slow every request of the process while one of
 * these runs (~0.13 ms of server CPU per 100-row Events API request).
 */
const READ_ROUTES = new Set(['/v0/pipes/:pipe', '/v0/sql', '/v0/events']);

/** The request's observability record, attached at its start (the application's onRequest hook). */
export function observeRequest(req: FastifyRequest): RequestInfo {
  const info: RequestInfo = { id: req.id };
  attachInfo(req, info);
  return info;
}

/**
 * Goes on with the request (`done` of the onRequest hook): read routes outside the request
 * context, the others inside it until the response has been sent or the connection has closed.
 */
export function enterRequest(req: FastifyRequest, reply: FastifyReply, info: RequestInfo, done: () => void): void {
  // PUT and DELETE share the pipe route's path; they may drop views and cancel jobs.
  if ((req.method === 'GET' || req.method === 'POST') && READ_ROUTES.has(req.routeOptions.url ?? '')) return done();
  // Domain code running for this request (an import, a job it starts) sees its request id
  // until the response has been sent, or the connection has closed.
  reply.raw.once('close', requestContext.enter(info, done));
}

/** The error message of a refusal, from the payload about to be sent (the application's onSend hook). */
export function observeSend(req: FastifyRequest, reply: FastifyReply, payload: unknown): void {
  if (reply.statusCode < 400) return;
  const info = infoOf(req);
  if (info) info.error = errorOf(payload);
}

/**
 * Installs the request log and records (onResponse) on the application; its onRequest hook calls
 * observeRequest and enterRequest, its onSend hook observeSend (one hook per stage, not one per concern).
 */
export function observeHttp(app: FastifyInstance, obs: Observability): void {
  app.addHook('onResponse', (req, reply, done) => {
    const info = infoOf(req);
    const durationSec = reply.elapsedTime / 1000;
    const status = reply.statusCode;
    const route = req.routeOptions.url;
    const family = routeFamily(route, info);
    obs.httpRequests.inc({ family, method: req.method, status: String(status) });
    obs.httpDuration.observe({ family }, durationSec);
    if (info) {
      obs.request(info, {
        status,
        durationSec,
        method: req.method,
        url: redactSecrets(req.url),
        userAgent: typeof req.headers['user-agent'] === 'string' ? req.headers['user-agent'] : undefined,
      });
    }
    const line = {
      route: route ?? null,
      family,
      method: req.method,
      status,
      duration_ms: Math.round(reply.elapsedTime * 1000) / 1000,
      token_name: info?.token?.name ?? null,
      workspace_id: info?.workspaceId ?? null,
      ...(info?.pipe ? { pipe: info.pipe.name } : {}),
      ...(status >= 400 && info?.error ? { error: info.error } : {}),
    };
    if (status >= 500) req.log.error(line, 'request');
    else req.log.info(line, 'request');
    done();
  });
}

/**
 * `GET /metrics` for ADMIN tokens. `authorize` throws (401/403) for anyone else.
 */
export function metricsRoute(app: FastifyInstance, obs: Observability, authorize: (req: FastifyRequest) => Promise<void>): void {
  app.get('/metrics', async (req: FastifyRequest, reply: FastifyReply) => {
    await authorize(req);
    return reply.type(PROMETHEUS_CONTENT_TYPE).send(obs.metrics.render());
  });
}

/**
 * A metrics server on a loopback port: `/metrics` without a token, for a Prometheus on the same
 * host (or a sidecar). Refuses to bind anything but loopback.
 */
export async function startMetricsServer(obs: Observability, port: number): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && (req.url === '/metrics' || req.url?.startsWith('/metrics?'))) {
      res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE });
      res.end(obs.metrics.render());
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: 'Not found: the metrics server answers GET /metrics' }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  server.unref();
  return server;
}
