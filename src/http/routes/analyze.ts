/**
 * `POST /v0/analyze`: infers columns (JSONPaths and recommended types), a schema string and a
 * preview from a file, a body or a url, without creating anything.
 */
import fs from 'node:fs';
import type { FastifyPluginAsync } from 'fastify';
import type { Services } from '../services.js';
import { named } from '../route-docs.js';
import { badRequest } from '../../basics/errors.js';
import { formatFromName, peek, type DataFormat } from '../../domain/import-service.js';
import { printSchema } from '../../schema/index.js';
import type { Column } from '../../basics/types.js';
import { CsvParser, hasHeader } from '../../ingest/formats/csv.js';
import { inferJsonColumns, isNullToken, parseNdjsonSample } from '../../ingest/formats/guess.js';
import type { CsvDialect } from '../../ingest/ingest-service.js';
import { parseJsonPath } from '../../ingest/jsonpath.js';
import { authenticate } from '../auth.js';
import { decoded, hasBody, isMultipart, queryParams, rawStream, readMultipart } from '../body.js';
import { dialectOf } from './datasources.js';
import { fetchUrl } from './url-fetch.js';

const SAMPLE_BYTES = 1024 * 1024;
const PREVIEW_ROWS = 10;

/** A preview value as ClickHouse's JSON output prints it: null, a number for types up to 32 bits, else text. */
function previewValue(raw: string, type: string): unknown {
  if (isNullToken(raw) && /^Nullable\(/.test(type)) return null;
  const base = type.replace(/^(?:LowCardinality\()?(?:Nullable\()?([^()]+)\)*$/, '$1');
  if (/^(U?Int(8|16|32)|Float(32|64))$/.test(base) && raw.trim() !== '' && Number.isFinite(Number(raw))) return Number(raw);
  return raw;
}

/** The first data rows of a CSV sample, keyed by the analysed column names. */
function csvPreviewRows(text: string, dialect: CsvDialect, complete: boolean, columns: readonly Column[]): Record<string, unknown>[] {
  const parser = new CsvParser(dialect);
  const records = [...parser.push(text), ...(complete ? parser.end() : [])].filter((r) => r.fields).map((r) => r.fields!);
  const rows = hasHeader(records) ? records.slice(1) : records;
  return rows.slice(0, PREVIEW_ROWS).map((r) => Object.fromEntries(columns.map((c, i) => [c.name, previewValue(r[i] ?? '', c.type)])));
}

/** One NDJSON object as a preview row: each column's JSONPath evaluated (missing → null). */
function jsonPreviewRow(obj: unknown, columns: readonly Column[]): Record<string, unknown> {
  const at = (v: unknown, keys: string[]): unknown =>
    keys.reduce<unknown>((o, k) => (o !== null && typeof o === 'object' && !Array.isArray(o) ? (o as Record<string, unknown>)[k] : undefined), v);
  return Object.fromEntries(
    columns.map((c) => {
      const path = parseJsonPath(c.jsonpath ?? '$');
      if (path.whole) return [c.name, JSON.stringify(obj)];
      const v = at(obj, path.keys);
      const value = path.array && Array.isArray(v) ? v.map((el) => at(el, path.rest)) : v;
      return [c.name, value === undefined ? null : value];
    }),
  );
}

export const analyzeRoutes =
  (s: Services): FastifyPluginAsync =>
  async (app) => {
    app.post('/v0/analyze', named('APIAnalyzeHandler'), async (req) => {
      const auth = await authenticate(s, req);
      auth.requireCreate();
      const p = queryParams(req);
      let result: unknown = null;
      const analyze = async (stream: AsyncIterable<Buffer>, filename?: string, field?: string) => {
        let format = (p.format && p.format !== 'auto' ? p.format : null) as DataFormat | null;
        if (format && !['csv', 'ndjson', 'parquet'].includes(format))
          throw badRequest(`Invalid format "${format}", valid formats are csv, ndjson, parquet, auto`);
        format ??= field === 'ndjson' || field === 'parquet' ? field : formatFromName(filename);
        const { head, stream: all } = await peek(stream, SAMPLE_BYTES);
        if (!head.length) throw badRequest('No data was provided');
        if (!format && head.subarray(0, 4).toString('latin1') === 'PAR1') format = 'parquet';
        if (format === 'parquet') {
          const file = await s.imports.spool(all);
          try {
            const inf = await s.imports.inferFromParquet(file);
            const columns = inf.columns.map((c) => ({ path: c.jsonpath, recommended_type: c.type, present_pct: 1, name: c.name }));
            const preview = await s.engine.withFile(file, 'Parquet', (from) => s.preview(from));
            return { analysis: { columns, schema: printSchema(inf.columns) }, preview };
          } finally {
            fs.rmSync(file, { force: true });
          }
        }
        const text = head.toString('utf8');
        if (!format) format = /^\s*[{[]/.test(text) ? 'ndjson' : 'csv';
        if (format === 'ndjson') {
          const { objects } = parseNdjsonSample(text);
          if (!objects.length) throw badRequest('Cannot analyze ndjson file. No valid JSON objects found');
          const cols = inferJsonColumns(objects);
          const inf = s.imports.inferFromSample('ndjson', head, {});
          const data = objects.slice(0, PREVIEW_ROWS).map((o) => jsonPreviewRow(o, inf.columns));
          return {
            analysis: { columns: cols, schema: printSchema(inf.columns) },
            preview: {
              meta: inf.columns.map((c) => ({ name: c.name, type: c.type })),
              data,
              rows: data.length,
              statistics: { elapsed: 0, rows_read: data.length, bytes_read: head.length },
            },
          };
        }
        const dialect = dialectOf(p);
        const inf = s.imports.inferFromSample('csv', head, dialect);
        const data = csvPreviewRows(text, dialect, head.length < SAMPLE_BYTES, inf.columns);
        return {
          analysis: {
            columns: inf.columns.map((c) => ({ path: null, recommended_type: c.type, present_pct: c.nullable ? 0.99 : 1, name: c.name })),
            schema: printSchema(inf.columns),
          },
          preview: {
            meta: inf.columns.map((c) => ({ name: c.name, type: c.type })),
            data,
            rows: data.length,
            statistics: { elapsed: 0, rows_read: data.length, bytes_read: head.length },
          },
        };
      };
      if (isMultipart(req)) {
        await readMultipart(req, p, async (part) => {
          result = await analyze(decoded(part.stream), part.filename, part.field);
        });
      } else if (p.url) {
        const r = await fetchUrl(p.url, s.config.allowPrivateUrls);
        try {
          result = await analyze(decoded(r.stream, r.contentEncoding), r.filename);
        } finally {
          // Only a sample is read: the rest of the download is dropped, not left hanging.
          r.close();
        }
      } else if (hasBody(req)) {
        result = await analyze(decoded(rawStream(req), req.headers['content-encoding']));
      }
      if (!result) throw badRequest('No data was provided');
      // Seed 003 documents a top-level `schema` string; Tinybird's clients read analysis.schema.
      return { ...(result as object), schema: (result as { analysis: { schema: string } }).analysis.schema };
    });
  };
