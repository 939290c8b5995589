/**
 * Sending a user query's result: the one path shared by the Query API and pipe endpoints.
 * Headers (content type, statistics, warnings), gzip when accepted, streaming for row formats,
 * whole answers for the JSON envelope formats, cancellation when the client goes away, and the
 * small in-memory result cache of `cache_ttl()` templates.
 */
import { pipeline, Readable } from 'node:stream';
import crypto from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { Socket } from 'node:net';
import zlib from 'node:zlib';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from './services.js';
import { badRequest } from '../basics/errors.js';
import { OUTPUT_FORMATS } from '../sql/policy.js';
import { translate, type PreparedQuery } from '../domain/query-service.js';
import { noteQuery } from '../observability/context.js';

/**
 * Formats answered whole rather than streamed: their envelope carries statistics
 * (rows_before_limit_at_least, rows_read) that the engine's streaming API leaves out, and their
 * results are bounded by max_result_bytes anyway. Row formats (CSV, NDJSON, Parquet...) stream.
 */
const BUFFERED_FORMATS = new Set(['JSON', 'JSONCompact', 'JSONStrings']);

export const FLAG_SETTINGS = [
  'output_format_json_quote_64bit_integers',
  'output_format_json_quote_denormals',
  'output_format_parquet_string_as_string',
] as const;

export interface OutputOptions {
  format: string;
  /** Cache entries are per workspace. */
  workspaceId: string;
  maxThreads?: number;
  formatSettings?: Record<string, 0 | 1>;
}

/** The output settings a request asks for (`output_format_*=0|1`, `max_threads`), validated. */
export function outputParams(params: Record<string, unknown>): { maxThreads?: number; formatSettings: Record<string, 0 | 1> } {
  const formatSettings: Record<string, 0 | 1> = {};
  for (const name of FLAG_SETTINGS) {
    const v = params[name];
    if (v === undefined || v === '') continue;
    if (v === '0' || v === '1' || v === 0 || v === 1) formatSettings[name] = Number(v) as 0 | 1;
    else throw badRequest(`${name} must be 0 or 1`);
  }
  let maxThreads: number | undefined;
  const t = params.max_threads;
  if (t !== undefined && t !== '') {
    const text = String(t);
    if (!/^\d+$/.test(text) || Number(text) < 1) throw badRequest('max_threads must be an integer value');
    maxThreads = Math.min(Number(text), 64);
  }
  return { maxThreads, formatSettings };
}

const contentTypes = new Map<string, string>();

/** The Content-Type of an output format (worked out once per format name). */
function contentType(format: string): string {
  let t = contentTypes.get(format);
  if (t === undefined) {
    const base = OUTPUT_FORMATS[format.toLowerCase()]?.contentType ?? 'text/tab-separated-values';
    t = base.startsWith('text/') || base === 'application/json' || base === 'application/x-ndjson' ? `${base}; charset=UTF-8` : base;
    if (contentTypes.size < 256) contentTypes.set(format, t);
  }
  return t;
}

interface CacheEntry {
  expires: number;
  body: Buffer;
  headers: Record<string, string>;
}

/** A digest of a query's bound values (secrets), for cache keys; '' when it binds none. */
function secretsDigest(params: Readonly<Record<string, string>>): string {
  const entries = Object.entries(params).sort(([a], [b]) => (a < b ? -1 : 1));
  return entries.length ? crypto.createHash('sha256').update(JSON.stringify(entries)).digest('base64url') : '';
}

/** Results of `cache_ttl()` queries, keyed by workspace + final SQL + output settings. */
export class ResultCache {
  private readonly entries = new Map<string, CacheEntry>();
  private bytes = 0;

  constructor(private readonly maxBytes = 256 * 1024 * 1024) {}

  get(key: string): CacheEntry | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expires < Date.now()) {
      this.delete(key);
      return undefined;
    }
    return e;
  }

  set(key: string, e: CacheEntry): void {
    if (e.body.length > this.maxBytes / 8) return;
    this.delete(key);
    this.entries.set(key, e);
    this.bytes += e.body.length;
    for (const k of this.entries.keys()) {
      if (this.bytes <= this.maxBytes) break;
      this.delete(k);
    }
  }

  private delete(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.bytes -= e.body.length;
    this.entries.delete(key);
  }
}

const connectionSignals = new WeakMap<Socket, AbortSignal>();

/**
 * A signal that aborts when the client has gone away: its connection closed. A response whose
 * client leaves before it has been sent closes with its connection (HTTP/1.1), so one signal per
 * connection serves each of its keep-alive requests in turn: no AbortController and no listener
 * per request (they cost more main-thread time than anything else Pipit adds to a small query).
 */
function clientGone(reply: FastifyReply): AbortSignal {
  const socket = reply.raw.socket;
  if (!socket || socket.destroyed) return AbortSignal.abort();
  let signal = connectionSignals.get(socket);
  if (!signal) {
    const ac = new AbortController();
    signal = ac.signal;
    // Pipelined requests of one connection may wait on it together.
    setMaxListeners(0, signal);
    connectionSignals.set(socket, signal);
    socket.once('close', () => ac.abort());
  }
  return signal;
}

