/**
 * Create / append / replace a Data Source from data (`POST /v0/datasources`, url import jobs,
 * the Events API's auto-creation): picks the format, infers a schema when there is none (CSV type
 * guessing, NDJSON inference, Parquet metadata), and hands the stream to the ingest service.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import type { DatasourceRecord, Workspace } from '../catalog/catalog.js';
import type { Engine } from '../engine/engine.js';
import { name, sql, trusted } from '../engine/sql.js';
import { EngineError } from '../engine/engine.js';
import { CsvParser, hasHeader } from '../ingest/formats/csv.js';
import { defaultSortingKey, guessCsvSchema, inferJsonColumns, jsonColumnsToColumns, parseNdjsonSample } from '../ingest/formats/guess.js';
import type { CsvDialect, IngestCounts, IngestService } from '../ingest/ingest-service.js';
import { createTablesSql, physicalNames, userFacingNames } from '../ingest/physical.js';
import { abandonReplace, beginReplace, swapIn } from './atomic-writes.js';
import type { DatasourceService } from './datasource-service.js';
import { asDiskFull, isDiskFull } from '../basics/disk.js';
import { badRequest } from '../basics/errors.js';
import { checkExpression, normalizeName } from '../schema/index.js';
import type { Column, EngineSpec } from '../basics/types.js';

export type DataFormat = 'csv' | 'ndjson' | 'parquet';

/** Bytes looked at to infer a schema. */
const SAMPLE_BYTES = 1024 * 1024;

/** An async iterable with some bytes already read from its head. */
export async function peek(source: AsyncIterable<Buffer>, bytes: number): Promise<{ head: Buffer; stream: AsyncIterable<Buffer> }> {
  const it = source[Symbol.asyncIterator]();
  const parts: Buffer[] = [];
  let n = 0;
  let done = false;
  while (n < bytes) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    parts.push(r.value);
    n += r.value.length;
  }
  const head = Buffer.concat(parts);
  async function* all() {
    if (head.length) yield head;
    if (done) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  }
  return { head, stream: all() };
}

/** A data source name from a file name (`events.ndjson.gz` → `events`). */
export function nameFromFile(filename: string): string {
  const base = filename
    .split('/')
    .pop()!
    .replace(/\.(gz|gzip)$/i, '')
    .replace(/\.[^.]*$/, '');
  return base.replace(/[^A-Za-z0-9_]/g, '_').replace(/^([0-9])/, 't_$1') || 'imported';
}

export function formatFromName(filename: string | undefined): DataFormat | null {
  if (!filename) return null;
  const f = filename
    .toLowerCase()
    .replace(/\.(gz|gzip)$/, '')
    .split('?')[0];
  if (f.endsWith('.ndjson') || f.endsWith('.jsonl') || f.endsWith('.json')) return 'ndjson';
  if (f.endsWith('.parquet')) return 'parquet';
  if (f.endsWith('.csv') || f.endsWith('.tsv') || f.endsWith('.txt')) return 'csv';
  return null;
}

/** The data of one load: its format and bytes, the import id it is recorded under, and how CSV is read. */
export interface LoadInput {
  format: DataFormat;
  stream: AsyncIterable<Buffer>;
  importId: string;
  dialect: CsvDialect;
  /** The bytes already spooled to this file (Parquet, whose schema was read from it). */
  parquetFile?: string;
  /** The job running the load: a replace's point of no return checks this copy still holds it. */
  job?: string;
}

export interface InferredSchema {
  columns: Column[];
  engine: EngineSpec;
}

export class ImportService {
  constructor(
    private readonly engine: Engine,
    private readonly datasources: DatasourceService,
    private readonly ingest: IngestService,
    private readonly tmpDir: string,
  ) {
    fs.mkdirSync(tmpDir, { recursive: true });
  }

