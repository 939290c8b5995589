/**
 * Loads data into a Data Source through its ingest stages: NDJSON lines and CSV records go to the
 * engine in bounded chunks (never the whole body in memory), the engine parses and coerces every
 * value, good rows land in the table and bad ones in quarantine with the reason. Returns counts.
 */
import fs from 'node:fs';
import type { DatasourceRecord, Workspace } from '../catalog/catalog.js';
import type { Engine, InsertOptions } from '../engine/engine.js';
import { name, sql, trusted } from '../engine/sql.js';
import { CsvParser } from './formats/csv.js';
import { physicalNames, writableColumns } from './physical.js';

/** Bytes per engine insert when streaming a large body. */
export const CHUNK_BYTES = 8 * 1024 * 1024;

export interface IngestCounts {
  /** Rows written to the table. */
  rows: number;
  /** Rows written to quarantine because a value did not fit. */
  quarantined: number;
  /** Lines that could not be parsed at all or have the wrong number of columns (also kept in quarantine). */
  invalidLines: number;
  /** Bytes read from the source. */
  bytes: number;
  /**
   * Bytes the engine reported written by the inserts (InsertSummary: the stage's rows and what its
   * views wrote into the table and quarantine, uncompressed); 0 for a Parquet load, whose
   * `INSERT ... SELECT` reports none.
   */
  writtenBytes: number;
}

export interface CsvDialect {
  delimiter?: string;
  newline?: string;
  escapechar?: string;
}

/**
 * Settings of every insert into a data source's ingest stage (appends, Events API segments):
 * idempotent (a retried token is written once), its rows tagged with the import id, and text
 * parsed without parallel parsing — its extra pass over the data and its threads cost more engine
 * CPU than they save, as the rest of the insert runs in one thread anyway (measured per chunk,
 * docs/benchmarks.md "Data source appends"). Formats without a text segmenter (Parquet) ignore it.
 */
export function insertSettings(importId: string, token: string): Record<string, string | number> {
  return { log_comment: importId, insert_deduplication_token: token, deduplicate_blocks_in_dependent_materialized_views: 1, input_format_parallel_parsing: 0 };
}

/**
 * Lines of an NDJSON body that hold something (`lines`), and how many of them cannot be a JSON
 * object because they do not start with `{` after JSON's whitespace (`notObjects`): those go to
 * quarantine whatever the schema, so the Events API counts them as quarantined without waiting for
 * the engine.
 */
export function countNdjsonLines(buf: Buffer): { lines: number; notObjects: number } {
  let lines = 0;
  let notObjects = 0;
  let start = 0;
  while (start < buf.length) {
    let end = buf.indexOf(10, start);
    if (end < 0) end = buf.length;
    let formFeed = false;
    // The engine's JSON parser skips one UTF-8 byte order mark before the document (then JSON's
    // whitespace), so `\uFEFF{...}` is read; the stage never finds such a line blank.
    const bom = end - start >= 3 && buf[start] === 0xef && buf[start + 1] === 0xbb && buf[start + 2] === 0xbf;
    let i = bom ? start + 3 : start;
    for (; i < end; i++) {
      const c = buf[i];
      // Blank as the NDJSON stage's `match(__line, '^\\s*$')` is (RE2's \s: space, \t, \r, \f, not
      // \v): a line of vertical tabs is kept there, and quarantined, so it is counted here. A form
      // feed is not JSON's whitespace, though: a line with one before its `{` cannot be read.
      if (c === 12) formFeed = true;
      else if (c !== 32 && c !== 9 && c !== 13) {
        lines++;
        if (c !== 123 || formFeed) notObjects++;
        break;
      }
    }
    // A BOM followed by nothing but whitespace: kept by the stage, and not JSON.
    if (bom && i === end) {
      lines++;
      notObjects++;
    }
    start = end + 1;
  }
  return { lines, notObjects };
}

export class IngestService {
  constructor(private readonly engine: Engine) {}

