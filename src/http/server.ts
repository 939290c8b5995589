/**
 * The HTTP application: Fastify with Tinybird's cross-cutting conventions (request ids, CORS,
 * OPTIONS preflight, the error body) and one plugin per API family. Built apart from the process
 * that listens, so tests can run it on a loopback port or with inject().
 */
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { newUlid as ulid } from '../basics/ids.js';
import type { Services } from './services.js';
import { routeNotFound, toHttpError } from './errors.js';
import { frameworkError, onClientError } from './framework-errors.js';
import { BufferedLog, redactingStream } from '../basics/log-redact.js';
import { routeCatalog } from './openapi.js';
import { named } from './route-docs.js';
import { authenticate } from './auth.js';
import { nulError } from '../basics/input-limits.js';
import { datasourceRoutes } from './routes/datasources.js';
import { eventRoutes } from './routes/events.js';
import { jobRoutes } from './routes/jobs.js';
import { localRoutes } from './routes/local.js';
import { analyzeRoutes } from './routes/analyze.js';
import { sqlRoutes } from './routes/sql.js';
import { pipeRoutes } from './routes/pipes.js';
import { variableRoutes } from './routes/variables.js';
import { workspaceRoutes } from './routes/workspaces.js';
import { tokenRoutes } from './routes/tokens.js';
import { connectorRoutes } from './routes/connectors.js';
import { sinkRoutes } from './routes/sinks.js';
import { cliCompatRoutes } from './routes/cli-compat.js';
import { consoleRoutes } from './routes/console.js';
import { metricsRoute, enterRequest, observeHttp, observeRequest, observeSend } from './observability.js';
import { forbidden } from '../basics/errors.js';

const CORS_HEADERS: Record<string, string> = {
  'access-control-allow-origin': '*',
  'access-control-allow-headers': 'Authorization, Content-Type, X-Requested-With, X-Tb-Warning, Content-Encoding',
  'access-control-expose-headers': 'X-Tb-Warning, X-Request-ID',
  'access-control-allow-methods': 'GET, POST, PUT, DELETE, OPTIONS',
  'access-control-max-age': '86400',
};

export function buildHttp(services: Services): FastifyInstance {
  // Every log line passes the redactor: no token value (query string, path, Authorization
  // header, error text) reaches the log at any level. On stdout (the server's default) lines are
  // written in batches (BufferedLog); a destination of the caller's (tests) gets each line at once.
  const { logLevel, logDestination } = services.config;
  const logStream = logLevel === 'silent' ? undefined : logDestination ? redactingStream(logDestination) : new BufferedLog(process.stdout);
  const app = Fastify({
    logger: logStream ? { level: logLevel, stream: logStream } : false,
    genReqId: () => ulid(),
    // One line per request, written by the observability hooks (with the token's name and route).
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 64 * 1024 * 1024,
    forceCloseConnections: false,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 1000 },
    // Errors raised before a route runs (bad percent-encoding, an over-long path segment; at the
    // socket: header overflow, malformed HTTP) answer in Tinybird's {"error": "..."} shape too.
    frameworkErrors: frameworkError,
    clientErrorHandler: onClientError,
  });

  // Bodies are read by the routes themselves (streamed); no global parsing.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
  // Route schemas describe and type (src/http/route-docs.ts): the handlers answer bad parameters
  // with Tinybird's statuses and messages, and responses go out as the handler built them.
  app.setValidatorCompiler(() => () => true);
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  const catalog = routeCatalog(app);

  observeHttp(app, services.observability);
  if (logStream instanceof BufferedLog)
    app.addHook('onClose', (_app, done) => {
      logStream.flush();
      done();
    });

  // Callback-style hooks, one per stage (each hook is a step of Fastify's hook runner on every
  // request): no promise per request on the hot path of small queries.
  app.addHook('onRequest', (req, reply, done) => {
    const info = observeRequest(req);
    reply.header('x-request-id', req.id);
    reply.headers(CORS_HEADERS);
    // No response is meant to be sniffed into another type (a CSV or an error echoing user text as HTML).
    reply.header('x-content-type-options', 'nosniff');
    // Path parameters name resources and ids: a NUL there (`/v0/jobs/a%00b`) is never valid.
    const params: unknown = req.params;
    if (params && typeof params === 'object')
      for (const [k, v] of Object.entries(params)) if (typeof v === 'string' && v.includes('\u0000')) return done(nulError(k));
    enterRequest(req, reply, info, done);
  });

  // A response sent before its request body was read whole (a refusal, a rate limit) must not
  // leave the connection in the client's keep-alive pool: it would hold unread bytes and keep a
  // graceful shutdown waiting for it.
  app.addHook('onSend', (req, reply, payload, done) => {
    if (!req.raw.complete) reply.header('connection', 'close');
    observeSend(req, reply, payload);
    done(null, payload);
  });

  app.setErrorHandler((err, req, reply) => sendError(req, reply, err, (id) => services.datasources.nameOfId(id)));
  app.setNotFoundHandler((req, reply) => {
    if (req.method === 'OPTIONS') return reply.code(204).send();
    return reply.code(404).send({ error: routeNotFound(req.method, req.url) });
  });
  app.options('/*', async (_req, reply) => reply.code(204).send());
  // The description of this API (every /v0 route with its handler name and schema), for any valid token.
  app.get('/v0/openapi.json', named(null, { summary: 'This description of the /v0 API (OpenAPI 3)' }), async (req) => {
    await authenticate(services, req);
    return catalog.document(services.config.apiHost);
  });

  app.register(localRoutes(services));
  app.register(datasourceRoutes(services));
  app.register(eventRoutes(services));
  app.register(jobRoutes(services));
  app.register(analyzeRoutes(services));
  app.register(sqlRoutes(services));
  app.register(pipeRoutes(services));
  app.register(variableRoutes(services));
  app.register(workspaceRoutes(services));
  app.register(tokenRoutes(services));
  app.register(connectorRoutes(services));
  app.register(sinkRoutes(services));
  app.register(cliCompatRoutes(services));
  app.register(consoleRoutes(services));
  metricsRoute(app, services.observability, async (req) => {
    const auth = await authenticate(services, req);
    if (!auth.isAdmin) throw forbidden('The metrics need an ADMIN token (or PIPIT_METRICS_PORT, a loopback-only port)');
  });
  return app;
}

export function sendError(req: FastifyRequest, reply: FastifyReply, err: unknown, nameOf?: (id: string) => string | undefined): FastifyReply {
  const e = toHttpError(err, nameOf);
  if (e.status >= 500) req.log.error({ err }, 'request failed');
  if (e.chCode !== undefined) reply.header('x-db-exception-code', String(e.chCode));
  // Admission control's 429 and the engine's memory 503 say when to come back (src/sql/admission.ts).
  const retryAfter = (err as { retryAfter?: unknown } | null)?.retryAfter;
  if (typeof retryAfter === 'number') reply.header('retry-after', String(retryAfter));
  if (e.headers) reply.headers(e.headers);

  return reply.code(e.status).type('application/json').send(e.body);
}
