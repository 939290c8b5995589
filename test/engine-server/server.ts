/**
 * A ClickHouse-compatible HTTP test server backed by chDB (the same ClickHouse as the embedded
 * engine), for running Pipit's remote engine where no ClickHouse server can be installed. It speaks
 * the part of ClickHouse's HTTP interface `@clickhouse/client` uses: the query in the URL (`query=`,
 * the body then being an INSERT's data) or in the body; `database`, `query_id`, `default_format`,
 * `param_<name>` (bound values) and any other URL parameter as a setting; gzip request bodies
 * (Content-Encoding) and gzip responses (`enable_http_compression=1` + Accept-Encoding);
 * X-ClickHouse-Summary / -Query-Id / -Format / -Exception-Code / -Exception-Tag headers, errors as
 * `Code: N. DB::Exception: ...` bodies, an error in the middle of a stream framed as ClickHouse 25.11+
 * does; `KILL QUERY ... WHERE <condition on query_id>` over the queries it runs; `/ping`.
 * For tests only: no users, no quotas, no TLS. Anything Pipit relies on must also hold on a real server.
 */
import { Session } from 'chdb';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import { headerLength, streamFraming } from '../../src/engine/embedded-engine.js';

/** URL parameters that are not settings. */
const RESERVED = new Set([
  'query',
  'database',
  'query_id',
  'default_format',
  'session_id',
  'session_timeout',
  'session_check',
  'compress',
  'decompress',
  'enable_http_compression',
  'user',
  'password',
  'quota_key',
  'buffer_size',
  'wait_end_of_query',
  'role',
]);

/** HTTP statuses ClickHouse answers for some error codes (others: 500). */
const HTTP_STATUS: Record<number, number> = {
  62: 400,
  27: 400,
  26: 400,
  6: 400,
  53: 400,
  60: 404,
  81: 404,
  46: 404,
  164: 403,
  497: 403,
  516: 401,
  394: 500,
  159: 500,
};

interface Running {
  abort: AbortController;
  marker: string;
}