  /** Infers a schema from the head of CSV or NDJSON data. */
  inferFromSample(format: DataFormat, head: Buffer, dialect: CsvDialect, typeGuessing = true): InferredSchema {
    const text = head.toString('utf8');
    if (format === 'ndjson') {
      const { objects } = parseNdjsonSample(text);
      if (!objects.length) throw badRequest('Analysis error, invalid data. We could not infer the schema, please create the datasource manually and try again');
      const columns = jsonColumnsToColumns(inferJsonColumns(objects));
      return { columns, engine: { engine: 'MergeTree', params: defaultKeys(columns) } };
    }
    const parser = new CsvParser({ delimiter: dialect.delimiter, newline: dialect.newline, escapechar: dialect.escapechar });
    const cut = head.length >= SAMPLE_BYTES ? text.slice(0, text.lastIndexOf('\n') + 1) : text;
    const records = [...parser.push(cut), ...parser.end()].filter((r) => r.fields).map((r) => r.fields!);
    if (!records.length) throw badRequest('No data was provided. Make sure the file is not empty');
    const header = hasHeader(records) ? records[0] : null;
    const columns = guessCsvSchema(header, header ? records.slice(1) : records, { typeGuessing }).map(fullType);
    return { columns, engine: { engine: 'MergeTree', params: defaultKeys(columns) } };
  }