/** Runs `prepared` and sends its result in `opts.format`. */
export async function sendQuery(
  services: Services,
  req: FastifyRequest,
  reply: FastifyReply,
  prepared: PreparedQuery,
  opts: OutputOptions,
): Promise<FastifyReply> {
  const { format } = opts;
  const signal = clientGone(reply);
  const accepts = req.headers['accept-encoding'];
  const gzip = accepts !== undefined && /\bgzip\b/.test(accepts);
  const warnings = prepared.warnings.length ? JSON.stringify(prepared.warnings) : '[]';
  const buffered = BUFFERED_FORMATS.has(format) || prepared.cacheTtl !== undefined;
  const cacheKey =
    prepared.cacheTtl !== undefined
      ? // The SQL holds placeholders for bound secrets: their values (hashed, never kept) are part of
        // the key, so a changed variable is not answered from a result computed with the old one.
        JSON.stringify([
          opts.workspaceId,
          prepared.sql,
          secretsDigest(prepared.queryParams),
          format,
          opts.maxThreads ?? prepared.maxThreads ?? null,
          opts.formatSettings ?? {},
        ])
      : undefined;

  if (cacheKey) {
    const hit = services.resultCache.get(cacheKey);
    if (hit) {
      for (const [k, v] of Object.entries(hit.headers)) reply.header(k, v);
      reply.header('x-cache-hits', '1');
      return send(reply, hit.body, gzip);
    }
  }

  const started = performance.now();
  const result = await services.queries.run(prepared, {
    format,
    queryId: req.id,
    signal,
    maxThreads: opts.maxThreads,
    formatSettings: opts.formatSettings,
    buffered,
  });
  const elapsed = (performance.now() - started) / 1000;
  // Queries that read only service data sources are not recorded in pipe_stats_rt (as in Tinybird).
  const serviceOnly = prepared.tables.length > 0 && prepared.tables.every((t) => t.kind === 'service' || t.kind === 'system');
  noteQuery(req, { readRows: result.stats?.rowsRead, readBytes: result.stats?.bytesRead, serviceOnly });
  const type = contentType(format);
  const statistics = JSON.stringify(result.stats ? { elapsed, rows_read: result.stats.rowsRead, bytes_read: result.stats.bytesRead } : { elapsed });
  reply.header('content-type', type);
  reply.header('x-tb-statistics', statistics);
  reply.header('x-tb-warning', warnings);

  if (buffered) {
    // Answered as one Buffer: a Content-Length and no stream plumbing.
    const body = result.whole ?? (await wholeOf(result, prepared));
    if (cacheKey && prepared.cacheTtl !== undefined)
      services.resultCache.set(cacheKey, {
        expires: Date.now() + prepared.cacheTtl * 1000,
        body,
        headers: { 'content-type': type, 'x-tb-statistics': statistics, 'x-tb-warning': warnings },
      });
    else noteQuery(req, { resultRows: envelopeRows(body) });
    return send(reply, body, gzip);
  }
  return send(reply, streamOf(result, prepared, req, reply), gzip);
}

/** A result read to its end, as one Buffer. */
async function wholeOf(result: AsyncIterable<Buffer>, prepared: PreparedQuery): Promise<Buffer> {
  const parts: Buffer[] = [];
  try {
    for await (const c of result) parts.push(c);
  } catch (err) {
    throw translate(err, prepared);
  }
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

/** The `"rows": N` of a JSON envelope, read from its tail (after `data`); undefined for other bodies. */
function envelopeRows(body: Buffer): number | undefined {
  const tail = body.subarray(Math.max(0, body.length - 512)).toString('latin1');
  const m = /"rows":\s*(\d+)/.exec(tail);
  return m ? Number(m[1]) : undefined;
}

/**
 * A whole answer (Buffer) or a stream, gzipped when the client accepts it. A stream goes through
 * `pipeline`, so an error of the source destroys the gzip stream with it (never a dangling,
 * unlistened stream error, which would end the process), and Fastify then ends the response
 * without its terminating chunk: the client sees a truncated body, and with gzip no trailer.
 */
function send(reply: FastifyReply, body: Buffer | Readable, gzip: boolean): FastifyReply {
  if (!gzip) return reply.send(body);
  reply.header('content-encoding', 'gzip');
  if (Buffer.isBuffer(body)) return reply.send(zlib.gzipSync(body));
  // Each engine chunk is flushed (Z_SYNC_FLUSH, no trailer) so rows reach the client as the
  // engine produces them. The error itself is logged where it happens (streamOf) and ends the
  // response through Fastify.
  const gz = pipeline(body, zlib.createGzip({ flush: zlib.constants.Z_SYNC_FLUSH }), () => undefined);
  return reply.send(gz);
}

/**
 * The engine's chunks as a Readable. An error mid-stream is logged and destroys the stream: with
 * the status already sent, the response is cut short (the socket is destroyed before the final
 * chunk); before any byte left, Fastify's error handler answers with the translated error instead
 * (so the gzip header of the stream is dropped first). Closing the stream (client gone, error)
 * cancels the query.
 */
function streamOf(result: AsyncIterable<Buffer> & { cancel(): void }, prepared: PreparedQuery, req: FastifyRequest, reply: FastifyReply): Readable {
  async function* chunks(): AsyncGenerator<Buffer> {
    try {
      yield* result;
    } catch (err) {
      const e = translate(err, prepared);
      req.log.warn({ err: e instanceof Error ? e.message : String(e), headersSent: reply.raw.headersSent }, 'query failed while streaming; response cut short');
      if (!reply.raw.headersSent) reply.removeHeader('content-encoding');
      throw e instanceof Error ? e : new Error(String(e));
    }
  }
  const out = Readable.from(chunks(), { objectMode: false });
  out.on('close', () => result.cancel());
  return out;
}
