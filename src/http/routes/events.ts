/**
 * Events API (`POST /v0/events?name=<ds>`): NDJSON whatever the Content-Type, gzip by header or
 * magic bytes (also base64-encoded gzip, as AWS Firehose sends it), 202 once the rows are in the
 * write-ahead log, 200 with `wait=true` once they are in the engine. Errors are text/plain, as
 * Tinybird's events service answers them.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import zlib from 'node:zlib';
import type { Services } from '../services.js';
import { named } from '../route-docs.js';
import type { DatasourceRecord } from '../../catalog/catalog.js';
import { PipitError } from '../../basics/errors.js';
import { asDiskFull, DISK_FULL_RETRY_AFTER } from '../../basics/disk.js';
import { validateResourceName } from '../../schema/names.js';
import { SchemaError } from '../../schema/errors.js';
import { ACCEPTED, EventBuffer } from '../../ingest/event-buffer.js';
import { countNdjsonLines } from '../../ingest/ingest-service.js';
import { physicalNames } from '../../ingest/physical.js';
import { authenticate } from '../auth.js';
import { infoOf, requestContext } from '../../observability/context.js';
import { decoded, eachChunk, queryParams, readAll } from '../body.js';
import { STATUS } from '../errors.js';

/**
 * Largest request body as sent (before decompression). Tinybird documents "up to 10 MB per
 * request" for the Events API (Classic docs; Forward docs: 10 MB on Free plans) and says a larger
 * request gets "HTTP 413 - Request Entity Too Large"; the reference (§3, §12) has no observed
 * message and notes that one server snapshot only warned. We follow the documented contract, 413
 * with a text/plain body like every Events API error, because a client built against Tinybird
 * splits its batches below this size anyway, and an unbounded body would be held in memory whole.
 */
export const MAX_EVENTS_REQUEST = 10 * 1024 * 1024;
/**
 * Largest body after decompression: bounds memory for gzip bodies (a 10 MB gzip of NDJSON is
 * typically 50–100 MB of rows). 100 MB is the largest per-request size Tinybird documents (paid plans).
 */
export const MAX_EVENTS_DECODED = 100 * 1024 * 1024;
/** Bodies at least this large are already a batch: logged and inserted on their own. */
const LARGE_BODY = 1024 * 1024;

const TOO_LARGE = `Request Entity Too Large: the Events API accepts up to 10 MB per request (${MAX_EVENTS_REQUEST} bytes). Split the events into smaller requests.`;
const TOO_LARGE_DECODED = `Request Entity Too Large: the decompressed body exceeds ${MAX_EVENTS_DECODED} bytes. Split the events into smaller requests.`;
const EMPTY_BODY = 'The request body is empty: send the events as NDJSON, one JSON object per line.';
const ANALYSIS_ERROR =
  'Analysis error, invalid data. We could not infer the schema, please create the datasource manually and try again or contact us at support@tinybird.co.';
/** `H4sI` is base64 for the gzip magic bytes and deflate method (1f 8b 08). */
const BASE64_GZIP = Buffer.from('H4sI');

function text(reply: FastifyReply, status: number, body: string): FastifyReply {
  // Every 503 here (full disk, backlog, shutting down) is worth retrying after a while.
  if (status === 503 && !reply.hasHeader('retry-after')) reply.header('retry-after', String(DISK_FULL_RETRY_AFTER));
  return reply
    .code(status)
    .type('text/plain; charset=utf-8')
    .send(body.endsWith('\n') ? body : body + '\n');
}

/**
 * Reused buffers for large bodies (a declared Content-Length of at least LARGE_BODY). A fresh 8 MB
 * buffer per request cost the main thread 12–25 ms on this kind of VM (its pages faulted in one by
 * one, then unmapped again, and the garbage collections its external memory set off), a reused
 * one < 1 ms to fill (docs/benchmarks.md, "Session 7"). At most POOLED idle buffers of
 * MAX_EVENTS_REQUEST are kept; more large requests at once take fresh ones, dropped when done.
 */
const POOLED = 2;
const pool: Buffer[] = [];

/** A request body and what to call once nothing reads it any more (a pooled buffer goes back). */
interface Body {
  bytes: Buffer;
  release: () => void;
}
const KEEP = () => undefined;

/**
 * The body's bytes as sent, at most MAX_EVENTS_REQUEST (413 beyond). With a declared length of at
 * least LARGE_BODY they are copied into a pooled buffer as they arrive (no list of chunks joined
 * at the end); otherwise joined once.
 */
async function readRaw(req: FastifyRequest): Promise<Body> {
  const declared = Number(req.headers['content-length'] ?? Number.NaN);
  if (!(declared >= LARGE_BODY && declared <= MAX_EVENTS_REQUEST)) {
    const parts: Buffer[] = [];
    let n = 0;
    await eachChunk(req, (c) => {
      n += c.length;
      if (n > MAX_EVENTS_REQUEST) throw new PipitError('payload_too_large', TOO_LARGE);
      parts.push(c);
    });
    return { bytes: parts.length === 1 ? parts[0] : Buffer.concat(parts, n), release: KEEP };
  }
  const buf = pool.pop() ?? Buffer.allocUnsafe(MAX_EVENTS_REQUEST);
  const release = () => {
    if (pool.length < POOLED) pool.push(buf);
  };
  let n = 0;
  try {
    // Node's HTTP parser delivers at most the declared length.
    await eachChunk(req, (c) => {
      n += c.copy(buf, n);
    });
  } catch (err) {
    release();
    throw err;
  }
  return { bytes: buf.subarray(0, n), release };
}