  /** Streams NDJSON from `source` into the data source. */
  async appendNdjson(ws: Workspace, ds: DatasourceRecord, source: AsyncIterable<Buffer>, importId: string): Promise<IngestCounts> {
    const names = physicalNames(ws.database, ds.id);
    const started = Date.now();
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let lines = 0;
    let bytes = 0;
    let written = 0;
    let chunkNo = 0;
    const flush = async (data: Buffer) => {
      if (data.length === 0) return;
      lines += countNdjsonLines(data).lines;
      written += await this.insert({
        table: names.jsonStage,
        format: 'LineAsString',
        columns: ['__line'],
        data,
        settings: insertSettings(importId, `${importId}-${chunkNo++}`),
      });
    };
    for await (const chunk of source) {
      bytes += chunk.length;
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes >= CHUNK_BYTES) {
        const all = Buffer.concat(pending);
        const cut = all.lastIndexOf(10) + 1;
        if (cut > 0) {
          await flush(all.subarray(0, cut));
          pending = [all.subarray(cut)];
          pendingBytes = all.length - cut;
        }
      }
    }
    await flush(Buffer.concat(pending));
    const quarantined = await this.countQuarantined(ws, ds, importId, started);
    return { rows: lines - quarantined, quarantined, invalidLines: 0, bytes, writtenBytes: written };
  }

  /** Streams CSV from `source`; a header row naming the columns is skipped. */
  async appendCsv(ws: Workspace, ds: DatasourceRecord, source: AsyncIterable<Buffer>, importId: string, dialect: CsvDialect): Promise<IngestCounts> {
    const names = physicalNames(ws.database, ds.id);
    const cols = writableColumns(ds.columns);
    const colNames = cols.map((c) => c.name.toLowerCase());
    const parser = new CsvParser({ delimiter: dialect.delimiter, newline: dialect.newline, escapechar: dialect.escapechar });
    const started = Date.now();
    const decoder = new TextDecoder('utf-8');
    let rows = 0;
    let invalid = 0;
    let bytes = 0;
    let written = 0;
    let first = true;
    let chunkNo = 0;
    let payload: string[] = [];
    let payloadBytes = 0;
    const flush = async () => {
      if (!payload.length) return;
      const data = payload.join('\n') + '\n';
      payload = [];
      payloadBytes = 0;
      written += await this.insert({
        table: names.csvStage,
        format: 'JSONCompactEachRow',
        columns: [...cols.map((_, i) => `__c${i}`), '__err'],
        data,
        settings: insertSettings(importId, `${importId}-${chunkNo++}`),
      });
    };
    const take = async (records: ReturnType<CsvParser['push']>) => {
      for (const r of records) {
        if (first) {
          first = false;
          if (r.fields && r.fields.length === cols.length && r.fields.every((f, i) => f.trim().toLowerCase() === colNames[i])) continue;
        }
        let fields: (string | null)[];
        let err = '';
        if (!r.fields) {
          invalid++;
          fields = cols.map(() => null);
          err = `invalid CSV line ${r.line}: ${r.error ?? 'cannot be parsed'}: ${r.raw}`;
        } else if (r.fields.length !== cols.length) {
          // A line with the wrong number of columns is an invalid line (Tinybird's
          // `invalid_lines`), not a row with bad values; it is kept in quarantine as it was.
          invalid++;
          const given = r.fields.map((f) => (f === '\\N' ? null : f));
          fields = cols.map((_, i) => given[i] ?? null);
          err = `invalid CSV line ${r.line}: it has ${given.length} columns, the Data Source has ${cols.length}: ${r.raw}`;
        } else {
          rows++;
          fields = r.fields.map((f) => (f === '\\N' ? null : f));
        }
        const row = JSON.stringify([...fields, err]);
        payload.push(row);
        payloadBytes += row.length;
        if (payloadBytes >= CHUNK_BYTES) await flush();
      }
    };
    for await (const chunk of source) {
      bytes += chunk.length;
      await take(parser.push(decoder.decode(chunk, { stream: true })));
    }
    await take(parser.push(decoder.decode()));
    await take(parser.end());
    await flush();
    const quarantinedAll = await this.countQuarantined(ws, ds, importId, started);
    const quarantined = Math.max(0, quarantinedAll - invalid);
    return { rows: rows - quarantined, quarantined, invalidLines: invalid, bytes, writtenBytes: written };
  }

  /**
   * Loads a Parquet file (spooled on Pipit's disk; the engine reads it through Engine.withFile, which
   * streams it to a remote server): each row becomes a JSON line of the NDJSON stage.
   */
  async appendParquetFile(ws: Workspace, ds: DatasourceRecord, file: string, importId: string): Promise<IngestCounts> {
    const names = physicalNames(ws.database, ds.id);
    const started = Date.now();
    const bytes = fs.statSync(file).size;
    const settings = Object.entries(insertSettings(importId, `${importId}-0`)).map(([k, v]) => sql`${trusted(k)} = ${v}`);
    const total = await this.engine.withFile(file, 'Parquet', async (from) => {
      const countRows = await this.engine.rows<{ c: string }>(sql`SELECT count() AS c FROM ${trusted(from)}`.text);
      await this.engine.exec(
        sql`INSERT INTO ${name(names.jsonStage)} (__line) SELECT formatRowNoNewline('JSONEachRow', *) FROM ${trusted(from)} SETTINGS ${settings}`.text,
      );
      return Number(countRows[0]?.c ?? 0);
    });
    const quarantined = await this.countQuarantined(ws, ds, importId, started);
    return { rows: total - quarantined, quarantined, invalidLines: 0, bytes, writtenBytes: 0 };
  }

  /** One chunk into a stage; the bytes the engine reported written. */
  private async insert(opts: InsertOptions): Promise<number> {
    return (await this.engine.insert(opts)).writtenBytes;
  }

  async countQuarantined(ws: Workspace, ds: DatasourceRecord, importId: string, sinceMs: number): Promise<number> {
    const m = await this.countQuarantinedMany(ws, ds, [importId], sinceMs);
    return m.get(importId) ?? 0;
  }

  /** Quarantined row counts per import id (rows of one batch may belong to several requests). */
  async countQuarantinedMany(ws: Workspace, ds: DatasourceRecord, importIds: string[], sinceMs: number): Promise<Map<string, number>> {
    const names = physicalNames(ws.database, ds.id);
    const since = Math.floor(sinceMs / 1000) - 5;
    const r = await this.engine.rows<{ id: string; c: string }>(
      sql`SELECT c__import_id AS id, count() AS c FROM ${name(names.quarantine)} WHERE insertion_date >= toDateTime(${since}) AND c__import_id IN (${importIds}) GROUP BY id`
        .text,
    );
    return new Map(r.map((x) => [x.id, Number(x.c)]));
  }
}
