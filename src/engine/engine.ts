/**
 * The engine boundary: everything Pipit asks of ClickHouse goes through this interface, so the
 * domain never knows whether it runs on embedded chDB or a ClickHouse server. Engine failures
 * surface as EngineError with the ClickHouse `{code, type}` parsed once, here.
 */
import type { WriteGate } from './write-gate.js';

export interface QueryOptions {
  /** Output format (default TabSeparated). */
  format?: string;
  /** Marks the statement so `kill(queryId)` can stop it inside the engine. */
  queryId?: string;
  /** Abort the query (the engine is also bounded by max_execution_time in the SQL). */
  signal?: AbortSignal;
  /** Values of `{name:String}` placeholders, bound by the engine (never in the SQL text). */
  params?: Readonly<Record<string, string>>;
  /**
   * An insert of ingested rows (`INSERT ... FROM INFILE` of the Events API's log): it takes a slot
   * as `insert` does, which includes the internal lane's slot kept for inserts (jobs' statements
   * can not hold it back).
   */
  ingest?: boolean;
}

export interface QueryResult {
  /** Raw bytes in the requested format. */
  bytes: Buffer;
  /** Seconds spent in the engine. */
  elapsed: number;
  rowsRead: number;
  bytesRead: number;
}

export interface InsertOptions {
  /** Target table, database-qualified. */
  table: string;
  /** Payload format, e.g. JSONEachRow, JSONCompactEachRow, TabSeparated, CSV, LineAsString. */
  format: string;
  /** Payload bytes. Empty lines carry no rows: the embedded engine drops them (see withoutEmptyLines). */
  data: Buffer | string;
  /** Explicit column list. */
  columns?: readonly string[];
  /** Per-insert settings. */
  settings?: Record<string, string | number | boolean>;
}

/**
 * What the engine reports of an insert (chDB's insert summary, a server's X-ClickHouse-Summary).
 * The written figures count every block the insert wrote, in memory (uncompressed): the target
 * table's rows and those its materialized views cascaded into theirs. An insert into an ingest
 * stage thus counts the stage's rows (the lines with every parsed column; a Null table keeps
 * none of them) plus the rows the views wrote into the table and its quarantine.
 */
export interface InsertSummary {
  /** Rows and bytes written; 0 when the engine did not report them (chDB's inline insert path). */
  writtenRows: number;
  writtenBytes: number;
  /** Seconds spent in the engine. */
  elapsed: number;
}

/** The summary of an insert that wrote nothing. */
export const NOTHING_WRITTEN: InsertSummary = Object.freeze({ writtenRows: 0, writtenBytes: 0, elapsed: 0 });

/**
 * Limits of a user query. They are fixed on a read-only Session before `SET readonly=1`, so the
 * query itself cannot lift them; one pool of such Sessions exists per distinct profile.
 */
export interface SelectLimits {
  /** Seconds (max_execution_time). */
  maxExecutionTime: number;
  /** Bytes (max_result_bytes). */
  maxResultBytes: number;
  /** Bytes (max_memory_usage). */
  maxMemoryUsage: number;
  /** max_threads, when the caller asks for one. */
  maxThreads?: number;
  /** Output format settings (e.g. output_format_json_quote_64bit_integers), 0 or 1. */
  formatSettings?: Readonly<Record<string, 0 | 1>>;
}

export interface SelectOptions {
  format: string;
  limits: SelectLimits;
  /** Unique id (a ULID) used to find and kill the query on cancellation. */
  queryId: string;
  /** Aborting cancels the query inside the engine. */
  signal?: AbortSignal;
  /** Values of `{name:String}` placeholders, bound by the engine (never in the SQL text). */
  params?: Readonly<Record<string, string>>;
  /**
   * Run without streaming: for statements the engine cannot stream (EXPLAIN) and for formats
   * whose envelope carries statistics that streaming loses (JSON's rows_before_limit_at_least).
   */
  buffered?: boolean;
}

/**
 * A running user query: its output in chunks; iterate to the end or cancel. The chunks together
 * are one answer in the format, as a ClickHouse server sends it over HTTP: one header for the
 * `*WithNames` formats, one Parquet file. An adapter that can not stream a format so runs it whole.
 */
export interface SelectResult extends AsyncIterable<Buffer> {
  /** Stops the query and releases its Session. */
  cancel(): void;
  /** Engine statistics, known up front for buffered queries. */
  stats?: { elapsed: number; rowsRead: number; bytesRead: number };
  /**
   * The whole answer, when the engine ran the query whole (`buffered`): the query has ended and
   * released what it held (iterating yields these bytes, cancelling does nothing).
   */
  whole?: Buffer;
}

/** Current database of user queries on every engine: always empty, so an unqualified name finds nothing. */
export const SANDBOX_DATABASE = 'pipit_sandbox';

