/**
 * The Query API, `GET|POST /v0/sql`: one user SELECT through the SQL safety layer (src/sql), run
 * on the engine's read-only Sessions and streamed back in the format of its trailing FORMAT
 * clause. A client that disconnects cancels its query.
 */
import { PassThrough, Readable } from 'node:stream';
import zlib from 'node:zlib';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../../app.js';
import { badRequest, PipitError } from '../../domain/errors.js';
import { EngineError } from '../../engine/engine.js';
import { OUTPUT_FORMATS } from '../../sql/policy.js';
import { translate, type PreparedQuery } from '../../sql/query-service.js';
import { authenticate } from '../auth.js';
import { decoded, hasBody, isForm, isJson, queryParams, rawStream, readAll } from '../body.js';

const GET_LIMIT = 8 * 1024;
const POST_LIMIT = 1024 * 1024;
const DEFAULT_FORMAT = 'TabSeparated';
/**
 * Formats answered whole rather than streamed: their envelope carries statistics
 * (rows_before_limit_at_least, rows_read) that the engine's streaming API leaves out, and their
 * results are bounded by max_result_bytes anyway. Row formats (CSV, NDJSON, Parquet...) stream.
 */
const BUFFERED_FORMATS = new Set(['JSON', 'JSONCompact', 'JSONStrings']);

const FLAG_SETTINGS = ['output_format_json_quote_64bit_integers', 'output_format_json_quote_denormals', 'output_format_parquet_string_as_string'] as const;

interface SqlRequest {
  q: string;
  params: Record<string, string>;
}

async function readRequest(req: FastifyRequest): Promise<SqlRequest> {
  const params = queryParams(req);
  if (req.method === 'GET') {
    const q = params.q;
    if (q === undefined || q.trim() === '') throw badRequest('missing q parameter. example q=select%201');
    if (Buffer.byteLength(q) > GET_LIMIT) throw badRequest('The maximum size for a SQL query is 8KB.');
    return { q, params };
  }
  const body = hasBody(req) ? await readAll(decoded(rawStream(req), req.headers['content-encoding']), POST_LIMIT).catch((err) => {
    if (err instanceof PipitError && err.code === 'payload_too_large') throw badRequest('The maximum size for a SQL query is 1MB.');
    throw err;
  }) : Buffer.alloc(0);
  let q: string | undefined = params.q;
  if (isJson(req) && body.length) {
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      throw badRequest('The request body should be a JSON object like {"q": "SELECT 1"}');
    }
    if (!json || typeof json !== 'object' || Array.isArray(json)) throw badRequest('The request body should be a JSON object like {"q": "SELECT 1"}');
    for (const [k, v] of Object.entries(json as Record<string, unknown>)) {
      if (k === 'q') q = typeof v === 'string' ? v : undefined;
      else params[k] = typeof v === 'string' ? v : JSON.stringify(v);
    }
  } else if (isForm(req) && /(?:^|&)q=/.test(body.toString('utf8'))) {
    for (const [k, v] of new URLSearchParams(body.toString('utf8'))) {
      if (k === 'q') q = v;
      else params[k] = v;
    }
  } else if (body.length) {
    // Raw SQL, whatever the Content-Type says (curl -d sends a form type).
    q = body.toString('utf8');
  }
  if (q === undefined || q.trim() === '') throw badRequest('The request body should contain a query');
  return { q, params };
}

function flag(params: Record<string, string>, name: string): 0 | 1 | undefined {
  const v = params[name];
  if (v === undefined || v === '') return undefined;
  if (v === '0' || v === '1') return Number(v) as 0 | 1;
  throw badRequest(`${name} must be 0 or 1`);
}

function maxThreadsOf(params: Record<string, string>): number | undefined {
  const v = params.max_threads;
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isInteger(n) || n < 1) throw badRequest('max_threads must be an integer value');
  return Math.min(n, 64);
}

function contentType(format: string): string {
  const f = OUTPUT_FORMATS[format.toLowerCase()];
  const base = f?.contentType ?? 'text/tab-separated-values';
  return base.startsWith('text/') || base === 'application/json' || base === 'application/x-ndjson' ? `${base}; charset=UTF-8` : base;
}

export function sqlRoutes(services: Services): FastifyPluginAsync {
  return async (app) => {
    const handler = async (req: FastifyRequest, reply: FastifyReply) => {
      const auth = await authenticate(services, req);
      const { q, params } = await readRequest(req);
      if (q.trimStart().startsWith('%')) {
        throw badRequest('Template queries (starting with %) are not supported by this server yet; send plain SQL');
      }
      if (params.pipeline) throw new PipitError('forbidden', `Resource '${params.pipeline}' not found`);
      if (params.template_parameters !== undefined) {
        try {
          JSON.parse(params.template_parameters);
        } catch {
          throw badRequest('template_parameters must be a well-formed JSON');
        }
      }
      const formatSettings: Record<string, 0 | 1> = {};
      for (const name of FLAG_SETTINGS) {
        const v = flag(params, name);
        if (v !== undefined) formatSettings[name] = v;
      }
      const maxThreads = maxThreadsOf(params);
      const prepared = await services.queries.prepare(auth, q);

      const ac = new AbortController();
      const onClose = () => {
        if (!reply.raw.writableFinished) ac.abort();
      };
      reply.raw.on('close', onClose);

      if (params.explain === 'true') {
        const result = await services.queries.run({ ...prepared, sql: `EXPLAIN ${prepared.sql}` }, { format: 'TSVRaw', queryId: req.id, signal: ac.signal, maxThreads, buffered: true });
        const parts: Buffer[] = [];
        for await (const c of result) parts.push(c);
        return reply.type('application/json').send({ debug_query: prepared.sql, query_explain: prepared.userNames(Buffer.concat(parts).toString('utf8')), explain_error: '' });
      }

      const format = prepared.format ?? DEFAULT_FORMAT;
      const started = process.hrtime.bigint();
      const result = await services.queries.run(prepared, { format, queryId: req.id, signal: ac.signal, maxThreads, formatSettings, buffered: BUFFERED_FORMATS.has(format) });
      const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
      reply.header('x-tb-statistics', JSON.stringify(result.stats ? { elapsed, rows_read: result.stats.rowsRead, bytes_read: result.stats.bytesRead } : { elapsed }));
      reply.header('x-tb-warning', '[]');
      reply.type(contentType(format));
      const body = streamOf(result, prepared, req);
      if (/\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) {
        reply.header('content-encoding', 'gzip');
        return reply.send(body.pipe(zlib.createGzip()));
      }
      return reply.send(body);
    };
    app.get('/v0/sql', handler);
    app.post('/v0/sql', handler);
  };
}

/** The engine's chunks as a Readable; an error mid-stream ends the response abruptly (the status is already sent). */
function streamOf(result: AsyncIterable<Buffer> & { cancel(): void }, prepared: PreparedQuery, req: FastifyRequest): Readable {
  const out = new PassThrough();
  (async () => {
    try {
      for await (const chunk of result) {
        if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', r));
        if (out.destroyed) {
          result.cancel();
          return;
        }
      }
      out.end();
    } catch (err) {
      const e = translate(err, prepared);
      req.log.warn({ err: e instanceof EngineError ? e.message : String(e) }, 'query failed while streaming');
      out.destroy(e instanceof Error ? e : new Error(String(e)));
    }
  })();
  out.on('close', () => result.cancel());
  return out;
}