  /** Columns of a Parquet file, each with the JSONPath of its field. */
  async inferFromParquet(file: string): Promise<InferredSchema> {
    let desc: Array<{ name: string; type: string }>;
    try {
      desc = await this.engine.withFile(file, 'Parquet', (from) => this.engine.rows(`DESCRIBE ${from}`));
    } catch (err) {
      // The engine's own conditions (unreachable, full disk) stay what they are.
      if (err instanceof EngineError && err.chType === 'ENGINE_UNAVAILABLE') throw err;
      if (isDiskFull(err)) throw err;
      throw badRequest('File is not a valid Parquet file');
    }
    const columns: Column[] = desc.map((d) => ({
      name: normalizeName(d.name),
      type: d.type,
      nullable: d.type.startsWith('Nullable('),
      defaultValue: null,
      codec: null,
      jsonpath: `$.${/^[A-Za-z_][A-Za-z0-9_]*$/.test(d.name) ? d.name : `['${d.name.replace(/'/g, "\\'")}']`}`,
    }));
    return { columns, engine: { engine: 'MergeTree', params: defaultKeys(columns) } };
  }

  /** Writes a stream to a private temporary file (for Parquet, which needs random access). */
  async spool(stream: AsyncIterable<Buffer>): Promise<string> {
    const file = path.join(this.tmpDir, `upload-${crypto.randomUUID()}`);
    try {
      await pipeline(Readable.from(stream), fs.createWriteStream(file, { mode: 0o600 }));
    } catch (err) {
      // A full disk (or a broken upload) leaves no partial file behind.
      fs.rmSync(file, { force: true });
      throw asDiskFull(err);
    }
    return file;
  }

  /** Loads data of a format into an existing data source (an `append` operation in datasources_ops_log). */
  async load(ws: Workspace, ds: DatasourceRecord, input: LoadInput): Promise<IngestCounts> {
    return this.recorded(ws, ds, 'append', input, () => this.loadInto(ws, ds, input));
  }

  /** Runs an append or replace and reports it, with its counts or its error. */
  private async recorded(
    ws: Workspace,
    ds: DatasourceRecord,
    eventType: 'append' | 'replace',
    { format, importId }: LoadInput,
    fn: () => Promise<IngestCounts>,
  ): Promise<IngestCounts> {
    const started = performance.now();
    const base = { eventType, datasource: ds, importId, options: { format } };
    try {
      const c = await fn();
      const elapsed = (performance.now() - started) / 1000;
      this.datasources.ops.op(ws.id, {
        ...base,
        result: 'ok',
        elapsed,
        rows: c.rows,
        rowsQuarantine: c.quarantined + c.invalidLines,
        bytes: c.bytes,
        writtenBytes: c.writtenBytes,
      });
      return c;
    } catch (err) {
      const elapsed = (performance.now() - started) / 1000;
      this.datasources.ops.op(ws.id, {
        ...base,
        result: 'error',
        elapsed,
        error: userFacingNames(String((err as Error).message), (id) => this.datasources.nameOfId(id)),
      });
      throw err;
    }
  }

  private async loadInto(ws: Workspace, ds: DatasourceRecord, { format, stream, importId, dialect, parquetFile }: LoadInput): Promise<IngestCounts> {
    if (format !== 'csv' && ds.format !== 'ndjson') {
      throw badRequest(`Data Source "${ds.name}" has no JSONPaths in its schema: ${format === 'parquet' ? 'Parquet' : 'NDJSON'} data can't be appended to it`);
    }
    await this.datasources.ensureStage(ws, ds, format === 'csv' ? 'csv' : 'json');
    if (format === 'parquet') {
      const file = parquetFile ?? (await this.spool(stream));
      try {
        if (!parquetFile) await this.inferFromParquet(file); // 400 'File is not a valid Parquet file' rather than the engine's message
        return await this.ingest.appendParquetFile(ws, ds, file, importId);
      } finally {
        if (!parquetFile) fs.rmSync(file, { force: true });
      }
    }
    if (format === 'ndjson') {
      return this.ingest.appendNdjson(ws, ds, stream, importId);
    }
    return this.ingest.appendCsv(ws, ds, stream, importId, dialect);
  }

  /**
   * Replaces the data of `ds` with the new data (or only the rows matching `condition`): the data
   * is loaded into a shadow table first, so a failed load leaves the data source untouched.
   */
  async replace(ws: Workspace, ds: DatasourceRecord, input: LoadInput, condition?: string): Promise<IngestCounts> {
    return this.recorded(ws, ds, 'replace', input, () => this.replaceWith(ws, ds, input, condition));
  }

  private async replaceWith(ws: Workspace, ds: DatasourceRecord, input: LoadInput, condition?: string): Promise<IngestCounts> {
    // The condition is pasted into engine statements: it must be one plain expression.
    if (condition) condition = checkExpression(condition, 'replace_condition');
    const journal = this.datasources.journal;
    const { intent, shadow } = await beginReplace(this.engine, journal, ws, ds, (sh) => createTablesSql(sh, ws.database), {
      condition,
      token: input.importId,
      quarantine: true,
      job: input.job,
    });
    const tmp = physicalNames(ws.database, shadow.id);
    let counts: IngestCounts;
    try {
      counts = await this.loadInto(ws, shadow, { ...input, parquetFile: undefined });
      if (condition) {
        try {
          await this.engine.exec(sql`SELECT count() FROM ${name(tmp.table)} WHERE ${trusted(condition)} FORMAT Null`.text);
        } catch (err) {
          throw badRequest(
            `Invalid replace_condition "${condition}": ${userFacingNames((err as Error).message, (id) => (id === shadow.id ? ds.name : this.datasources.nameOfId(id)))}`,
          );
        }
      }
    } catch (err) {
      await abandonReplace(this.engine, journal, intent);
      throw err;
    } finally {
      // The shadow's stages go with it (abandonReplace, swapIn).
      this.datasources.forgetStages(shadow.id);
    }
    await swapIn(this.engine, journal, intent);
    await this.datasources.touch(ws, ds);
    return counts;
  }

  /** Empties a data source (replace with no data). */
  async replaceWithNothing(ws: Workspace, ds: DatasourceRecord): Promise<void> {
    await this.engine.exec(sql`TRUNCATE TABLE ${name(physicalNames(ws.database, ds.id).table)}`.text);
  }
}

function defaultKeys(columns: Column[]): Record<string, string> {
  const k = defaultSortingKey(columns);
  const out: Record<string, string> = {};
  if (k.sorting_key && k.sorting_key !== 'tuple()') out.sorting_key = k.sorting_key;
  if (k.partition_key) out.partition_key = k.partition_key;
  return out;
}

/** Guessed CSV columns carry `nullable` apart from the type; the stored type is the full one. */
function fullType(c: Column): Column {
  if (c.nullable && !c.type.startsWith('Nullable(')) return { ...c, type: `Nullable(${c.type})` };
  return c;
}
