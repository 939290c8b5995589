/**
 * The remote engine: a ClickHouse server or cluster (PIPIT_ENGINE_URL) behind the Engine interface,
 * over the official `@clickhouse/client` (HTTP). What the embedded engine fixes on its Sessions is
 * sent with each request instead: bound values as `query_params`, limits and the output format as
 * per-query settings, user SELECTs with `readonly=2` in an empty sandbox database (the SQL safety
 * layer runs before, as always), and a `query_id` per statement so `kill()` stops it with
 * `KILL QUERY`. Errors are parsed into EngineError at this boundary (a full disk → DiskFullError, an
 * unreachable server → ENGINE_UNAVAILABLE, a retryable 503). Calls take a slot of their lane first,
 * like the embedded engine's. At open it refuses a server older than MIN_SERVER_VERSION, naming it.
 * Nothing here assumes a shared filesystem: files Pipit holds are streamed to the server (withFile).
 */
import { ClickHouseLogLevel, createClient, type ClickHouseClient, type ClickHouseSettings } from '@clickhouse/client';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { clusterStatement } from './cluster-ddl.js';
import { engineError } from './engine-errors.js';
import {
  cleanMessage,
  type Engine,
  EngineError,
  type InsertOptions,
  type InsertSummary,
  markerTag,
  type QueryOptions,
  type QueryResult,
  quoteIdent,
  quoteString,
  SANDBOX_DATABASE,
  type SelectOptions,
  type SelectResult,
} from './engine.js';
import { EngineLanes, type SlotKind } from './lanes.js';
import { selectResult, wholeResult } from './select-result.js';
import { WriteGate } from './write-gate.js';

/**
 * The oldest ClickHouse Pipit runs on. The SQL it emits needs: lightweight `DELETE FROM` (GA in
 * 23.3), `insert_deduplication_token` (22.2), `s3_truncate_on_insert`/`s3_create_new_file_on_insert`
 * (22.x), `format()` over a scalar subquery (files streamed to the server), CTEs and query parameters
 * (19.x–20.x), `EXCHANGE TABLES` (Atomic databases, 20.x); 23.8 is the first LTS release with all of them.
 */
export const MIN_SERVER_VERSION = '23.8';

/** Database of files streamed to the server for the time of one statement (withFile). */
export const FILES_DATABASE = 'pipit_files';

export interface RemoteEngineOptions {
  /** http(s)://host:port of the server (or of a load balancer in front of a cluster's replicas). */
  url: string;
  username?: string;
  password?: string;
  /** Cluster name: DDL runs ON CLUSTER and tables are Replicated (src/engine/cluster-ddl.ts). */
  cluster?: string | null;
  /** User SELECTs at once (the user lane). */
  userSlots: number;
  /** Inserts, DDL and job statements at once (the internal lane). */
  internalSlots: number;
  /** Bytes one internal statement may use (max_memory_usage sent with it); 0 = the server's profile decides. */
  statementMaxMemory?: number;
  /** Milliseconds an HTTP request may take before the client gives up (default 1 hour: jobs run long). */
  requestTimeout?: number;
}

/** `23.8.2.7` → [23, 8, 2, 7]. */
export function parseVersion(v: string): number[] {
  return v
    .trim()
    .split('.')
    .map((x) => Number.parseInt(x, 10))
    .filter((n) => Number.isFinite(n));
}

/** True when version `v` is at least `min` (component by component). */
export function versionAtLeast(v: string, min: string): boolean {
  const a = parseVersion(v);
  const b = parseVersion(min);
  for (let i = 0; i < b.length; i++) {
    const x = a[i] ?? 0;
    if (x !== b[i]) return x > b[i];
  }
  return true;
}

/** Node network failures: the server is not there (or went away); retryable. */
const NETWORK = /ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN|socket hang up|Timeout error|other side closed/i;

/** The boundary: client errors → EngineError (code and type as the server sent them), network → ENGINE_UNAVAILABLE. */
function remoteError(err: unknown): Error {
  if (err instanceof EngineError) return err;
  const e = err as { code?: unknown; type?: unknown; message?: unknown; name?: unknown } | null;
  const msg = typeof e?.message === 'string' ? e.message : String(err);
  if (e && typeof e.code === 'string' && /^\d+$/.test(e.code)) {
    return engineError(new EngineError(Number(e.code), typeof e.type === 'string' && e.type ? e.type : 'UNKNOWN', cleanMessage(msg)));
  }
  if (e?.name === 'AbortError' || /aborted/i.test(msg)) return new EngineError(394, 'QUERY_WAS_CANCELLED', 'Query was cancelled');
  if (NETWORK.test(msg) || (typeof e?.code === 'string' && NETWORK.test(e.code))) {
    return new EngineError(0, 'ENGINE_UNAVAILABLE', `The engine is unavailable: ${msg}`);
  }
  return engineError(err);
}

