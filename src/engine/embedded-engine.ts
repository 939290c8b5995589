/**
 * The embedded engine: chDB (in-process ClickHouse) behind the Engine interface. One chDB
 * Session runs one query at a time, so statements are spread over a pool of Sessions on the
 * same data directory; a Session that saw an error is discarded (it may leak output into the
 * next result) and replaced. Only the asynchronous chDB API is used, never the blocking one.
 */
import { Session } from 'chdb';
import fs from 'node:fs';
import { Engine, EngineError, InsertOptions, QueryOptions, QueryResult } from './engine.js';

export class EmbeddedEngine implements Engine {
  private readonly idle: Session[] = [];
  private readonly waiters: Array<(s: Session) => void> = [];
  private created = 0;
  private closed = false;
  private busy = 0;
  private drainWaiters: Array<() => void> = [];

  constructor(
    private readonly dir: string,
    private readonly size: number,
  ) {
    fs.mkdirSync(dir, { recursive: true });
  }

  private newSession(): Session {
    return new Session(this.dir);
  }

  private async acquire(): Promise<Session> {
    if (this.closed) throw new EngineError(0, 'ENGINE_CLOSED', 'The engine is shutting down');
    const s = this.idle.pop();
    if (s) return s;
    if (this.created < this.size) {
      this.created++;
      return this.newSession();
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private release(s: Session, dirty: boolean): void {
    let session = s;
    if (dirty) {
      try {
        s.close();
      } catch {
        /* a broken session is dropped either way */
      }
      session = this.newSession();
    }
    const w = this.waiters.shift();
    if (w) w(session);
    else this.idle.push(session);
  }

  private async withSession<T>(fn: (s: Session) => Promise<T>): Promise<T> {
    const s = await this.acquire();
    this.busy++;
    let dirty = false;
    try {
      return await fn(s);
    } catch (err) {
      dirty = true;
      throw EngineError.from(err);
    } finally {
      this.busy--;
      this.release(s, dirty);
      if (this.busy === 0) for (const d of this.drainWaiters.splice(0)) d();
    }
  }

  async query(sql: string, opts: QueryOptions = {}): Promise<QueryResult> {
    return this.withSession(async (s) => {
      const r = await s.queryAsync(sql, { format: opts.format ?? 'TabSeparated', signal: opts.signal });
      const b = r.bytes();
      return {
        bytes: Buffer.from(b.buffer, b.byteOffset, b.byteLength),
        elapsed: r.elapsed,
        rowsRead: r.rowsRead,
        bytesRead: r.bytesRead,
      };
    });
  }

  async exec(sql: string): Promise<void> {
    await this.query(sql);
  }

  async rows<T = Record<string, unknown>>(sql: string): Promise<T[]> {
    const r = await this.query(sql, { format: 'JSONEachRow' });
    const text = r.bytes.toString('utf8');
    const out: T[] = [];
    for (const line of text.split('\n')) if (line) out.push(JSON.parse(line) as T);
    return out;
  }

  async insert(opts: InsertOptions): Promise<void> {
    await this.withSession(async (s) => {
      const rawFormats = new Set(['JSONEachRow', 'JSONCompactEachRow', 'CSV', 'CSVWithNames', 'TSV', 'TabSeparated', 'TSVWithNames', 'TabSeparatedWithNames']);
      if (rawFormats.has(opts.format)) {
        await s.insert({
          table: opts.table,
          values: opts.data,
          format: opts.format as 'JSONEachRow',
          columns: opts.columns,
          settings: opts.settings,
        });
        return;
      }
      // Formats chDB's raw insert does not take (e.g. LineAsString) go inline after the query.
      const cols = opts.columns ? ` (${opts.columns.join(', ')})` : '';
      const settings = opts.settings && Object.keys(opts.settings).length
        ? ' SETTINGS ' + Object.entries(opts.settings).map(([k, v]) => `${k}=${typeof v === 'string' ? `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'` : Number(v)}`).join(', ')
        : '';
      const data = typeof opts.data === 'string' ? opts.data : opts.data.toString('utf8');
      await s.queryAsync(`INSERT INTO ${opts.table}${cols}${settings} FORMAT ${opts.format}\n${data}`);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.busy > 0) await new Promise<void>((r) => this.drainWaiters.push(r));
    for (const s of this.idle.splice(0)) s.close();
  }
}
