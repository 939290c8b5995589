/**
 * Events API (`POST /v0/events?name=<ds>`): NDJSON whatever the Content-Type, gzip by header or
 * magic bytes, 202 once the rows are in the write-ahead log, 200 with `wait=true` once they are in
 * the engine. Errors are text/plain, as Tinybird's events service answers them.
 */
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { Services } from '../../app.js';
import type { DatasourceRecord } from '../../catalog/catalog.js';
import { PipitError } from '../../domain/errors.js';
import { EventBuffer } from '../../ingest/event-buffer.js';
import { countNonEmptyLines } from '../../ingest/ingest-service.js';
import { physicalNames } from '../../ingest/physical.js';
import { authenticate } from '../auth.js';
import { decoded, queryParams, readAll } from '../body.js';
import { STATUS } from '../errors.js';

/** Largest Events API request body after decompression. */
const MAX_EVENTS_BODY = 64 * 1024 * 1024;
/** Bodies at least this large are already a batch: logged and inserted on their own. */
const LARGE_BODY = 1024 * 1024;

function text(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).type('text/plain; charset=utf-8').send(body.endsWith('\n') ? body : body + '\n');
}

export const eventRoutes = (s: Services): FastifyPluginAsync => async (app) => {
  app.post('/v0/events', async (req, reply) => {
    const p = queryParams(req);
    let auth;
    try {
      auth = await authenticate(s, req);
    } catch {
      return text(reply, 403, 'Invalid token');
    }
    if (!p.name) return text(reply, 400, "Missing 'name' parameter");
    const format = (p.format ?? 'ndjson').toLowerCase();
    if (format !== 'ndjson' && format !== 'json') return text(reply, 501, `Format "${format}" is not implemented, use format=ndjson`);
    try {
      const body = await readAll(decoded(req.raw, req.headers['content-encoding']), MAX_EVENTS_BODY);
      const rows = countNonEmptyLines(body);
      let ds: DatasourceRecord | null = await s.datasources.find(auth.workspace, p.name);
      if (!ds) {
        if (!auth.canCreateDatasources) return text(reply, 403, 'Invalid token for DS autocreation');
        if (rows === 0) return text(reply, 400, 'Analysis error, invalid data. We could not infer the schema, please create the datasource manually and try again.');
        try {
          const inferred = s.imports.inferFromSample('ndjson', body.subarray(0, 10 * 1024 * 1024), {});
          ds = await s.datasources.create(auth.workspace, { name: p.name, columns: inferred.columns, engine: inferred.engine, indexes: [], description: '' });
        } catch (err) {
          // Another request may have created it meanwhile.
          ds = await s.datasources.find(auth.workspace, p.name);
          if (!ds) {
            if (err instanceof PipitError && err.code === 'bad_request') return text(reply, 400, err.message);
            throw err;
          }
        }
      }
      if (!auth.canAppend(ds.id)) return text(reply, 403, 'Invalid token');
      if (ds.format !== 'ndjson') return text(reply, 400, 'Data Source must be of type JSON');
      if (rows === 0) return reply.code(p.wait === 'true' ? 200 : 202).send({ successful_rows: 0, quarantined_rows: 0 });
      const wait = p.wait === 'true';
      const target = { workspaceId: auth.workspace.id, datasourceId: ds.id, stage: physicalNames(auth.workspace.database, ds.id).jsonStage };
      const started = Date.now();
      if (body.length >= LARGE_BODY) await s.events.appendLarge(target, body, req.id, wait);
      else await s.events.append(target, EventBuffer.toTsv(body, req.id), req.id, wait);
      if (!wait) return reply.code(202).send({ successful_rows: rows, quarantined_rows: 0 });
      const q = await s.ingest.countQuarantined(auth.workspace, ds, req.id, started);
      return reply.code(200).send({ successful_rows: rows - q, quarantined_rows: q });
    } catch (err) {
      if (err instanceof PipitError) return text(reply, STATUS[err.code], err.message);
      req.log.error({ err }, 'events request failed');
      return text(reply, 500, 'Unhandled exception, please retry');
    }
  });
};