const EXCEPTION_MARKER = Buffer.from('__exception__');

/**
 * An error ClickHouse wrote at the end of a streamed response (since 25.11, framed by the response's
 * X-ClickHouse-Exception-Tag: `\r\n__exception__\r\n<tag>\n<message>\n<length> <tag>\r\n__exception__\r\n`).
 * Returns the data before the frame and the parsed error, or null when the tail holds none.
 */
export function splitStreamException(tail: Buffer, tag: string | undefined): { data: Buffer; error: EngineError } | null {
  if (!tag) return null;
  const end = Buffer.from(` ${tag}\r\n__exception__\r\n`);
  if (tail.length < end.length || !tail.subarray(tail.length - end.length).equals(end)) return null;
  const startFrame = Buffer.concat([Buffer.from('\r\n'), EXCEPTION_MARKER, Buffer.from(`\r\n${tag}\n`)]);
  const at = tail.lastIndexOf(startFrame);
  if (at < 0) return null;
  const body = tail.subarray(at + startFrame.length, tail.length - end.length).toString('utf8');
  const message = body.replace(/\n\d+$/, '');
  return { data: tail.subarray(0, at), error: EngineError.from(new Error(message)) };
}

export class RemoteEngine implements Engine {
  readonly sandboxDatabase = SANDBOX_DATABASE;
  readonly localFiles = false;
  readonly inProcess = false;
  /** What a full disk left behind on an embedded engine; a server repairs itself. */
  readonly lost: Array<{ database: string; table: string; uuid: string | null }> = [];
  readonly repairs: string[] = [];
  dataUuid(): string | null {
    return null;
  }
  /** The server's version, as it answered at open. */
  version = '';

  private readonly client: ClickHouseClient;
  private readonly userClient: ClickHouseClient;
  private readonly lanes: EngineLanes;
  readonly gate = new WriteGate();
  private readonly cluster: string | null;
  private closed = false;
  private seq = 0;
  private readonly running = new Set<Promise<unknown>>();

  private constructor(private readonly opts: RemoteEngineOptions) {
    this.cluster = opts.cluster || null;
    const common = {
      url: opts.url,
      username: opts.username || 'default',
      password: opts.password ?? '',
      request_timeout: opts.requestTimeout ?? 3_600_000,
      // Per lane, plus one for KILL QUERY.
      max_open_connections: opts.userSlots + opts.internalSlots + 1,
      compression: { request: false, response: true },
      application: 'pipit',
      // Errors reach Pipit's own log through the callers; the client's logger would print them twice.
      log: { level: ClickHouseLogLevel.OFF },
    };
    this.client = createClient({ ...common, database: 'default' });
    // User SELECTs: their current database is the empty sandbox, so an unqualified name finds nothing.
    this.userClient = createClient({ ...common, database: SANDBOX_DATABASE, max_open_connections: opts.userSlots + 1 });
    this.lanes = new EngineLanes({ user: opts.userSlots, internal: opts.internalSlots });
  }

  /**
   * Connects, checks the server's version (refusing one older than MIN_SERVER_VERSION) and creates
   * the sandbox and file databases; files a crashed copy left streamed in for over a day are dropped.
   */
  static async open(opts: RemoteEngineOptions): Promise<RemoteEngine> {
    const e = new RemoteEngine(opts);
    try {
      e.version = await RemoteEngine.serverVersion(opts);
      if (!versionAtLeast(e.version, MIN_SERVER_VERSION)) {
        throw new Error(
          `The ClickHouse server at ${opts.url} is version ${e.version}; Pipit needs ClickHouse ${MIN_SERVER_VERSION} or newer ` +
            '(lightweight DELETE, insert deduplication tokens, CTEs and query parameters). Upgrade the server or unset PIPIT_ENGINE_URL to use the embedded engine.',
        );
      }
      await e.exec(`CREATE DATABASE IF NOT EXISTS ${SANDBOX_DATABASE}`);
      await e.exec(`CREATE DATABASE IF NOT EXISTS ${FILES_DATABASE}`);
      const stale = await e.rows<{ name: string }>(
        `SELECT name FROM system.tables WHERE database = '${FILES_DATABASE}' AND metadata_modification_time < now() - INTERVAL 1 DAY`,
      );
      for (const t of stale) await e.exec(`DROP TABLE IF EXISTS ${FILES_DATABASE}.${quoteIdent(t.name)} SYNC`);
      return e;
    } catch (err) {
      await e.close();
      throw err;
    }
  }