export interface Engine {
  /** The empty database user SELECTs run in (their current database). */
  readonly sandboxDatabase: string;
  /**
   * True when the engine runs on this host and reads and writes this host's files (embedded chDB):
   * only then can local-directory sinks work. A remote engine shares no filesystem with Pipit.
   */
  readonly localFiles: boolean;
  /**
   * True when the engine lives and dies with this process (embedded chDB): what it holds only in
   * memory (a Memory database's tables) lasts exactly as long as this process. A server outlives
   * Pipit's processes and is shared by its copies.
   */
  readonly inProcess: boolean;
  /**
   * Runs one checked user SELECT (see src/sql) on a read-only Session with the given limits, with
   * an empty current database. Resolves when the first output chunk is ready (so engine errors
   * surface before any byte is sent); rejects with EngineError.
   */
  select(sql: string, opts: SelectOptions): Promise<SelectResult>;
  /** Runs one trusted statement and returns its output bytes. */
  query(sql: string, opts?: QueryOptions): Promise<QueryResult>;
  /** Runs a statement for its effect (DDL, INSERT ... SELECT). */
  exec(sql: string, opts?: QueryOptions): Promise<void>;
  /** Runs a SELECT and returns the rows parsed from JSONEachRow. */
  rows<T = Record<string, unknown>>(sql: string): Promise<T[]>;
  /** Inserts a payload in a format into a table; resolves to what the engine reports of it. */
  insert(opts: InsertOptions): Promise<InsertSummary>;
  /**
   * Runs `fn` while no insert runs: waits for running inserts, holds new ones back until `fn`
   * ends. For changes that must see a table's data at one instant (attaching a materialized
   * view and snapshotting what it has not seen).
   */
  exclusiveWrites<T>(fn: () => Promise<T>): Promise<T>;
  /** The write gate behind inserts and `exclusiveWrites`; createApp makes it span copies (`WriteGate.acrossCopies`). */
  readonly gate: WriteGate;
  /**
   * Makes a file of Pipit's own (a spooled upload on this host) readable by the engine while `fn`
   * runs: `fn` gets a table expression over it, e.g. `file('/tmp/x', Parquet)` (embedded) or
   * `format(Parquet, (SELECT data FROM pipit_files.f_...))` (remote: the bytes were streamed to the
   * server first, and are dropped afterwards).
   */
  withFile<T>(file: string, format: 'Parquet', fn: (from: string) => Promise<T>): Promise<T>;
  /** Stops a statement run with `queryId` (QueryOptions/SelectOptions) inside the engine. */
  kill(queryId: string): Promise<void>;
  /** Waits for running statements and releases the engine. */
  close(): Promise<void>;
}

/** A ClickHouse error, parsed at the boundary: `Code: 60. DB::Exception: ... (UNKNOWN_TABLE)`. */
export class EngineError extends Error {
  constructor(
    readonly chCode: number,
    readonly chType: string,
    message: string,
  ) {
    super(message);
    this.name = 'EngineError';
  }

  static from(err: unknown): EngineError {
    if (err instanceof EngineError) return err;
    const raw = err instanceof Error ? err.message : String(err);
    const codeField = (err as { clickhouseCode?: number } | null)?.clickhouseCode;
    const m = /Code: (\d+)\. /.exec(raw);
    const code = typeof codeField === 'number' ? codeField : m ? Number(m[1]) : 0;
    const typeMatch = /\(([A-Z_0-9]+)\)(?: \(version [^)]*\))?\.?\s*$/.exec(raw);
    return new EngineError(code, typeMatch ? typeMatch[1] : 'UNKNOWN', cleanMessage(raw));
  }
}

/** Strips the `Code: N. DB::Exception:` prefix, the version suffix and nested repetitions. */
export function cleanMessage(raw: string): string {
  let msg = raw.trim();
  for (;;) {
    const next = msg.replace(/^Code: \d+\. DB::Exception: /, '');
    if (next === msg) break;
    msg = next;
  }
  msg = msg.replace(/ \(version [^)]*\)/g, '');
  msg = msg.replace(/\. \(([A-Z_0-9]+)\)(?=\.? |$)/g, '. ');
  return msg.replace(/\s*\(([A-Z_0-9]+)\)\s*$/, '').trim();
}

/** The tag that marks a statement of `queryId` in the engine's process list. */
export const markerTag = (queryId: string) => `pipit:${queryId.replace(/[^0-9A-Za-z]/g, '')}`;

/**
 * A SELECT that names its query id in its own text (`WHERE 'pipit:<id>' != ''`), for statements
 * the engine re-formats without comments (those with bound parameters): kill() finds it there.
 */
export const markSelect = (sql: string, queryId: string) => `SELECT * FROM (${sql}) WHERE '${markerTag(queryId)}' != ''`;

/** Quotes an identifier for ClickHouse: `name` with backticks and backslashes escaped. */
export function quoteIdent(name: string): string {
  return '`' + name.replace(/\\/g, '\\\\').replace(/`/g, '\\`') + '`';
}

/** Quotes a string literal for ClickHouse. */
export function quoteString(value: string): string {
  return "'" + value.replace(/\\/g, '\\\\').replace(/'/g, "\\'") + "'";
}

/** A `SETTINGS` clause's list (`a = 1, b = 'x'`): strings quoted, anything else (booleans too) as a number. */
export function settingsList(settings: Readonly<Record<string, string | number | boolean>>): string {
  return Object.entries(settings)
    .map(([k, v]) => `${k} = ${typeof v === 'string' ? quoteString(v) : Number(v)}`)
    .join(', ');
}
