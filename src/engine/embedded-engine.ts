/**
 * The embedded engine: chDB (in-process ClickHouse) behind the Engine interface. One chDB
 * Session runs one query at a time, so statements are spread over a pool of Sessions on the
 * same data directory; a Session that saw an error is discarded (it may leak output into the
 * next result) and replaced. Only the asynchronous chDB API is used, never the blocking one.
 * Every call first takes a slot of its lane (src/engine/lanes.ts), so the engine never holds
 * more of libuv's threads than it was given; the engine's memory is capped server-wide
 * (max_server_memory_usage) and per statement (max_memory_usage).
 */
import { Session } from 'chdb';
import fs from 'node:fs';
import { markerTag, markSelect, Engine, EngineError, InsertOptions, QueryOptions, QueryResult, SelectLimits, SelectOptions, SelectResult } from './engine.js';
import { EngineLanes, type SlotKind } from './lanes.js';

/** The comment that marks a statement so it can be found (and killed) in system.processes. */
const markerOf = (queryId: string) => `/* ${markerTag(queryId)} */`;

/** Current database of user-query Sessions: always empty, so an unqualified name finds nothing. */
export const SANDBOX_DATABASE = 'pipit_sandbox';

/** Sessions on one data directory, handed out one query at a time. */
class SessionPool {
  private readonly idle: Session[] = [];
  private readonly waiters: Array<{ resolve: (s: Session) => void; reject: (e: unknown) => void }> = [];
  private created = 0;
  busy = 0;
  lastUsed = Date.now();

  constructor(
    private readonly dir: string,
    private readonly size: number,
    /** Statements run on every new Session before it is used (limits, readonly). */
    private readonly setup: readonly string[] = [],
    /** Engine arguments; the first Session on the directory starts the engine with them. */
    private readonly connectionArgs: readonly string[] = [],
  ) {}

  private async newSession(): Promise<Session> {
    const s = this.connectionArgs.length ? new Session(this.dir, { connectionArgs: [...this.connectionArgs] }) : new Session(this.dir);
    try {
      for (const stmt of this.setup) await s.queryAsync(stmt);
    } catch (err) {
      s.close();
      throw EngineError.from(err);
    }
    return s;
  }

