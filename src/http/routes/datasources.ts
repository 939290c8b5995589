/**
 * Data Sources API (`/v0/datasources`): create from a schema or from data, append, replace,
 * url imports as jobs, list/get/rename/drop, alter, truncate and delete-by-condition. Handlers
 * check scopes and shape responses; the work happens in the domain services.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Services } from '../services.js';
import { bodyLimit, named, pathParams } from '../route-docs.js';
import type { Auth } from '../../domain/access.js';
import type { DatasourceRecord, JobRecord } from '../../catalog/catalog.js';
import { badRequest, conflict, forbidden, notFound } from '../../basics/errors.js';
import type { PipeRecord } from '../../catalog/catalog.js';
import { renameTableInSql } from '../../sql/rename.js';
import { formatFromName, type DataFormat } from '../../domain/import-service.js';
import type { DataSource, WriteResult, WriteSpec } from '../../domain/datasource-write-service.js';
import { printDatasourceFile } from '../../datafile/index.js';
import { CsvParser } from '../../ingest/formats/csv.js';
import type { CsvDialect, IngestCounts } from '../../ingest/ingest-service.js';
import { authenticate } from '../auth.js';
import { decoded, hasBody, isForm, isMultipart, parseForm, queryParams, rawStream, readAll, readMultipart, readBody } from '../body.js';
import { datasourceJson, datasourceListJson, pickAttrs } from './datasource-json.js';
import { readsDatasource } from '../../domain/pipe-service.js';
import { jobJson } from './jobs.js';
import { checkUrl, fetchUrl } from './url-fetch.js';
import { checkJsonDepth } from '../../basics/input-limits.js';

const MODES = ['append', 'create', 'replace', 'migrate'];
const FORM_KEYS = new Set([
  'name',
  'mode',
  'schema',
  'format',
  'url',
  'engine',
  'indexes',
  'description',
  'token',
  'type_guessing',
  'replace_condition',
  'replace_truncate_when_empty',
  'progress',
  'debug',
  'dialect_delimiter',
  'dialect_new_line',
  'dialect_escapechar',
  'delete_condition',
  'dry_run',
  'ttl',
  'dry',
  'force',
  'backfill_column',
  'kafka_store_raw_value',
  'kafka_store_headers',
]);

/** The `dialect_*` params, checked: 400 with a message on any unusable value. */
export function dialectOf(p: Record<string, string>): CsvDialect {
  const d: CsvDialect = {};
  if (p.dialect_delimiter !== undefined) {
    const v = p.dialect_delimiter === '\\t' ? '\t' : p.dialect_delimiter;
    if (v.length !== 1) throw badRequest('The dialect delimiter must be a 1-character string');
    d.delimiter = v;
  }
  if (p.dialect_new_line !== undefined) {
    const v = p.dialect_new_line.replace(/\\n/g, '\n').replace(/\\r/g, '\r');
    if (v.length < 1 || v.length > 2) throw badRequest('The dialect new line must be a 1 or 2-character string');
    d.newline = v;
  }
  if (p.dialect_escapechar !== undefined) {
    if (p.dialect_escapechar.length !== 1) throw badRequest('The dialect escapechar must be a 1-character string');
    d.escapechar = p.dialect_escapechar;
  }
  try {
    new CsvParser(d); // the combination must be usable (e.g. a new line can't contain the delimiter)
  } catch (err) {
    throw badRequest((err as Error).message);
  }
  return d;
}

function importSummary(counts: IngestCounts): string | false {
  if (!counts.quarantined && !counts.invalidLines) return false;
  const parts: string[] = [];
  if (counts.quarantined) parts.push(`${counts.quarantined} row${counts.quarantined === 1 ? '' : 's'} in quarantine`);
  if (counts.invalidLines) parts.push(`${counts.invalidLines} invalid line${counts.invalidLines === 1 ? '' : 's'}`);
  return `There was an error with file contents: ${parts.join(' and ')}.`;
}