  /**
   * The server's version from a plain HTTP GET (`/?query=SELECT version()`), which every ClickHouse
   * since the first releases answers, so an old server gets the clear refusal rather than an error
   * about a setting the client sends that it does not know.
   */
  static async serverVersion(opts: Pick<RemoteEngineOptions, 'url' | 'username' | 'password'>): Promise<string> {
    const url = new URL(opts.url);
    url.pathname = '/';
    url.search = new URLSearchParams({ query: 'SELECT version()' }).toString();
    const auth = Buffer.from(`${opts.username || 'default'}:${opts.password ?? ''}`).toString('base64');
    let res: Response;
    try {
      res = await fetch(url, { headers: { authorization: `Basic ${auth}` }, signal: AbortSignal.timeout(10_000) });
    } catch (err) {
      throw new Error(`The ClickHouse server at ${opts.url} does not answer: ${(err as Error).cause ?? (err as Error).message}`);
    }
    const text = (await res.text()).trim();
    if (!res.ok) throw new Error(`The ClickHouse server at ${opts.url} refused the version check (HTTP ${res.status}): ${text.slice(0, 300)}`);
    if (!/^\d+(\.\d+)+/.test(text))
      throw new Error(`The server at ${opts.url} is not a ClickHouse server (it answered "${text.slice(0, 80)}" to SELECT version())`);
    return text;
  }

  /** Slots in use per lane (for tests and metrics). */
  get laneUsage(): { user: number; internal: number } {
    return { user: this.lanes.user.busy, internal: this.lanes.internal.busy };
  }

  /** A server-side query id for one statement of `queryId`: `kill(queryId)` finds all of them by prefix. */
  private statementId(queryId: string | undefined): string | undefined {
    return queryId ? `${markerTag(queryId)}-${(++this.seq).toString(36)}` : undefined;
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.running.add(p);
    const done = () => this.running.delete(p);
    p.then(done, done);
    return p;
  }

  private checkOpen(): void {
    if (this.closed) throw new EngineError(0, 'ENGINE_CLOSED', 'The engine is shutting down');
  }

  async select(sql: string, opts: SelectOptions): Promise<SelectResult> {
    this.checkOpen();
    const free = await this.lanes.take('select', opts.signal);
    const ac = new AbortController();
    const statementId = this.statementId(opts.queryId);
    let finished = false;
    let release!: () => void;
    const tracked = this.track(new Promise<void>((r) => (release = r)));
    void tracked;
    const finish = () => {
      if (finished) return;
      finished = true;
      opts.signal?.removeEventListener('abort', cancel);
      free();
      release();
    };
    const cancel = () => {
      if (finished) return;
      ac.abort();
      this.kill(opts.queryId).catch(() => undefined);
    };
    if (opts.signal?.aborted) cancel();
    opts.signal?.addEventListener('abort', cancel);
    const l = opts.limits;
    const settings: ClickHouseSettings = {
      readonly: '2',
      default_format: opts.format,
      max_execution_time: l.maxExecutionTime,
      max_result_bytes: String(l.maxResultBytes),
      max_memory_usage: String(l.maxMemoryUsage),
      // A read-only query stops when its client goes away, not only when it next writes output.
      cancel_http_readonly_queries_on_client_close: 1,
      ...(l.maxThreads !== undefined ? { max_threads: l.maxThreads } : {}),
      ...(l.formatSettings ?? {}),
    } as ClickHouseSettings;
    let stream: Readable;
    let tag: string | undefined;
    let it: AsyncIterator<Buffer>;
    let first: IteratorResult<Buffer>;
    try {
      const r = await this.userClient.exec({
        query: sql,
        query_id: statementId,
        query_params: opts.params,
        clickhouse_settings: settings,
        abort_signal: ac.signal,
      });
      stream = r.stream as Readable;
      tag = headerOf(r.response_headers, 'x-clickhouse-exception-tag');
      it = framed(stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>, tag);
      if (opts.buffered) {
        const chunks: Buffer[] = [];
        for (let c = await it.next(); !c.done; c = await it.next()) chunks.push(c.value);
        finish();
        return wholeResult(summaryOf(r.response_headers), Buffer.concat(chunks));
      }
      first = await it.next();
    } catch (err) {
      finish();
      throw remoteError(err);
    }
    return selectResult({ stats: undefined, it, first, bytes: (c) => c, cancel, finish, finished: () => finished, error: remoteError });
  }