/** The body, decompressed when gzip (by header or magic bytes; also base64-encoded gzip). */
async function readBody(req: FastifyRequest): Promise<Body> {
  const raw = await readRaw(req);
  const b = raw.bytes;
  const gzip = (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) || /gzip/i.test(req.headers['content-encoding'] ?? '');
  if (gzip) {
    try {
      const one = (async function* () {
        yield b;
      })();
      return { bytes: await readAll(decoded(one, req.headers['content-encoding']), MAX_EVENTS_DECODED), release: KEEP };
    } catch (err) {
      if (err instanceof PipitError && err.code === 'payload_too_large') throw new PipitError('payload_too_large', TOO_LARGE_DECODED);
      throw err;
    } finally {
      raw.release();
    }
  }
  if (b.length >= 4 && b.subarray(0, 4).equals(BASE64_GZIP)) {
    try {
      return { bytes: zlib.gunzipSync(Buffer.from(b.toString('latin1'), 'base64'), { maxOutputLength: MAX_EVENTS_DECODED }), release: KEEP };
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw new PipitError('payload_too_large', TOO_LARGE_DECODED);
      throw new PipitError('bad_request', `The body could not be decompressed: ${(err as Error).message}`);
    } finally {
      raw.release();
    }
  }
  return raw;
}

export const eventRoutes =
  (s: Services): FastifyPluginAsync =>
  async (app) => {
    app.post('/v0/events', named('APIEventsHandler'), async (req, reply) => {
      const p = queryParams(req);
      let auth;
      try {
        auth = await authenticate(s, req, { jwt: true, reply });
      } catch (err) {
        if (err instanceof PipitError && err.code === 'too_many_requests') return text(reply, 429, 'Too many requests');
        return text(reply, 403, 'Invalid token');
      }
      if (!p.name) return text(reply, 400, "Missing 'name' parameter");
      const format = (p.format ?? 'ndjson').toLowerCase();
      // The Events API takes NDJSON only, as Tinybird's does: other formats are its 501 (reference §3).
      if (format !== 'ndjson' && format !== 'json') return text(reply, 501, `Format "${format}" is not implemented, use format=ndjson`);
      const wait = p.wait === 'true';
      try {
        // Everything that does not need the body is checked before reading it.
        let ds: DatasourceRecord | null = await s.datasources.find(auth.workspace, p.name);
        if (ds) {
          if (!auth.canWrite(ds.id, 'append')) return text(reply, 403, 'Invalid token');
          if (ds.format !== 'ndjson') return text(reply, 400, 'Data Source must be of type JSON');
        } else {
          if (!auth.canWrite(null, 'create')) return text(reply, 403, 'Invalid token for DS autocreation');
          validateResourceName(p.name);
        }
        const declared = Number(req.headers['content-length'] ?? NaN);
        if (declared > MAX_EVENTS_REQUEST) return text(reply, 413, TOO_LARGE);

        const read = await readBody(req);
        // The body's memory is given back here unless appendLarge takes it (and gives it back once inserted).
        let taken = false;
        try {
          const body = read.bytes;
          const { lines: rows, notObjects } = countNdjsonLines(body);
          if (rows === 0) return text(reply, 400, ds ? EMPTY_BODY : ANALYSIS_ERROR);
          if (!ds) {
            let inferred;
            try {
              inferred = s.imports.inferFromSample('ndjson', body.subarray(0, 10 * 1024 * 1024), {});
            } catch (err) {
              if (err instanceof PipitError && err.code === 'bad_request') return text(reply, 400, ANALYSIS_ERROR);
              throw err;
            }
            try {
              // In the request context, so the `create` operation carries the request id. The route
              // itself runs outside it (READ_ROUTES, src/http/observability.ts): the rest of an Events
              // API request records nothing through it, and an open scope turns on V8's promise hooks
              // for the whole process.
              const info = infoOf(req);
              const create = () =>
                s.datasources.create(auth.workspace, {
                  name: p.name,
                  columns: inferred.columns,
                  engine: inferred.engine,
                  indexes: [],
                  description: '',
                });
              ds = info ? await requestContext.run(info, create) : await create();
            } catch (err) {
              // Another request may have created it meanwhile.
              ds = await s.datasources.find(auth.workspace, p.name);
              if (!ds) throw err;
            }
          }
          await s.datasources.ensureStage(auth.workspace, ds, 'json');
          const target = {
            workspaceId: auth.workspace.id,
            database: auth.workspace.database,
            datasourceId: ds.id,
            stage: physicalNames(auth.workspace.database, ds.id).jsonStage,
          };
          const started = Date.now();
          let flushed: number | null = null;
          if (body.length >= LARGE_BODY) {
            taken = true;
            await s.events.appendLarge(target, body, req.id, wait, read.release);
          } else flushed = await s.events.append(target, EventBuffer.rowsOf(body, req.id), req.id, wait);
          // Without wait (or when the rows are durable in the log but not yet in the engine, ACCEPTED:
          // they will be), lines that cannot be JSON objects are already known to be quarantined; the
          // engine's verdict on the others (bad JSON, values that do not convert) needs wait=true.
          if (!wait || flushed === ACCEPTED) return reply.code(202).send({ successful_rows: rows - notObjects, quarantined_rows: notObjects });
          const q = await s.ingest.countQuarantined(auth.workspace, ds, req.id, started);
          return reply.code(200).send({ successful_rows: rows - q, quarantined_rows: q });
        } finally {
          if (!taken) read.release();
        }
      } catch (e) {
        // A full disk met anywhere (creating the data source, the catalog, the log) is a retryable 503.
        const err = asDiskFull(e);
        if (err instanceof PipitError) return text(reply, STATUS[err.code], err.message);
        if (err instanceof SchemaError) return text(reply, 400, err.message);
        req.log.error({ err }, 'events request failed');
        return text(reply, 500, 'Unhandled exception, please retry');
      }
    });
  };