export function importResponse(_ds: DatasourceRecord, importId: string, counts: IngestCounts, dsJson: Record<string, unknown>): Record<string, unknown> {
  return {
    import_id: importId,
    datasource: dsJson,
    quarantine_rows: counts.quarantined,
    invalid_lines: counts.invalidLines,
    error: importSummary(counts),
    successful_rows: counts.rows,
    quarantined_rows: counts.quarantined,
    statistics: { bytes: counts.bytes, row_count: counts.rows },
  };
}

/** A data source's JSON with its statistics and the pipes that use it. */
async function describedDatasource(s: Pick<Services, 'datasources' | 'pipes'>, auth: Auth, ds: DatasourceRecord): Promise<Record<string, unknown>> {
  return datasourceJson(ds, await s.datasources.stats(auth.workspace, ds), await s.pipes.usedBy(auth.workspace, ds.name));
}

/** A write's answer (and an import job's result): Tinybird's import JSON, or the new data source alone when no data was sent. */
export async function writeJson(
  s: Pick<Services, 'datasources' | 'pipes'>,
  auth: Auth,
  spec: WriteSpec,
  r: WriteResult,
  importId: string,
): Promise<Record<string, unknown>> {
  const described = await describedDatasource(s, auth, r.ds);
  if (r.counts) return importResponse(r.ds, importId, r.counts, described);
  if (spec.format === 'csv') return { datasource: described };
  return { datasource: described, import_id: importId, quarantine_rows: 0, invalid_lines: 0, error: false };
}

/** The data at a URL (an import job's source): fetched under the address policy, decoded. */
export async function fetchUrlData(url: string, allowPrivateUrls: boolean): Promise<DataSource> {
  const res = await fetchUrl(url, allowPrivateUrls);
  return { stream: decoded(res.stream, res.contentEncoding), filename: res.filename };
}

/** Routes on one Data Source (`:name`, its name or id). */
type DsRoute = { Params: { name: string } };

