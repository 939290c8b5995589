/**
 * Data Sources API (`/v0/datasources`): create from a schema or from data, append, replace,
 * url imports as jobs, list/get/rename/drop, alter, truncate and delete-by-condition. Handlers
 * check scopes and shape responses; the work happens in the domain services.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Services } from '../services.js';
import { named } from '../route-docs.js';
import type { Auth } from '../../domain/access.js';
import type { DatasourceRecord, JobRecord } from '../../catalog/catalog.js';
import { badRequest, conflict, forbidden, notFound, PipitError } from '../../basics/errors.js';
import type { PipeRecord } from '../../catalog/catalog.js';
import { renameTableInSql } from '../../sql/rename.js';
import { formatFromName, peek, type DataFormat } from '../../domain/import-service.js';
import { parseEngineParams, parseIndexes, parseSchema } from '../../schema/index.js';
import { printDatasourceFile } from '../../datafile/index.js';
import { CsvParser } from '../../ingest/formats/csv.js';
import type { CsvDialect, IngestCounts } from '../../ingest/ingest-service.js';
import { authenticate } from '../auth.js';
import { decoded, hasBody, isForm, isMultipart, parseForm, queryParams, rawStream, readAll, readMultipart } from '../body.js';
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

interface DataSource {
  stream: AsyncIterable<Buffer>;
  filename?: string;
  field?: string;
}

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

export const datasourceRoutes =
  (s: Services): FastifyPluginAsync =>
  async (app) => {
    const dsJson = async (auth: Auth, ds: DatasourceRecord) =>
      datasourceJson(ds, await s.datasources.stats(auth.workspace, ds), await s.pipes.usedBy(auth.workspace, ds.name));

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

    app.post('/v0/datasources', named('APIDataSourcesHandler'), async (req, reply) => {
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
    });

    async function handleImport(auth: Auth, p: Record<string, string>, src: DataSource | null, req: FastifyRequest): Promise<unknown> {
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
      const dialect = dialectOf(p);
      const importId = req.id;
      const ws = auth.workspace;

      if (p.url !== undefined) {
        if (src) throw badRequest('Send either a url or a body, not both');
        return startUrlImport(auth, p, mode, format, dialect);
      }

      if (mode === 'create') {
        auth.requireWrite(null, 'create');
        if (p.schema !== undefined) {
          if (!p.name) throw badRequest('Data Source name must be set when creating with schema');
          const columns = parseSchema(p.schema);
          if ((format === 'ndjson' || format === 'parquet') && columns.some((c) => !c.jsonpath && !/^(MATERIALIZED|ALIAS)/i.test(c.defaultValue ?? ''))) {
            throw badRequest('mode=create with format=ndjson or format=parquet requires to set jsonpaths on the schema');
          }
          const engineArgs = Object.fromEntries(Object.entries(p).filter(([k]) => k.startsWith('engine_')));
          const ds = await s.datasources.create(ws, {
            name: p.name,
            columns,
            engine: parseEngineParams(p.engine, engineArgs),
            indexes: parseIndexes(p.indexes ?? ''),
            description: p.description ?? '',
          });
          if (!src) {
            if (format === 'csv') return { datasource: await dsJson(auth, ds) };
            return { datasource: await dsJson(auth, ds), import_id: importId, quarantine_rows: 0, invalid_lines: 0, error: false };
          }
          const counts = await loadNew(auth, ds, () => s.imports.load(ws, ds, format, src.stream, importId, dialect));
          return importResponse(ds, importId, counts, await dsJson(auth, ds));
        }
        if (!src) throw badRequest('Url or body payload should be sent. Are you doing a POST without data?');
        const name = p.name ?? (src.filename ? nameFromFile(src.filename) : undefined);
        if (!name) throw badRequest('Data Source name must be set when creating from data');
        if (await s.datasources.find(ws, name)) throw badRequest(`Data Source "${name}" already exists, use mode=append`);
        return createFromData(auth, name, format, src, importId, dialect, p, p.type_guessing !== 'false');
      }

      if (mode === 'append') {
        if (!p.name) throw badRequest('Data Source name must be set with mode=append');
        const ds = await s.datasources.find(ws, p.name);
        if (!ds) {
          if (!auth.canWrite(null, 'create')) throw forbidden(`Token does not have DATASOURCES:APPEND scope for Data Source "${p.name}"`);
          if (!src) throw badRequest('Url or body payload should be sent. Are you doing a POST without data?');
          return createFromData(auth, p.name, format, src, importId, dialect, p, true);
        }
        if (!auth.canWrite(ds.id, 'append')) throw forbidden(`Token does not have DATASOURCES:APPEND scope for Data Source "${p.name}"`);
        if (!src) throw badRequest('Url or body payload should be sent. Are you doing a POST without data?');
        const counts = await s.imports.load(ws, ds, format, src.stream, importId, dialect);
        await s.datasources.touch(ws, ds);
        return importResponse(ds, importId, counts, await dsJson(auth, ds));
      }

      // replace
      if (!p.name) throw badRequest('Data source name must be set with mode=replace (name=my_datasource)');
      if (!auth.canWrite(null, 'change'))
        throw forbidden('Token does not have DATASOURCES:CREATE scope, replace mode requires the DATASOURCES:CREATE scope because is a destructive action');
      const ds = await s.datasources.find(ws, p.name);
      if (!ds) throw badRequest(`Data Source "${p.name}" does not exist, can not replace a non existing Data Source`);
      const counts = await s.imports.replace(ws, ds, format, src?.stream ?? (async function* () {})(), importId, dialect, p.replace_condition);
      return importResponse(ds, importId, counts, await dsJson(auth, ds));
    }

    /**
     * Loads the first data of a data source this request created: if the load fails (a full disk,
     * a broken body), the data source is dropped again, so a retry of the same request can succeed
     * (no half-made data source holding part of the rows).
     */
    async function loadNew(auth: Auth, ds: DatasourceRecord, load: () => Promise<IngestCounts>): Promise<IngestCounts> {
      try {
        return await load();
      } catch (err) {
        await s.datasources.drop(auth.workspace, ds).catch(() => undefined);
        throw err;
      }
    }

    async function createFromData(
      auth: Auth,
      name: string,
      format: DataFormat,
      src: DataSource,
      importId: string,
      dialect: CsvDialect,
      p: Record<string, string>,
      typeGuessing: boolean,
    ) {
      const ws = auth.workspace;
      let stream = src.stream;
      let parquetFile: string | undefined;
      let inferred;
      try {
        if (format === 'parquet') {
          parquetFile = await s.imports.spool(stream);
          inferred = await s.imports.inferFromParquet(parquetFile);
        } else {
          const peeked = await peek(stream, 1024 * 1024);
          if (!peeked.head.length) throw badRequest('No data was provided. Make sure the file is not empty');
          stream = peeked.stream;
          inferred = s.imports.inferFromSample(format, peeked.head, dialect, typeGuessing);
        }
        const ds = await s.datasources.create(ws, { name, columns: inferred.columns, engine: inferred.engine, indexes: [], description: p.description ?? '' });
        const counts = await loadNew(auth, ds, () => s.imports.load(ws, ds, format, stream, importId, dialect, parquetFile));
        return importResponse(ds, importId, counts, await dsJson(auth, ds));
      } finally {
        if (parquetFile) await import('node:fs').then((fs) => fs.rmSync(parquetFile!, { force: true }));
      }
    }

    async function startUrlImport(auth: Auth, p: Record<string, string>, mode: string, format: DataFormat, dialect: CsvDialect) {
      const ws = auth.workspace;
      if (!/^https?:\/\//i.test(p.url)) throw badRequest('Url is not supported, only http, and https schemes are');
      await checkUrl(p.url, s.config.allowPrivateUrls); // refused before a job exists; checked again when fetched
      let ds = p.name ? await s.datasources.find(ws, p.name) : null;
      if (mode === 'append' && ds && !auth.canWrite(ds.id, 'append'))
        throw forbidden(`Token does not have DATASOURCES:APPEND scope for Data Source "${p.name}"`);
      if (!ds || mode !== 'append') auth.requireWrite(null, ds ? 'change' : 'create');
      if (mode === 'replace' && !ds) throw badRequest(`Data Source "${p.name}" does not exist, can not replace a non existing Data Source`);
      const name = p.name ?? nameFromFile(new URL(p.url).pathname.split('/').pop() ?? 'imported');
      if (mode === 'create' && ds) throw badRequest(`Data Source "${name}" already exists, use mode=append`);
      const job = await s.jobs.create(ws, 'import', { mode, url: p.url, datasource: ds ? { id: ds.id, name: ds.name } : { name } }, async (j) => {
        const res = await fetchUrl(p.url, s.config.allowPrivateUrls);
        const peeked = await peek(decoded(res.stream, res.contentEncoding), 1);
        if (!peeked.head.length && !(mode === 'replace' && p.replace_truncate_when_empty === 'true')) {
          throw badRequest(`No data was provided. Make sure the file (${p.url}) is not empty`);
        }
        const src: DataSource = { stream: peeked.stream, filename: res.filename };
        let result: Record<string, unknown>;
        // By id when it existed at submit time, so a rename while the job waited is followed.
        ds = (ds && (await s.datasources.find(ws, ds.id))) ?? (await s.datasources.find(ws, name));
        if (mode === 'replace' && ds) {
          result = importResponse(ds, j.id, await s.imports.replace(ws, ds, format, src.stream, j.id, dialect, p.replace_condition), await dsJson(auth, ds));
        } else if (ds) {
          result = importResponse(ds, j.id, await s.imports.load(ws, ds, format, src.stream, j.id, dialect), await dsJson(auth, ds));
        } else {
          result = (await createFromData(auth, name, format, src, j.id, dialect, p, p.type_guessing !== 'false')) as Record<string, unknown>;
        }
        const { datasource, quarantine_rows, invalid_lines, statistics, error } = result as Record<string, unknown>;
        if (error) throw new PipitError('bad_request', String(error), { datasource, quarantine_rows, invalid_lines, statistics, import_id: j.id });
        return { datasource, quarantine_rows, invalid_lines, statistics, import_id: j.id };
      });
      return { id: job.id, job_id: job.id, job_url: `${s.config.apiHost}/v0/jobs/${job.id}`, job: jobJson(s, job), status: 'waiting', import_id: job.id };
    }

    app.get('/v0/datasources', named('APIDataSourcesHandler'), async (req) => {
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

    app.get('/v0/datasources/:name', named('APIDataSourceHandler'), async (req, reply) => {
      const auth = await authenticate(s, req);
      let { name } = req.params as { name: string };
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
    });

    app.put('/v0/datasources/:name', named('APIDataSourceHandler'), async (req) => {
      const auth = await authenticate(s, req);
      auth.requireWrite(null, 'change');
      const p = { ...queryParams(req), ...(await readParams(req)) };
      const ds = await s.datasources.get(auth.workspace, (req.params as { name: string }).name);
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

    app.delete('/v0/datasources/:name', named('APIDataSourceHandler'), async (req, reply) => {
      const auth = await authenticate(s, req);
      const name = (req.params as { name: string }).name;
      const ds = await s.datasources.get(auth.workspace, name);
      if (!auth.canDrop(ds.id)) throw forbidden(`User does not have permissions to drop Data Source "${name}", set DROP scope`);
      const q = queryParams(req);
      // What keeps writing into it or is triggered by it: views reading or filling it, copies into it.
      const views = await s.materializations.dependents(auth.workspace, ds.id, ds.name);
      const copies = (await s.pipes.list(auth.workspace)).flatMap((pipe) =>
        pipe.nodes.filter((n) => n.data.copy_target === ds.id).map((node) => ({ pipe, node })),
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
    });

    app.post('/v0/datasources/:name/truncate', named('APIDataSourceTruncateHandler'), async (req, reply) => {
      const auth = await authenticate(s, req);
      auth.requireWrite(null, 'change');
      const { ds, quarantine } = await resolveWithQuarantine(auth, (req.params as { name: string }).name);
      await s.datasources.truncate(auth.workspace, ds, quarantine);
      return reply.code(205).send();
    });

    app.post('/v0/datasources/:name/delete', named('APIDataSourceDeleteHandler'), async (req, reply) => {
      const auth = await authenticate(s, req);
      auth.requireWrite(null, 'change');
      const p = { ...queryParams(req), ...(await readParams(req)) };
      const name = (req.params as { name: string }).name;
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
    });

    app.post('/v0/datasources/:name/alter', named('APIDataSourceAlterHandler'), async (req) => {
      const auth = await authenticate(s, req);
      auth.requireWrite(null, 'change');
      const p = { ...queryParams(req), ...(await readParams(req)) };
      const ds = await s.datasources.get(auth.workspace, (req.params as { name: string }).name);
      return s.alters.alter(auth.workspace, ds, p);
    });
  };

/** Parameters from a form or JSON body (small bodies only). */
export async function readParams(req: FastifyRequest): Promise<Record<string, string>> {
  if (!hasBody(req)) return {};
  const buf = await readAll(decoded(rawStream(req), req.headers['content-encoding']), 16 * 1024 * 1024);
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

function nameFromFile(filename: string): string {
  const base = filename
    .split('/')
    .pop()!
    .replace(/\.(gz|gzip)$/i, '')
    .replace(/\.[^.]*$/, '');
  return base.replace(/[^A-Za-z0-9_]/g, '_').replace(/^([0-9])/, 't_$1') || 'imported';
}
