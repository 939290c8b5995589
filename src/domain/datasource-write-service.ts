/**
 * Writes through the Data Sources API (`POST /v0/datasources`): create from a schema or from data
 * (its schema inferred), append, replace, and the same from a URL as an `import` job. The route
 * parses the request into a WriteSpec; this service checks the token's right to write, plans
 * (which data source, created or not) and applies. A data source created by a write whose data
 * then fails to load is dropped again, so a retry can succeed. Rejects with Tinybird's 4xx texts.
 */
import fs from 'node:fs';
import type { DatasourceRecord, JobRecord } from '../catalog/catalog.js';
import { badRequest, forbidden, PipitError } from '../basics/errors.js';
import type { CsvDialect, IngestCounts } from '../ingest/ingest-service.js';
import type { Enqueue, JobService } from '../jobs/job-service.js';
import { parseEngineParams, parseIndexes, parseSchema } from '../schema/index.js';
import { Auth, type AuthorityRecord } from './access.js';
import type { DatasourceService } from './datasource-service.js';
import { type DataFormat, type ImportService, nameFromFile, peek } from './import-service.js';

/** The data a request carries: a body, a multipart file, or what a URL answered. */
export interface DataSource {
  stream: AsyncIterable<Buffer>;
  filename?: string;
  /** The multipart field it came in (`csv`, `ndjson`, `parquet`, `file`). */
  field?: string;
}

export interface WriteSpec {
  mode: 'create' | 'append' | 'replace';
  format: DataFormat;
  dialect: CsvDialect;
  name?: string;
  /** A Tinybird schema: create the data source from it (mode=create). */
  schema?: string;
  engine?: string;
  engineArgs: Record<string, string>;
  indexes?: string;
  description?: string;
  replaceCondition?: string;
  /** A URL replace whose file is empty empties the data source (else it is an error). */
  replaceTruncateWhenEmpty: boolean;
  typeGuessing: boolean;
}

/** What a write did: the data source and the rows it loaded (null when no data was sent). */
export interface WriteResult {
  ds: DatasourceRecord;
  counts: IngestCounts | null;
}

const NO_DATA = 'Url or body payload should be sent. Are you doing a POST without data?';
const noAppend = (name: string) => forbidden(`Token does not have DATASOURCES:APPEND scope for Data Source "${name}"`);
const noReplaceTarget = (name: string) => badRequest(`Data Source "${name}" does not exist, can not replace a non existing Data Source`);

/**
 * What an `import` job needs, stored with it so any copy of the server runs it: who asked (their
 * rights were checked when the job was created), the URL and the write, and the data source by id
 * when it existed then (a rename while the job waits is followed).
 */
interface ImportPayload {
  authority: AuthorityRecord;
  url: string;
  spec: WriteSpec;
  name: string;
  datasourceId: string | null;
}

export class DatasourceWriteService {
  private readonly enqueueImport: Enqueue<ImportPayload>;

  constructor(
    private readonly deps: {
      datasources: DatasourceService;
      imports: ImportService;
      jobs: JobService;
      /** Fetches a URL's data (the address policy checked again when the job runs). */
      fetch: (url: string) => Promise<DataSource>;
      /** Tinybird's import JSON of a write (the job's result). */
      present: (auth: Auth, spec: WriteSpec, r: WriteResult, importId: string) => Promise<Record<string, unknown>>;
    },
  ) {
    this.enqueueImport = deps.jobs.register('import', (job, payload: ImportPayload) => this.runImport(job, payload));
  }

  /** Writes the data of a request (or, with a schema, creates an empty data source). */
  async write(auth: Auth, spec: WriteSpec, src: DataSource | null, importId: string): Promise<WriteResult> {
    const { datasources, imports } = this.deps;
    const ws = auth.workspace;
    const { format, dialect } = spec;

    if (spec.mode === 'create') {
      auth.requireWrite(null, 'create');
      if (spec.schema !== undefined) {
        if (!spec.name) throw badRequest('Data Source name must be set when creating with schema');
        const columns = parseSchema(spec.schema);
        if ((format === 'ndjson' || format === 'parquet') && columns.some((c) => !c.jsonpath && !/^(MATERIALIZED|ALIAS)/i.test(c.defaultValue ?? ''))) {
          throw badRequest('mode=create with format=ndjson or format=parquet requires to set jsonpaths on the schema');
        }
        const ds = await datasources.create(ws, {
          name: spec.name,
          columns,
          engine: parseEngineParams(spec.engine, spec.engineArgs),
          indexes: parseIndexes(spec.indexes ?? ''),
          description: spec.description ?? '',
        });
        if (!src) return { ds, counts: null };
        return { ds, counts: await this.loadNew(auth, ds, () => imports.load(ws, ds, { format, stream: src.stream, importId, dialect })) };
      }
      if (!src) throw badRequest(NO_DATA);
      const name = spec.name ?? (src.filename ? nameFromFile(src.filename) : undefined);
      if (!name) throw badRequest('Data Source name must be set when creating from data');
      if (await datasources.find(ws, name)) throw badRequest(`Data Source "${name}" already exists, use mode=append`);
      return this.createFromData(auth, name, spec, src, importId, spec.typeGuessing);
    }

    if (spec.mode === 'append') {
      if (!spec.name) throw badRequest('Data Source name must be set with mode=append');
      const ds = await datasources.find(ws, spec.name);
      if (!ds) {
        if (!auth.canWrite(null, 'create')) throw noAppend(spec.name);
        if (!src) throw badRequest(NO_DATA);
        return this.createFromData(auth, spec.name, spec, src, importId, true);
      }
      if (!auth.canWrite(ds.id, 'append')) throw noAppend(spec.name);
      if (!src) throw badRequest(NO_DATA);
      const counts = await imports.load(ws, ds, { format, stream: src.stream, importId, dialect });
      await datasources.touch(ws, ds);
      return { ds, counts };
    }

    if (!spec.name) throw badRequest('Data source name must be set with mode=replace (name=my_datasource)');
    if (!auth.canWrite(null, 'change'))
      throw forbidden('Token does not have DATASOURCES:CREATE scope, replace mode requires the DATASOURCES:CREATE scope because is a destructive action');
    const ds = await datasources.find(ws, spec.name);
    if (!ds) throw noReplaceTarget(spec.name);
    const counts = await imports.replace(ws, ds, { format, stream: src?.stream ?? (async function* () {})(), importId, dialect }, spec.replaceCondition);
    return { ds, counts };
  }