export interface EngineTestServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** chDB streams only SELECTs (not DESCRIBE, SHOW, EXPLAIN): those are answered whole. */
const isStreamable = (sql: string) => /^\s*(?:\/\*[\s\S]*?\*\/\s*)*(SELECT|WITH|\()/i.test(sql);
const isRead = (sql: string) => /^\s*(?:\/\*[\s\S]*?\*\/\s*)*(SELECT|WITH|SHOW|DESCRIBE|DESC|EXPLAIN|EXISTS|\()/i.test(sql);

class HttpError extends Error {
  constructor(
    readonly code: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

/** `Code: N. DB::Exception: ...` and N from a chDB error (or anything thrown). */
function errorText(err: unknown): { code: number; text: string } {
  if (err instanceof HttpError) return { code: err.code, text: `Code: ${err.code}. DB::Exception: ${err.message}. (${err.type}) (version 26.7.2.1)` };
  const msg = err instanceof Error ? err.message : String(err);
  const field = (err as { clickhouseCode?: number } | null)?.clickhouseCode;
  const m = /Code: (\d+)\./.exec(msg);
  const code = typeof field === 'number' ? field : m ? Number(m[1]) : 1001;
  return { code, text: /^Code: \d+\./.test(msg.trim()) ? msg.trim() : `Code: ${code}. DB::Exception: ${msg.trim()}. (STD_EXCEPTION)` };
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const enc = (req.headers['content-encoding'] ?? '').toLowerCase();
  const src: NodeJS.ReadableStream = enc === 'gzip' ? req.pipe(zlib.createGunzip()) : enc === 'deflate' ? req.pipe(zlib.createInflate()) : req;
  const chunks: Buffer[] = [];
  for await (const c of src) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

/** Literal for a SET statement. */
const settingLiteral = (v: string) => (/^-?\d+(\.\d+)?$/.test(v) ? v : `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`);

export async function startEngineTestServer(opts: { port: number; host?: string; data: string }): Promise<EngineTestServer> {
  const data = path.resolve(opts.data);
  fs.mkdirSync(path.join(data, 'tmp'), { recursive: true });
  // The first Session starts the engine on the directory; it also answers KILL QUERY.
  const control = new Session(data);
  let controlChain: Promise<unknown> = Promise.resolve();
  const onControl = <T>(fn: (s: Session) => Promise<T>): Promise<T> => {
    const run = controlChain.then(() => fn(control));
    controlChain = run.catch(() => undefined);
    return run;
  };
  const running = new Map<string, Running>();

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (!res.headersSent) {
        res.statusCode = 500;
        res.end(String(err));
      } else res.destroy();
    });
  });

  async function kill(where: string): Promise<string[]> {
    const ids = [...running.keys()];
    if (!ids.length) return [];
    const list = ids.map((id) => `'${id.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`).join(', ');
    const r = await onControl((s) => s.queryAsync(`SELECT query_id FROM (SELECT arrayJoin([${list}]) AS query_id) WHERE ${where}`, { format: 'TSV' }));
    const matched = r.text().split('\n').filter(Boolean);
    for (const id of matched) {
      const q = running.get(id);
      if (!q) continue;
      q.abort.abort();
      await onControl((s) => s.queryAsync(`KILL QUERY WHERE query LIKE '%${q.marker}%' AND query NOT ILIKE '%KILL QUERY%' ASYNC`)).catch(() => undefined);
    }
    return matched;
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/__pipit_test/running') {
      // Test only: the query ids running now (what system.processes shows on a real server).
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify([...running.keys()]));
      return;
    }
    if (url.pathname === '/ping' || (url.pathname === '/' && req.method === 'GET' && !url.searchParams.has('query'))) {
      res.end('Ok.\n');
      return;
    }
    const p = url.searchParams;
    const body = req.method === 'POST' ? await readBody(req) : Buffer.alloc(0);
    const queryId = p.get('query_id') || crypto.randomUUID();
    let format = p.get('default_format') || 'TabSeparated';
    const gzip = p.get('enable_http_compression') === '1' && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    const tag = crypto.randomBytes(8).toString('hex');
    const settings: Array<[string, string]> = [];
    const params: Record<string, string> = {};
    for (const [k, v] of p) {
      if (k.startsWith('param_')) params[k.slice(6)] = v;
      else if (!RESERVED.has(k)) settings.push([k, v]);
    }
    let sql: string;
    let insertData: Buffer | null = null;
    if (p.has('query')) {
      sql = p.get('query') ?? '';
      if (/^\s*INSERT\b[\s\S]*\bFORMAT\s+\w+\s*$/i.test(sql)) insertData = body;
      else if (body.length) sql = `${sql}\n${body.toString('utf8')}`;
    } else {
      sql = body.toString('utf8');
      const m = /^(\s*INSERT\b[\s\S]*?\bFORMAT\s+\w+)[ \t]*\r?\n?/i.exec(sql);
      if (m && sql.length > m[0].length) {
        insertData = Buffer.from(sql.slice(m[0].length));
        sql = m[1];
      }
    }
    const fmt = /\bFORMAT\s+(\w+)\s*;?\s*$/i.exec(sql);
    if (fmt && !insertData && isRead(sql)) format = fmt[1];
    const started = process.hrtime.bigint();
    const head = (status: number, extra: Record<string, string> = {}) => {
      res.statusCode = status;
      res.setHeader('X-ClickHouse-Query-Id', queryId);
      res.setHeader('X-ClickHouse-Format', format);
      res.setHeader('X-ClickHouse-Timezone', 'UTC');
      res.setHeader('X-ClickHouse-Server-Display-Name', 'pipit-engine-test-server');
      res.setHeader('X-ClickHouse-Exception-Tag', tag);
      res.setHeader('Content-Type', 'text/plain; charset=UTF-8');
      for (const [k, v] of Object.entries(extra)) res.setHeader(k, v);
      if (gzip) res.setHeader('Content-Encoding', 'gzip');
    };
    const summary = (rows = 0, bytes = 0, written = 0) =>
      JSON.stringify({
        read_rows: String(rows),
        read_bytes: String(bytes),
        written_rows: String(written),
        written_bytes: '0',
        total_rows_to_read: '0',
        result_rows: '0',
        result_bytes: '0',
        elapsed_ns: String(process.hrtime.bigint() - started),
      });
    const out = gzip ? zlib.createGzip() : null;
    if (out) out.pipe(res);
    const write = (b: Buffer | string) => (out ? out.write(b) : res.write(b));
    const end = () => (out ? out.end() : res.end());
    const fail = (err: unknown) => {
      const e = errorText(err);
      if (!res.headersSent) {
        head(HTTP_STATUS[e.code] ?? 500, { 'X-ClickHouse-Exception-Code': String(e.code) });
        write(`${e.text}\n`);
        end();
        return;
      }
      // After the first bytes: the error framed at the end of the stream, as ClickHouse 25.11+ does.
      const msg = `${e.text}\n`;
      write(`\r\n__exception__\r\n${tag}\n${msg}${Buffer.byteLength(msg)} ${tag}\r\n__exception__\r\n`);
      end();
    };

    const kq = /^\s*KILL\s+QUERY\s+(?:ON\s+CLUSTER\s+\S+\s+)?WHERE\s+([\s\S]*?)(?:\s+(?:ASYNC|SYNC|TEST))?\s*$/i.exec(sql);
    if (kq) {
      try {
        const ids = await kill(kq[1]);
        head(200, { 'X-ClickHouse-Summary': summary() });
        write(ids.map((id) => `waiting\t${id}\tdefault\t\n`).join(''));
        end();
      } catch (err) {
        fail(err);
      }
      return;
    }
    if (req.method === 'GET' && !isRead(sql)) {
      fail(
        new HttpError(
          164,
          'READONLY',
          'Cannot execute query in readonly mode. For queries over HTTP, method GET implies readonly. You should use method POST for modifying queries',
        ),
      );
      return;
    }

    const marker = `pipit_test_server:${queryId.replace(/[^0-9A-Za-z_:-]/g, '')}`;
    const abort = new AbortController();
    if (running.has(queryId)) {
      fail(new HttpError(216, 'QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING', `Query with id = ${queryId} is already running`));
      return;
    }
    running.set(queryId, { abort, marker });
    req.on('close', () => {
      // The client went away before the response ended: the query stops (cancel_http_readonly_queries_on_client_close).
      if (!res.writableEnded) abort.abort();
    });
    // A Session per request: settings are per request, and `SET readonly` can not be undone.
    const s = new Session(data);
    const tmp = insertData ? path.join(data, 'tmp', `insert-${crypto.randomUUID()}`) : null;
    try {
      const db = p.get('database');
      if (db) await s.queryAsync(`USE \`${db.replace(/`/g, '')}\``);
      const readonly = settings.find(([k]) => k === 'readonly');
      for (const [k, v] of settings) if (k !== 'readonly') await s.queryAsync(`SET ${k.replace(/[^\w]/g, '')} = ${settingLiteral(v)}`);
      if (readonly) await s.queryAsync(`SET readonly = ${Number(readonly[1])}`);
      const text = `/* ${marker} */ ${sql}`;
      const hasParams = Object.keys(params).length > 0;
      if (tmp && insertData) {
        fs.writeFileSync(tmp, insertData);
        const m = /^([\s\S]*?)\bFORMAT\s+(\w+)\s*$/i.exec(sql);
        if (!m) throw new HttpError(62, 'SYNTAX_ERROR', 'Syntax error: INSERT with data needs a FORMAT clause');
        await s.queryAsync(`/* ${marker} */ ${m[1]} FROM INFILE '${tmp}' FORMAT ${m[2]}`);
        head(200, { 'X-ClickHouse-Summary': summary() });
        end();
        return;
      }
      // Single-document formats carry statistics (rows_before_limit_at_least) that chDB's streaming
      // loses but a ClickHouse server writes: those are answered whole.
      // chDB streams each block as a whole answer (a header per block, a Parquet file per block); a
      // ClickHouse server sends one answer: formats that do not simply concatenate are answered whole,
      // and the header lines of the *WithNames formats are sent once (streamFraming, as the embedded engine).
      const framing = streamFraming(format);
      if (!isStreamable(sql) || !framing || /^(JSON|JSONCompact|JSONStrings|JSONCompactStrings|JSONColumnsWithMetadata|XML)$/i.test(format)) {
        const r = hasParams ? await s.queryBindAsync(text, params, { format }) : await s.queryAsync(text, { format });
        head(200, { 'X-ClickHouse-Summary': summary(r.rowsRead, r.bytesRead) });
        const b = r.bytes();
        if (b.length) write(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
        end();
        return;
      }
      const stream = hasParams ? s.queryStreamBind(text, params, { format, signal: abort.signal }) : s.queryStream(text, { format, signal: abort.signal });
      const it = stream[Symbol.asyncIterator]();
      try {
        // Headers go out with the first chunk, so an error before it is an HTTP error status.
        let r = await it.next();
        head(200, { 'X-ClickHouse-Summary': summary() });
        let first = true;
        while (!r.done) {
          const raw = r.value.raw();
          let chunk = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
          if (!first && framing.headerLines) {
            const skip = headerLength(chunk, framing.headerLines, framing.csv);
            chunk = skip < 0 ? Buffer.alloc(0) : chunk.subarray(skip);
          }
          first = false;
          if (chunk.length && !write(chunk)) await new Promise((ok) => (out ?? res).once('drain', ok));
          if (abort.signal.aborted) throw new HttpError(394, 'QUERY_WAS_CANCELLED', 'Query was cancelled');
          r = await it.next();
        }
        end();
      } finally {
        it.return?.().catch(() => undefined);
      }
    } catch (err) {
      fail(abort.signal.aborted && !(err instanceof HttpError) ? new HttpError(394, 'QUERY_WAS_CANCELLED', 'Query was cancelled') : err);
    } finally {
      running.delete(queryId);
      if (tmp) fs.rmSync(tmp, { force: true });
      try {
        s.close();
      } catch {
        /* dropped either way */
      }
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    port,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await controlChain;
      control.close();
    },
  };
}