  private async withSlot<T>(kind: SlotKind, fn: () => Promise<T>): Promise<T> {
    this.checkOpen();
    const free = await this.lanes.take(kind);
    try {
      this.checkOpen();
      return await this.track(fn());
    } catch (err) {
      throw remoteError(err);
    } finally {
      free();
    }
  }

  private internalSettings(format?: string, extra?: Record<string, string | number | boolean>): ClickHouseSettings {
    const s: Record<string, unknown> = { ...(extra ?? {}) };
    if (format) s.default_format = format;
    if (this.opts.statementMaxMemory) s.max_memory_usage = String(Math.floor(this.opts.statementMaxMemory));
    return s as ClickHouseSettings;
  }

  async query(sql: string, opts: QueryOptions = {}): Promise<QueryResult> {
    if (opts.signal?.aborted) throw new EngineError(394, 'QUERY_WAS_CANCELLED', 'Query was cancelled');
    const run = () => this.queryNow(clusterStatement(sql, this.cluster), opts);
    return /^\s*INSERT\b/i.test(sql) ? this.gate.shared(run, opts.ingest ? 'insert' : 'statement') : run();
  }

  private async queryNow(sql: string, opts: QueryOptions): Promise<QueryResult> {
    const onAbort = () => void this.kill(opts.queryId).catch(() => undefined);
    opts.signal?.addEventListener('abort', onAbort);
    try {
      return await this.withSlot(opts.ingest ? 'insert' : 'statement', async () => {
        const started = Date.now();
        const r = await this.client.exec({
          query: sql,
          query_id: this.statementId(opts.queryId),
          query_params: opts.params,
          clickhouse_settings: this.internalSettings(opts.format ?? 'TabSeparated'),
        });
        const tag = headerOf(r.response_headers, 'x-clickhouse-exception-tag');
        const chunks: Buffer[] = [];
        const it = framed((r.stream as Readable)[Symbol.asyncIterator]() as AsyncIterator<Buffer>, tag);
        for (let c = await it.next(); !c.done; c = await it.next()) chunks.push(c.value);
        const s = summaryOf(r.response_headers);
        return { bytes: Buffer.concat(chunks), elapsed: s.elapsed || (Date.now() - started) / 1000, rowsRead: s.rowsRead, bytesRead: s.bytesRead };
      });
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  async exec(sql: string, opts: QueryOptions = {}): Promise<void> {
    await this.query(sql, opts);
  }

  async rows<T = Record<string, unknown>>(sql: string): Promise<T[]> {
    const r = await this.query(sql, { format: 'JSONEachRow' });
    const out: T[] = [];
    for (const line of r.bytes.toString('utf8').split('\n')) if (line) out.push(JSON.parse(line) as T);
    return out;
  }

  insert(opts: InsertOptions): Promise<InsertSummary> {
    const cols = opts.columns ? ` (${opts.columns.join(', ')})` : '';
    const data = typeof opts.data === 'string' ? Buffer.from(opts.data) : opts.data;
    return this.gate.shared(() => this.stream(`INSERT INTO ${opts.table}${cols} FORMAT ${opts.format}`, Readable.from([data]), opts.settings, 'insert'));
  }

  /**
   * Sends `values` as the body of an INSERT ... FORMAT statement (query in the URL, data streamed);
   * resolves to the server's X-ClickHouse-Summary of it (sent once the insert has ended).
   */
  private stream(sql: string, values: Readable, settings: Record<string, string | number | boolean> | undefined, kind: SlotKind): Promise<InsertSummary> {
    return this.withSlot(kind, async () => {
      const r = await this.client.exec({ query: sql, values, clickhouse_settings: this.internalSettings(undefined, settings) });
      for await (const _ of r.stream as Readable) {
        /* drained */
      }
      const s = summaryOf(r.response_headers);
      return { writtenRows: s.writtenRows, writtenBytes: s.writtenBytes, elapsed: s.elapsed };
    });
  }

  exclusiveWrites<T>(fn: () => Promise<T>): Promise<T> {
    return this.gate.exclusive(fn);
  }

  /**
   * Streams a file of Pipit's into a table of FILES_DATABASE as one `String` (format RawBLOB) and
   * hands `fn` a `format(<format>, (SELECT data FROM ...))` over it; the table is dropped afterwards.
   * The server never needs Pipit's filesystem.
   */
  async withFile<T>(file: string, format: 'Parquet', fn: (from: string) => Promise<T>): Promise<T> {
    const table = `${FILES_DATABASE}.f_${crypto.randomUUID().replace(/-/g, '')}`;
    await this.exec(`CREATE TABLE ${table} (data String) ENGINE = MergeTree ORDER BY tuple()`);
    try {
      await this.stream(`INSERT INTO ${table} FORMAT RawBLOB`, fs.createReadStream(file), undefined, 'insert');
      return await fn(`format(${format}, (SELECT data FROM ${table}))`);
    } finally {
      await this.exec(`DROP TABLE IF EXISTS ${table} SYNC`).catch(() => undefined);
    }
  }

  /** `KILL QUERY` of every statement run with `queryId` (their server query ids share its prefix); takes no lane slot. */
  async kill(queryId: string | undefined): Promise<void> {
    if (!queryId || this.closed) return;
    const prefix = `${markerTag(queryId)}-`;
    try {
      const r = await this.client.exec({
        query: clusterStatement(`KILL QUERY WHERE startsWith(query_id, ${quoteString(prefix)}) ASYNC`, this.cluster),
        clickhouse_settings: { default_format: 'TabSeparated' } as ClickHouseSettings,
      });
      for await (const _ of r.stream as Readable) {
        /* drained */
      }
    } catch (err) {
      throw remoteError(err);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.running]);
    await Promise.allSettled([this.client.close(), this.userClient.close()]);
  }
}

function headerOf(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Engine statistics from X-ClickHouse-Summary (read_rows, read_bytes, written_rows, written_bytes, elapsed_ns). */
function summaryOf(headers: Record<string, string | string[] | undefined>): {
  elapsed: number;
  rowsRead: number;
  bytesRead: number;
  writtenRows: number;
  writtenBytes: number;
} {
  try {
    const s = JSON.parse(headerOf(headers, 'x-clickhouse-summary') ?? '{}') as Record<string, string>;
    const n = (v: string | undefined) => Number(v ?? 0) || 0;
    return {
      elapsed: n(s.elapsed_ns) / 1e9,
      rowsRead: n(s.read_rows),
      bytesRead: n(s.read_bytes),
      writtenRows: n(s.written_rows),
      writtenBytes: n(s.written_bytes),
    };
  } catch {
    return { elapsed: 0, rowsRead: 0, bytesRead: 0, writtenRows: 0, writtenBytes: 0 };
  }
}

/** Bytes kept back from the end of a stream, enough to hold a framed exception. */
const TAIL_BYTES = 64 * 1024;

/**
 * A response stream with one chunk held back, so an exception the server framed at its very end
 * (splitStreamException) is thrown instead of passed on as data.
 */
function framed(src: AsyncIterator<Buffer>, tag: string | undefined): AsyncIterator<Buffer> {
  if (!tag) return src;
  let held: Buffer | null = null;
  let done = false;
  return {
    async next(): Promise<IteratorResult<Buffer>> {
      while (!done) {
        const r = await src.next();
        if (r.done) {
          done = true;
          break;
        }
        const chunk = Buffer.from(r.value);
        if (held === null) {
          held = chunk;
          continue;
        }
        // Keep at least TAIL_BYTES back; pass on what precedes them.
        const all: Buffer = Buffer.concat([held, chunk]);
        if (all.length <= TAIL_BYTES) {
          held = all;
          continue;
        }
        held = all.subarray(all.length - TAIL_BYTES);
        return { done: false, value: all.subarray(0, all.length - TAIL_BYTES) };
      }
      if (held === null) return { done: true, value: undefined };
      const tail: Buffer = held;
      held = null;
      const ex = splitStreamException(tail, tag);
      if (ex) throw ex.error;
      return tail.length ? { done: false, value: tail } : { done: true, value: undefined };
    },
    async return(): Promise<IteratorResult<Buffer>> {
      done = true;
      await src.return?.();
      return { done: true, value: undefined };
    },
  };
}