export const datasourceRoutes =
  (s: Services): FastifyPluginAsync =>
  async (app) => {
    const onDs = (handler: string, summary: string) => named(handler, { summary, params: pathParams('name') });
    // Form and JSON bodies of the routes that take parameters (readParams); data is streamed.
    bodyLimit(app, 16 * 1024 * 1024);
    const dsJson = (auth: Auth, ds: DatasourceRecord) => describedDatasource(s, auth, ds);

    /** Resolves `name` or `name_quarantine` for operations that accept both. */
    async function resolveWithQuarantine(auth: Auth, name: string): Promise<{ ds: DatasourceRecord; quarantine: boolean }> {
      const ds = await s.datasources.find(auth.workspace, name);
      if (ds) return { ds, quarantine: false };
      if (name.endsWith('_quarantine')) {
        const base = await s.datasources.find(auth.workspace, name.slice(0, -'_quarantine'.length));
        if (base) return { ds: base, quarantine: true };
      }
      throw notFound(`Data Source "${name}" does not exist`);
    }

    app.post(
      '/v0/datasources',
      named('APIDataSourcesHandler', { summary: 'Create a Data Source from a schema or data, append or replace (a body, a multipart file or url=)' }),
      async (req, reply) => {
        const auth = await authenticate(s, req);
        const params = queryParams(req);
        let source: DataSource | null = null;
        const consumed: Promise<unknown> | null = null;

        const run = async (src: DataSource | null) => handleImport(auth, params, src, req);

        if (isMultipart(req)) {
          let result: unknown;
          const hadFile = await readMultipart(req, params, async (part) => {
            if (!['csv', 'ndjson', 'parquet', 'file'].includes(part.field)) {
              throw badRequest("Multipart requests require name field to be set to 'file', 'csv' or 'ndjson' and a non-empty file.");
            }
            result = await run({ stream: decoded(part.stream), filename: part.filename, field: part.field });
          });
          if (!hadFile) result = await run(null);
          return reply.send(result);
        }
        if (isForm(req) && hasBody(req)) {
          // A form carries parameters; a CSV sent with curl -d also arrives as a "form".
          const buf = await readAll(decoded(rawStream(req)), 64 * 1024 * 1024);
          const form = parseForm(buf);
          const keys = Object.keys(form);
          if (keys.length && keys.every((k) => FORM_KEYS.has(k) || k.startsWith('engine_'))) {
            Object.assign(params, form);
          } else if (buf.length) {
            source = {
              stream: (async function* () {
                yield buf;
              })(),
            };
          }
        } else if (hasBody(req)) {
          source = { stream: decoded(rawStream(req), req.headers['content-encoding']) };
        }
        void consumed;
        return reply.send(await run(source));
      },
    );

    /** The request as a write: mode, format, dialect and the data source's definition, checked. */
    function writeSpec(p: Record<string, string>, src: DataSource | null): WriteSpec {
      const mode = p.mode ?? 'create';
      if (!MODES.includes(mode) || mode === 'migrate') throw badRequest(`Invalid mode "${mode}", valid modes are ${MODES.join(',')}`);
      if (p.schema !== undefined && mode !== 'create') throw badRequest('Schema creation is only compatible with mode=create');
      if (p.engine !== undefined && p.schema === undefined) throw badRequest('The engine parameter requires the schema parameter');
      const format = (p.format ??
        (src?.field && src.field !== 'csv' && src.field !== 'file' ? src.field : undefined) ??
        formatFromName(src?.filename) ??
        formatFromName(p.url) ??
        'csv') as DataFormat;
      if (!['csv', 'ndjson', 'parquet'].includes(format)) throw badRequest(`Invalid format "${format}", valid formats are csv, ndjson, parquet`);
      return {
        mode: mode as WriteSpec['mode'],
        format,
        dialect: dialectOf(p),
        name: p.name,
        schema: p.schema,
        engine: p.engine,
        engineArgs: Object.fromEntries(Object.entries(p).filter(([k]) => k.startsWith('engine_'))),
        indexes: p.indexes,
        description: p.description,
        replaceCondition: p.replace_condition,
        replaceTruncateWhenEmpty: p.replace_truncate_when_empty === 'true',
        typeGuessing: p.type_guessing !== 'false',
      };
    }

    async function handleImport(auth: Auth, p: Record<string, string>, src: DataSource | null, req: FastifyRequest): Promise<unknown> {
      const spec = writeSpec(p, src);
      if (p.url === undefined) return writeJson(s, auth, spec, await s.writes.write(auth, spec, src, req.id), req.id);
      if (src) throw badRequest('Send either a url or a body, not both');
      if (!/^https?:\/\//i.test(p.url)) throw badRequest('Url is not supported, only http, and https schemes are');
      await checkUrl(p.url, s.config.allowPrivateUrls); // refused before a job exists; checked again when fetched
      const job = await s.writes.writeFromUrl(auth, spec, p.url);
      return { id: job.id, job_id: job.id, job_url: `${s.config.apiHost}/v0/jobs/${job.id}`, job: jobJson(s, job), status: 'waiting', import_id: job.id };
    }

    app.get('/v0/datasources', named('APIDataSourcesHandler', { summary: 'The Data Sources the token may read' }), async (req) => {
      const auth = await authenticate(s, req);
      const p = queryParams(req);
      const attrs = p.attrs
        ? p.attrs
            .split(',')
            .map((a) => a.trim())
            .filter(Boolean)
        : null;
      const pipes = await s.pipes.list(auth.workspace);
      const list = (await s.datasources.list(auth.workspace)).filter((d) => auth.seesDatasource(d, pipes));
      const out = [];
      for (const ds of list) {
        const stats = await s.datasources.stats(auth.workspace, ds);
        const q = attrs?.includes('quarantine_rows') ? ((await s.datasources.stats(auth.workspace, ds, true)).rowCount ?? 0) : 0;
        out.push(
          pickAttrs(
            datasourceListJson(
              ds,
              stats,
              q,
              pipes.filter((p) => readsDatasource(p, ds.name)),
            ),
            attrs,
          ),
        );
      }
      return { datasources: out };
    });

    app.get<DsRoute>(
      '/v0/datasources/:name',
      onDs('APIDataSourceHandler', 'A Data Source, or its `.datasource` datafile (`name.datasource`)'),
      async (req, reply) => {
        const auth = await authenticate(s, req);
        let { name } = req.params;
        const asFile = name.endsWith('.datasource');
        if (asFile) name = name.slice(0, -'.datasource'.length);
        const ds = await s.datasources.get(auth.workspace, name);
        if (!auth.seesDatasource(ds, await s.pipes.list(auth.workspace))) throw forbidden("The token you have provided doesn't have access to this resource");
        if (asFile || queryParams(req).format === 'datasource') {
          return reply
            .type('text/plain; charset=utf-8')
            .send(printDatasourceFile({ description: ds.description, columns: ds.columns, engine: ds.engine, indexes: ds.indexes }));
        }
        const attrs =
          queryParams(req)
            .attrs?.split(',')
            .map((a) => a.trim())
            .filter(Boolean) ?? [];
        return pickAttrs(await dsJson(auth, ds), attrs.length ? attrs : null);
      },
    );

    app.put<DsRoute>('/v0/datasources/:name', onDs('APIDataSourceHandler', 'Rename a Data Source or change its description'), async (req) => {
      const auth = await authenticate(s, req);
      auth.requireWrite(null, 'change');
      const p = { ...queryParams(req), ...(await readParams(req)) };
      const ds = await s.datasources.get(auth.workspace, req.params.name);
      let updated = ds;
      if (p.name !== undefined && p.name !== ds.name) {
        // Renaming rewrites the SQL of the nodes that read the data source (reference 2.8);
        // templates can not be rewritten safely, so they block the rename unless force=true.
        const pipes = await s.pipes.list(auth.workspace);
        const rewrites: Array<{ pipe: PipeRecord; sql: Map<string, string> }> = [];
        const blocked: Array<{ pipe: string; node: string }> = [];
        for (const pipe of pipes) {
          const sql = new Map<string, string>();
          for (const n of pipe.nodes) {
            if (!n.dependencies.includes(ds.name) && !n.dependencies.includes(`${ds.name}_quarantine`)) continue;
            const renamed = renameTableInSql(n.sql, ds.name, p.name);
            if (renamed === null) blocked.push({ pipe: pipe.name, node: n.name });
            else sql.set(n.id, renamed);
          }
          if (sql.size) rewrites.push({ pipe, sql });
        }
        if (blocked.length && p.force !== 'true') {
          throw conflict(
            `The Data Source "${ds.name}" is used in templates that can not be rewritten => Pipes="${[...new Set(blocked.map((u) => u.pipe))].join(',')}", nodes="${blocked.map((u) => u.node).join(',')}". Change their SQL first or set the \`force\` parameter to \`true\` to rename it anyway`,
          );
        }
        updated = await s.datasources.rename(auth.workspace, ds, p.name);
        const rename = (d: string) => (d === ds.name ? p.name! : d === `${ds.name}_quarantine` ? `${p.name}_quarantine` : d);
        for (const { pipe, sql } of rewrites) {
          await s.pipes.save(auth.workspace, {
            ...pipe,
            nodes: pipe.nodes.map((n) => (sql.has(n.id) ? { ...n, sql: sql.get(n.id)!, dependencies: n.dependencies.map(rename) } : n)),
          });
        }
      }
      if (p.description !== undefined) {
        updated = { ...updated, description: p.description };
        await s.datasources.update(auth.workspace, updated);
      }
      return dsJson(auth, updated);
    });

    app.delete<DsRoute>(
      '/v0/datasources/:name',
      onDs('APIDataSourceHandler', 'Delete a Data Source (dry_run=true lists what depends on it)'),
      async (req, reply) => {
        const auth = await authenticate(s, req);
        const name = req.params.name;
        const ds = await s.datasources.get(auth.workspace, name);
        if (!auth.canDrop(ds.id)) throw forbidden(`User does not have permissions to drop Data Source "${name}", set DROP scope`);
        const q = queryParams(req);
        // What keeps writing into it or is triggered by it: views reading or filling it, copies into it.
        const views = await s.materializations.dependents(auth.workspace, ds.id, ds.name);
        const copies = (await s.pipes.list(auth.workspace)).flatMap((pipe) =>
          pipe.nodes.filter((n) => n.nodeType === 'copy' && n.data.copy_target === ds.id).map((node) => ({ pipe, node })),
        );
        const users = [...views, ...copies];
        const pipesList = [...new Set(users.map((d) => d.pipe.name))];
        const nodesList = users.map((d) => d.node.name);
        if (q.dry_run === 'true') {
          const dependencies: Record<string, string[]> = {};
          for (const d of users) (dependencies[d.pipe.name] ??= []).push(d.node.name);
          return { dependencies, dependent_pipes: pipesList, dependent_nodes: nodesList };
        }
        if (users.length && q.force !== 'true') {
          const why = views.some((d) => d.node.data.materialized === ds.id)
            ? 'The Data Source is the target of a Materialized View'
            : views.length
              ? 'The Data Source is used by a Materialized View'
              : 'The Data Source is the target of a Copy Pipe';
          throw conflict(
            `${why}. Deleting it may break your data ingestion. Set the \`force\` parameter to \`true\` to unlink the dependent Materialized Views and delete the Data Source. The Data Source is used in => Pipes="${pipesList.join(',')}", nodes="${nodesList.join(',')}"`,
          );
        }
        const deps = views;
        for (const d of deps) await s.materializations.unlink(auth, d.pipe.id, d.node.id);
        await s.datasources.drop(auth.workspace, ds);
        return reply.code(204).send();
      },
    );

    app.post<DsRoute>(
      '/v0/datasources/:name/truncate',
      onDs('APIDataSourceTruncateHandler', 'Delete every row (also `name_quarantine`)'),
      async (req, reply) => {
        const auth = await authenticate(s, req);
        auth.requireWrite(null, 'change');
        const { ds, quarantine } = await resolveWithQuarantine(auth, req.params.name);
        await s.datasources.truncate(auth.workspace, ds, quarantine);
        return reply.code(205).send();
      },
    );

    app.post<DsRoute>(
      '/v0/datasources/:name/delete',
      onDs('APIDataSourceDeleteHandler', 'Delete the rows matching delete_condition, as a job'),
      async (req, reply) => {
        const auth = await authenticate(s, req);
        auth.requireWrite(null, 'change');
        const p = { ...queryParams(req), ...(await readParams(req)) };
        const name = req.params.name;
        const found = await s.datasources
          .find(auth.workspace, name)
          .then((d) => (d ? { ds: d, quarantine: false } : resolveWithQuarantine(auth, name)))
          .catch(() => {
            throw badRequest(`Data Source "${name}" does not exist, can not delete a non existing Data Source`);
          });
        if (!p.delete_condition) throw badRequest("The delete_condition='delete_statement' is mandatory");
        const r = await s.deletes.start(auth.workspace, found.ds, found.quarantine, p.delete_condition, p.dry_run === 'true');
        if ('rows_to_be_deleted' in r) return r;
        const job = r as JobRecord;
        return reply
          .code(201)
          .send({ id: job.id, job_id: job.id, job_url: `${s.config.apiHost}/v0/jobs/${job.id}`, job: jobJson(s, job), status: 'waiting', delete_id: job.id });
      },
    );

    app.post<DsRoute>('/v0/datasources/:name/alter', onDs('APIDataSourceAlterHandler', 'Change columns, TTL, indexes or description'), async (req) => {
      const auth = await authenticate(s, req);
      auth.requireWrite(null, 'change');
      const p = { ...queryParams(req), ...(await readParams(req)) };
      const ds = await s.datasources.get(auth.workspace, req.params.name);
      return s.alters.alter(auth.workspace, ds, p);
    });
  };

/** Parameters from a form or JSON body (small bodies only). */
export async function readParams(req: FastifyRequest): Promise<Record<string, string>> {
  if (!hasBody(req)) return {};
  const buf = await readBody(req);
  if (/json/i.test(req.headers['content-type'] ?? '')) {
    checkJsonDepth(buf.toString('utf8'));
    try {
      const obj = JSON.parse(buf.toString('utf8') || '{}') as Record<string, unknown>;
      return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
    } catch {
      throw badRequest('The JSON body could not be parsed');
    }
  }
  return parseForm(buf);
}