  async acquire(): Promise<Session> {
    this.busy++;
    this.lastUsed = Date.now();
    const s = this.idle.pop();
    if (s) return s;
    if (this.created < this.size) {
      this.created++;
      try {
        return await this.newSession();
      } catch (err) {
        this.created--;
        this.busy--;
        throw err;
      }
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /**
   * Returns a Session; a dirty one (it saw an error) is closed, and replaced for a waiting caller
   * (otherwise the next acquire opens one, inside its caller's lane slot).
   */
  release(s: Session, dirty: boolean): void {
    this.busy--;
    this.lastUsed = Date.now();
    if (!dirty) return this.handOut(s);
    try {
      s.close();
    } catch {
      /* a broken session is dropped either way */
    }
    if (this.waiters.length === 0) {
      this.created--;
      return;
    }
    this.newSession().then(
      (fresh) => this.handOut(fresh),
      (err) => {
        this.created--;
        const w = this.waiters.shift();
        if (w) w.reject(err);
      },
    );
  }

  private handOut(s: Session): void {
    const w = this.waiters.shift();
    if (w) w.resolve(s);
    else this.idle.push(s);
  }

  closeIdle(): void {
    for (const s of this.idle.splice(0)) {
      this.created--;
      s.close();
    }
  }
}

/** Read-only pools of limit profiles not used for this long are closed when a new profile is needed. */
const PROFILE_IDLE_MS = 60_000;
const MAX_PROFILES = 16;

export interface EmbeddedEngineOptions {
  /** User SELECTs at once (the user lane). */
  userSlots: number;
  /** Inserts, DDL and job statements at once (the internal lane). */
  internalSlots: number;
  /** Bytes of memory the whole engine may use (max_server_memory_usage); 0 = the engine's default. */
  maxServerMemory?: number;
  /** Bytes one internal statement may use (max_memory_usage on the writable Sessions); 0 = no own limit. */
  statementMaxMemory?: number;
}

export class EmbeddedEngine implements Engine {
  private readonly pool: SessionPool;
  private readonly selectPools = new Map<string, SessionPool>();
  private readonly lanes: EngineLanes;
  private readonly connectionArgs: string[];
  private closed = false;
  private busy = 0;
  private drainWaiters: Array<() => void> = [];
  private ready: Promise<void> | undefined;

  constructor(
    private readonly dir: string,
    private readonly opts: EmbeddedEngineOptions,
  ) {
    fs.mkdirSync(dir, { recursive: true });
    this.lanes = new EngineLanes({ user: opts.userSlots, internal: opts.internalSlots });
    this.connectionArgs = opts.maxServerMemory ? [`--max_server_memory_usage=${Math.floor(opts.maxServerMemory)}`] : [];
    const setup = opts.statementMaxMemory ? [`SET max_memory_usage = ${Math.floor(opts.statementMaxMemory)}`] : [];
    this.pool = new SessionPool(dir, opts.internalSlots, setup, this.connectionArgs);
  }

  /** Slots in use per lane (for tests and metrics). */
  get laneUsage(): { user: number; internal: number } {
    return { user: this.lanes.user.busy, internal: this.lanes.internal.busy };
  }

  private async withSession<T>(fn: (s: Session) => Promise<T>, kind: SlotKind = 'statement'): Promise<T> {
    if (this.closed) throw new EngineError(0, 'ENGINE_CLOSED', 'The engine is shutting down');
    const pool = this.pool;
    const free = await this.lanes.take(kind);
    let s: Session;
    try {
      if (this.closed) throw new EngineError(0, 'ENGINE_CLOSED', 'The engine is shutting down');
      s = await pool.acquire();
    } catch (err) {
      free();
      throw err;
    }
    this.busy++;
    let dirty = false;
    try {
      return await fn(s);
    } catch (err) {
      dirty = true;
      throw EngineError.from(err);
    } finally {
      pool.release(s, dirty);
      free();
      this.done();
    }
  }

  private done(): void {
    this.busy--;
    if (this.busy === 0) for (const d of this.drainWaiters.splice(0)) d();
  }

  /** The read-only pool for a limit profile, created on first use. */
  private selectPool(limits: SelectLimits): SessionPool {
    const settings: Array<[string, number]> = [
      ['max_execution_time', limits.maxExecutionTime],
      ['max_result_bytes', limits.maxResultBytes],
      ['max_memory_usage', limits.maxMemoryUsage],
    ];
    if (limits.maxThreads !== undefined) settings.push(['max_threads', limits.maxThreads]);
    for (const [k, v] of Object.entries(limits.formatSettings ?? {})) settings.push([k, v]);
    const key = settings.map(([k, v]) => `${k}=${v}`).join(',');
    let pool = this.selectPools.get(key);
    if (!pool) {
      this.evictIdleProfiles();
      const setup = [`USE ${SANDBOX_DATABASE}`, ...settings.map(([k, v]) => `SET ${k} = ${Number(v)}`), 'SET readonly = 1'];
      // Internal work (a job checking user SQL) also runs SELECTs here, on its own lane's slots.
      pool = new SessionPool(this.dir, this.opts.userSlots + this.opts.internalSlots, setup, this.connectionArgs);
      this.selectPools.set(key, pool);
    }
    return pool;
  }

  private evictIdleProfiles(): void {
    const now = Date.now();
    for (const [key, pool] of this.selectPools) {
      if (pool.busy === 0 && (now - pool.lastUsed > PROFILE_IDLE_MS || this.selectPools.size >= MAX_PROFILES)) {
        pool.closeIdle();
        this.selectPools.delete(key);
      }
    }
  }

  /** The empty database user queries run in. */
  private async ensureSandbox(): Promise<void> {
    this.ready ??= this.exec(`CREATE DATABASE IF NOT EXISTS ${SANDBOX_DATABASE}`);
    return this.ready;
  }

  async select(sql: string, opts: SelectOptions): Promise<SelectResult> {
    if (this.closed) throw new EngineError(0, 'ENGINE_CLOSED', 'The engine is shutting down');
    await this.ensureSandbox();
    const free = await this.lanes.take('select', opts.signal);
    if (this.closed) {
      free();
      throw new EngineError(0, 'ENGINE_CLOSED', 'The engine is shutting down');
    }
    // Chosen once the slot is held: a profile pool is evicted only while none of its Sessions is out.
    const pool = this.selectPool(opts.limits);
    let session: Session;
    try {
      session = await pool.acquire();
    } catch (err) {
      free();
      throw err;
    }
    this.busy++;
    const marker = markerOf(opts.queryId);
    const ac = new AbortController();
    let finished = false;
    let dirty = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      opts.signal?.removeEventListener('abort', cancel);
      pool.release(session, dirty);
      free();
      this.done();
    };
    const cancel = () => {
      if (finished) return;
      dirty = true;
      ac.abort();
      // Between chunks the abort stops the stream; a query still computing its first chunk is
      // killed inside the engine.
      this.kill(opts.queryId).catch(() => undefined);
    };
    if (opts.signal?.aborted) cancel();
    opts.signal?.addEventListener('abort', cancel);
    let it: AsyncIterator<{ raw(): Uint8Array }>;
    let first: IteratorResult<{ raw(): Uint8Array }>;
    let stats: SelectResult['stats'];
    const hasParams = !!opts.params && Object.keys(opts.params).length > 0;
    // The engine re-formats statements with bound parameters and drops comments: such a query
    // carries its marker as a condition instead, so kill() still finds it.
    const body = hasParams && !/^\s*EXPLAIN\b/i.test(sql) ? markSelect(sql, opts.queryId) : sql;
    try {
      if (opts.buffered) {
        const text = `${marker} ${body}`;
        const r = hasParams
          ? await session.queryBindAsync(text, opts.params!, { format: opts.format, signal: ac.signal })
          : await session.queryAsync(text, { format: opts.format, signal: ac.signal });
        stats = { elapsed: r.elapsed, rowsRead: r.rowsRead, bytesRead: r.bytesRead };
        const chunks = [{ raw: () => r.bytes() }];
        it = chunks[Symbol.iterator]() as unknown as AsyncIterator<{ raw(): Uint8Array }>;
        first = await it.next();
      } else {
        const stream = hasParams
          ? session.queryStreamBind(`${marker} ${body}`, opts.params!, { format: opts.format, signal: ac.signal })
          : session.queryStream(`${marker} ${sql}`, { format: opts.format, signal: ac.signal });
        it = stream[Symbol.asyncIterator]();
        first = await it.next();
      }
    } catch (err) {
      dirty = true;
      finish();
      throw EngineError.from(err);
    }
    const toBuffer = (c: { raw(): Uint8Array }) => {
      const b = c.raw();
      return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
    };
    return {
      stats,
      cancel() {
        cancel();
        it.return?.().catch(() => undefined);
        finish();
      },
      async *[Symbol.asyncIterator]() {
        try {
          let r = first;
          while (!r.done) {
            yield toBuffer(r.value);
            r = await it.next();
          }
        } catch (err) {
          dirty = true;
          throw EngineError.from(err);
        } finally {
          if (!finished) it.return?.().catch(() => undefined);
          finish();
        }
      },
    };
  }

  async query(sql: string, opts: QueryOptions = {}): Promise<QueryResult> {
    if (opts.signal?.aborted) throw new EngineError(394, 'QUERY_WAS_CANCELLED', 'Query was cancelled');
    const isWrite = /^\s*INSERT\b/i.test(sql);
    if (isWrite) await this.enterWrite();
    // A cancel may come while the statement still waits for a Session: keep killing it until it
    // has ended, so it can not start afterwards and run on.
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      if (!opts.queryId || timer) return;
      const id = opts.queryId;
      void this.kill(id).catch(() => undefined);
      timer = setInterval(() => void this.kill(id).catch(() => undefined), 250);
    };
    opts.signal?.addEventListener('abort', onAbort);
    try {
      return await this.runQuery(opts.queryId ? `${markerOf(opts.queryId)} ${sql}` : sql, { ...opts, signal: undefined });
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      if (timer) clearInterval(timer);
      if (isWrite) this.exitWrite();
    }
  }