  /**
   * The same write from a URL, as an `import` job: the token's rights are checked now, the data is
   * fetched when the job runs, on whichever copy claims it. Its result is Tinybird's import JSON;
   * a result with an `error` (rows in quarantine) fails the job with that result.
   */
  async writeFromUrl(auth: Auth, spec: WriteSpec, url: string): Promise<JobRecord> {
    const { datasources } = this.deps;
    const ws = auth.workspace;
    const { mode } = spec;
    const ds = spec.name ? await datasources.find(ws, spec.name) : null;
    if (mode === 'append' && ds && !auth.canWrite(ds.id, 'append')) throw noAppend(spec.name!);
    if (!ds || mode !== 'append') auth.requireWrite(null, ds ? 'change' : 'create');
    if (mode === 'replace' && !ds) throw noReplaceTarget(spec.name!);
    const name = spec.name ?? nameFromFile(new URL(url).pathname.split('/').pop() ?? 'imported');
    if (mode === 'create' && ds) throw badRequest(`Data Source "${name}" already exists, use mode=append`);
    const payload: ImportPayload = { authority: auth.toRecord(), url, spec, name, datasourceId: ds?.id ?? null };
    return this.enqueueImport(ws, { mode, url, datasource: ds ? { id: ds.id, name: ds.name } : { name } }, payload);
  }

  /** The import job, on whichever copy claims it. */
  private async runImport(j: JobRecord, p: ImportPayload): Promise<Record<string, unknown>> {
    const { datasources, imports } = this.deps;
    const auth = Auth.fromRecord(p.authority);
    const ws = auth.workspace;
    const { spec, url, name } = p;
    const { mode, format, dialect } = spec;
    const opened = await this.deps.fetch(url);
    const peeked = await peek(opened.stream, 1);
    if (!peeked.head.length && !(mode === 'replace' && spec.replaceTruncateWhenEmpty)) {
      throw badRequest(`No data was provided. Make sure the file (${url}) is not empty`);
    }
    const src: DataSource = { stream: peeked.stream, filename: opened.filename };
    const input = { format, stream: src.stream, importId: j.id, dialect, job: j.id };
    let written: WriteResult;
    // By id when it existed at submit time, so a rename while the job waited is followed.
    const ds = (p.datasourceId && (await datasources.find(ws, p.datasourceId))) || (await datasources.find(ws, name));
    if (mode === 'replace' && ds) written = { ds, counts: await imports.replace(ws, ds, input, spec.replaceCondition) };
    else if (ds) written = { ds, counts: await imports.load(ws, ds, input) };
    else written = await this.createFromData(auth, name, spec, src, j.id, spec.typeGuessing);
    const { datasource, quarantine_rows, invalid_lines, statistics, error } = await this.deps.present(auth, spec, written, j.id);
    if (error) throw new PipitError('bad_request', String(error), { datasource, quarantine_rows, invalid_lines, statistics, import_id: j.id });
    return { datasource, quarantine_rows, invalid_lines, statistics, import_id: j.id };
  }

  /**
   * Loads the first data of a data source this request created: if the load fails (a full disk,
   * a broken body), the data source is dropped again, so a retry of the same request can succeed
   * (no half-made data source holding part of the rows).
   */
  private async loadNew(auth: Auth, ds: DatasourceRecord, load: () => Promise<IngestCounts>): Promise<IngestCounts> {
    try {
      return await load();
    } catch (err) {
      await this.deps.datasources.drop(auth.workspace, ds).catch(() => undefined);
      throw err;
    }
  }

  /** Creates a data source whose schema is inferred from the data, then loads the data. */
  private async createFromData(auth: Auth, name: string, spec: WriteSpec, src: DataSource, importId: string, typeGuessing: boolean): Promise<WriteResult> {
    const { datasources, imports } = this.deps;
    const ws = auth.workspace;
    const { format, dialect } = spec;
    let stream = src.stream;
    let parquetFile: string | undefined;
    let inferred;
    try {
      if (format === 'parquet') {
        parquetFile = await imports.spool(stream);
        inferred = await imports.inferFromParquet(parquetFile);
      } else {
        const peeked = await peek(stream, 1024 * 1024);
        if (!peeked.head.length) throw badRequest('No data was provided. Make sure the file is not empty');
        stream = peeked.stream;
        inferred = imports.inferFromSample(format, peeked.head, dialect, typeGuessing);
      }
      const ds = await datasources.create(ws, { name, columns: inferred.columns, engine: inferred.engine, indexes: [], description: spec.description ?? '' });
      const counts = await this.loadNew(auth, ds, () => imports.load(ws, ds, { format, stream, importId, dialect, parquetFile }));
      return { ds, counts };
    } finally {
      if (parquetFile) fs.rmSync(parquetFile, { force: true });
    }
  }
}
