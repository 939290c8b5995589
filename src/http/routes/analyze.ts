/**
 * `POST /v0/analyze`: infers columns (JSONPaths and recommended types), a schema string and a
 * preview from a file, a body or a url, without creating anything.
 */
import fs from 'node:fs';
import type { FastifyPluginAsync } from 'fastify';
import type { Services } from '../../app.js';
import { badRequest } from '../../domain/errors.js';
import { formatFromName, peek, type DataFormat } from '../../domain/import-service.js';
import { printSchema } from '../../domain/schema/index.js';
import { inferJsonColumns, parseNdjsonSample } from '../../ingest/formats/guess.js';
import { authenticate } from '../auth.js';
import { decoded, hasBody, isMultipart, queryParams, readMultipart } from '../body.js';
import { fetchUrl } from './url-fetch.js';

export const analyzeRoutes = (s: Services): FastifyPluginAsync => async (app) => {
  app.post('/v0/analyze', async (req) => {
    const auth = await authenticate(s, req);
    auth.requireCreate();
    const p = queryParams(req);
    let result: unknown = null;
    const analyze = async (stream: AsyncIterable<Buffer>, filename?: string, field?: string) => {
      let format = (p.format && p.format !== 'auto' ? p.format : null) as DataFormat | null;
      format ??= field === 'ndjson' || field === 'parquet' ? field : formatFromName(filename);
      if (format === 'parquet') {
        const file = await s.imports.spool(stream);
        try {
          const inf = await s.imports.inferFromParquet(file);
          const columns = inf.columns.map((c) => ({ path: c.jsonpath, recommended_type: c.type, present_pct: 1, name: c.name }));
          return { analysis: { columns, schema: printSchema(inf.columns) }, preview: await s.preview(`file('${file}', Parquet)`) };
        } finally {
          fs.rmSync(file, { force: true });
        }
      }
      const { head } = await peek(stream, 1024 * 1024);
      if (!head.length) throw badRequest('No data was provided');
      const text = head.toString('utf8');
      if (!format) format = /^\s*[{[]/.test(text) ? 'ndjson' : 'csv';
      if (format === 'ndjson') {
        const { objects } = parseNdjsonSample(text);
        if (!objects.length) throw badRequest('Cannot analyze ndjson file. No valid JSON objects found');
        const cols = inferJsonColumns(objects);
        const inf = s.imports.inferFromSample('ndjson', head, {});
        const data = objects.slice(0, 10);
        return { analysis: { columns: cols, schema: printSchema(inf.columns) }, preview: { meta: inf.columns.map((c) => ({ name: c.name, type: c.type })), data, rows: data.length, statistics: { elapsed: 0, rows_read: data.length, bytes_read: head.length } } };
      }
      const inf = s.imports.inferFromSample('csv', head, { delimiter: p.dialect_delimiter });
      return { analysis: { columns: inf.columns.map((c) => ({ path: null, recommended_type: c.type, present_pct: c.nullable ? 0.99 : 1, name: c.name })), schema: printSchema(inf.columns) }, preview: { meta: inf.columns.map((c) => ({ name: c.name, type: c.type })), data: [], rows: 0 } };
    };
    if (isMultipart(req)) {
      await readMultipart(req, p, async (part) => {
        result = await analyze(decoded(part.stream), part.filename, part.field);
      });
    } else if (p.url) {
      const r = await fetchUrl(p.url, s.config.allowPrivateUrls);
      result = await analyze(decoded(r.stream, r.contentEncoding), r.filename);
    } else if (hasBody(req)) {
      result = await analyze(decoded(req.raw, req.headers['content-encoding']));
    }
    if (!result) throw badRequest('No data was provided');
    return result;
  });
};