  private async runQuery(sql: string, opts: QueryOptions): Promise<QueryResult> {
    return this.withSession(async (s) => {
      const qo = { format: opts.format ?? 'TabSeparated', signal: opts.signal };
      const r = opts.params && Object.keys(opts.params).length ? await s.queryBindAsync(sql, opts.params, qo) : await s.queryAsync(sql, qo);
      const b = r.bytes();
      return {
        bytes: Buffer.from(b.buffer, b.byteOffset, b.byteLength),
        elapsed: r.elapsed,
        rowsRead: r.rowsRead,
        bytesRead: r.bytesRead,
      };
    });
  }

  async exec(sql: string, opts: QueryOptions = {}): Promise<void> {
    await this.query(sql, opts);
  }

  async rows<T = Record<string, unknown>>(sql: string): Promise<T[]> {
    const r = await this.query(sql, { format: 'JSONEachRow' });
    const text = r.bytes.toString('utf8');
    const out: T[] = [];
    for (const line of text.split('\n')) if (line) out.push(JSON.parse(line) as T);
    return out;
  }

  // ---- the write gate (exclusiveWrites) ----
  private writers = 0;
  private gate: Promise<void> | null = null;
  private drained: Array<() => void> = [];

  private async enterWrite(): Promise<void> {
    while (this.gate) await this.gate;
    this.writers++;
  }

  private exitWrite(): void {
    this.writers--;
    if (this.writers === 0) for (const r of this.drained.splice(0)) r();
  }

  async exclusiveWrites<T>(fn: () => Promise<T>): Promise<T> {
    while (this.gate) await this.gate;
    let release!: () => void;
    this.gate = new Promise<void>((r) => (release = r));
    try {
      if (this.writers > 0) await new Promise<void>((r) => this.drained.push(r));
      return await fn();
    } finally {
      this.gate = null;
      release();
    }
  }

  private killSession: Session | null = null;
  private killChain: Promise<unknown> = Promise.resolve();

  /**
   * Runs on a Session of its own, one kill at a time, and takes no lane slot: a kill must never
   * wait behind the statements it stops (it is quick, and the spare threads cover it).
   */
  async kill(queryId: string): Promise<void> {
    if (this.closed) return;
    const tag = markerTag(queryId);
    const run = this.killChain.then(async () => {
      const s = (this.killSession ??= this.connectionArgs.length ? new Session(this.dir, { connectionArgs: [...this.connectionArgs] }) : new Session(this.dir));
      try {
        await s.queryAsync(`KILL QUERY WHERE query LIKE '%${tag}%' AND query NOT ILIKE '%KILL QUERY%' ASYNC`);
      } catch (err) {
        this.killSession = null;
        try {
          s.close();
        } catch {
          /* dropped either way */
        }
        throw EngineError.from(err);
      }
    });
    this.killChain = run.catch(() => undefined);
    await run;
  }

  async insert(opts: InsertOptions): Promise<void> {
    await this.enterWrite();
    try {
      await this.insertNow(opts);
    } finally {
      this.exitWrite();
    }
  }

  private async insertNow(opts: InsertOptions): Promise<void> {
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
    }, 'insert');
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.busy > 0) await new Promise<void>((r) => this.drainWaiters.push(r));
    await this.killChain;
    this.killSession?.close();
    this.killSession = null;
    this.pool.closeIdle();
    for (const p of this.selectPools.values()) p.closeIdle();
  }
}
