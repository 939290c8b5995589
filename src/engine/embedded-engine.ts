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
import path from 'node:path';
import { DiskFullError, freeBytes, writeFileAtomic } from '../basics/disk.js';
import { engineError } from './engine-errors.js';
import {
  markerTag,
  markSelect,
  quoteString,
  SANDBOX_DATABASE,
  settingsList,
  type Engine,
  EngineError,
  type InsertOptions,
  type InsertSummary,
  NOTHING_WRITTEN,
  type QueryOptions,
  type QueryResult,
  type SelectLimits,
  type SelectOptions,
  type SelectResult,
} from './engine.js';
import { EngineLanes, type SlotKind } from './lanes.js';
import { selectResult, wholeResult } from './select-result.js';
import { WriteGate } from './write-gate.js';

/** The comment that marks a statement so it can be found (and killed) in system.processes. */
const markerOf = (queryId: string) => `/* ${markerTag(queryId)} */`;

/** Statements that make the engine write a metadata file (database, table, view, mutation). */
const METADATA_WRITE = /^(?:\s|\/\*[\s\S]*?\*\/)*(CREATE|ALTER|ATTACH|RENAME|EXCHANGE|DELETE|UPDATE)\b/i;
/** `CREATE DATABASE [IF NOT EXISTS] <name> ENGINE = Memory`: its tables and views are kept in memory only. */
const MEMORY_DATABASE = /^(?:\s|\/\*[\s\S]*?\*\/)*CREATE\s+DATABASE\s+(?:IF\s+NOT\s+EXISTS\s+)?([`\w]+)\s+ENGINE\s*=\s*Memory\s*$/i;
/** `CREATE ... IF NOT EXISTS <name>`: a no-op when the object exists, so not refused on a full disk. */
const CREATE_IF_NOT_EXISTS = /^(?:\s|\/\*[\s\S]*?\*\/)*CREATE\s+(DATABASE|TABLE|VIEW|MATERIALIZED\s+VIEW)\s+IF\s+NOT\s+EXISTS\s+([`\w]+)(?:\.([`\w]+))?/i;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * chDB's `queryStream` formats every block as a whole answer of its own: each chunk of a
 * `CSVWithNames` result starts with the header again, and a Parquet result is several files one
 * after the other. The Engine contract is one answer per query (as a ClickHouse server sends
 * over HTTP), so a streamed result is either a format whose blocks simply concatenate, one whose
 * header lines are dropped from every chunk but the first, or it is not streamed at all.
 */
const CONCATENATING_FORMATS = new Set(
  [
    'CSV',
    'TSV',
    'TabSeparated',
    'TSVRaw',
    'TabSeparatedRaw',
    'JSONEachRow',
    'JSONLines',
    'NDJSON',
    'JSONStringsEachRow',
    'JSONCompactEachRow',
    'JSONCompactStringsEachRow',
    'LineAsString',
    'RawBLOB',
  ].map((f) => f.toLowerCase()),
);
const HEADER_FORMAT = /^(CSV|TSV|TabSeparated|TSVRaw|TabSeparatedRaw|JSONCompactEachRow|JSONCompactStringsEachRow)(WithNames|WithNamesAndTypes)$/i;

const RAW_FORMATS = new Set(['JSONEachRow', 'JSONCompactEachRow', 'CSV', 'CSVWithNames', 'TSV', 'TabSeparated', 'TSVWithNames', 'TabSeparatedWithNames']);
type RawFormat = 'JSONEachRow' | 'JSONCompactEachRow' | 'CSV' | 'CSVWithNames' | 'TSV' | 'TabSeparated' | 'TSVWithNames' | 'TabSeparatedWithNames';
const isRawFormat = (f: string): f is RawFormat => RAW_FORMATS.has(f);

/**
 * CSV read so that each line is one field as it is: no quoting, no trimming, a delimiter (0x01)
 * that the line must not hold. LineAsString through chDB's raw insert, which does not take
 * LineAsString itself. Without parallel parsing: splitting lines is cheap and what follows runs
 * in one thread anyway, so its extra pass and threads cost more CPU than they save (measured).
 */
const LINES_AS_CSV = {
  format_csv_delimiter: '\x01',
  format_csv_allow_double_quotes: 0,
  format_csv_allow_single_quotes: 0,
  input_format_csv_trim_whitespaces: 0,
  input_format_csv_detect_header: 0,
  input_format_parallel_parsing: 0,
} as const;

/**
 * How `data` in `format` goes through chDB's raw insert (bytes handed over as they are, or as
 * `data` when given), or null when it must go inline in the query text. LineAsString goes as CSV
 * (LINES_AS_CSV) unless the data holds what CSV would read differently (the delimiter, a carriage
 * return, a line end in CSV but kept in LineAsString, a byte order mark, skipped by CSV, or `\N`,
 * read as NULL); then as TabSeparated, each line escaped byte by byte (linesAsTsv). Inline, the data
 * would be decoded as UTF-8 text and its invalid bytes altered.
 */
export function rawInsertFormat(format: string, data: Buffer): { format: RawFormat; settings: Record<string, string | number>; data?: Buffer } | null {
  if (isRawFormat(format)) return { format, settings: {} };
  if (format !== 'LineAsString') return null;
  if (data.indexOf(1) < 0 && data.indexOf(13) < 0 && data.indexOf('\\N') < 0 && !(data[0] === 0xef && data[1] === 0xbb && data[2] === 0xbf))
    return { format: 'CSV', settings: LINES_AS_CSV };
  return { format: 'TabSeparated', settings: { input_format_parallel_parsing: 0, input_format_tsv_detect_header: 0 }, data: linesAsTsv(data) };
}

/** Lines as TabSeparated rows of one column: `\`, tab and CR escaped, byte by byte (the lines need not be UTF-8). */
export function linesAsTsv(data: Buffer): Buffer {
  let extra = 0;
  for (let i = 0; i < data.length; i++) if (data[i] === 0x5c || data[i] === 9 || data[i] === 13) extra++;
  if (extra === 0) return data;
  const out = Buffer.allocUnsafe(data.length + extra);
  let o = 0;
  for (let i = 0; i < data.length; i++) {
    const b = data[i];
    if (b === 0x5c || b === 9 || b === 13) {
      out[o++] = 0x5c;
      out[o++] = b === 0x5c ? 0x5c : b === 9 ? 0x74 : 0x72;
    } else out[o++] = b;
  }
  return out;
}

/**
 * `data` without empty lines. chDB takes insert data inline after the statement (also on its raw
 * insert path), and inline data ends at an empty line: what follows would run as SQL. The formats
 * Pipit inserts carry no row in an empty line (JSON rows skip blank lines, the NDJSON stage
 * ignores blank lines, TSV segments never have one), so dropping them changes nothing else.
 */
export function withoutEmptyLines(data: Buffer): Buffer {
  if (data.indexOf('\n\n') < 0 && data[0] !== 10) return data;
  const out = Buffer.allocUnsafe(data.length);
  let n = 0;
  let start = 0;
  while (start < data.length) {
    const end = data.indexOf(10, start);
    const next = end < 0 ? data.length : end + 1;
    if (end !== start) n += data.copy(out, n, start, next);
    start = next;
  }
  return out.subarray(0, n);
}

/** How a streamed result in `format` is made one answer: `null` when it must not be streamed. */
export function streamFraming(format: string): { headerLines: number; csv: boolean } | null {
  if (CONCATENATING_FORMATS.has(format.toLowerCase())) return { headerLines: 0, csv: false };
  const m = HEADER_FORMAT.exec(format);
  if (!m) return null;
  return { headerLines: m[2].toLowerCase() === 'withnamesandtypes' ? 2 : 1, csv: m[1].toLowerCase() === 'csv' };
}

/**
 * Length of the first `lines` lines of `chunk` (CSV: a newline inside a quoted name does not end
 * a line; the other formats escape newlines), or -1 when the chunk holds fewer.
 */
export function headerLength(chunk: Buffer, lines: number, csv: boolean): number {
  let quoted = false;
  let seen = 0;
  for (let i = 0; i < chunk.length; i++) {
    const c = chunk[i];
    if (csv && c === 0x22) quoted = !quoted;
    else if (c === 0x0a && !quoted && ++seen === lines) return i + 1;
  }
  return -1;
}

/** An engine table whose metadata file a full disk had left empty or torn, moved aside at start. */
export interface LostTable {
  database: string;
  table: string;
  /** The table's UUID (its data directory `store/<uuid>`), from `data/<db>/<table>`; null when unknown. */
  uuid: string | null;
  /** Where the damaged metadata file was moved. */
  movedTo: string | null;
}

/** A metadata file the engine can load: an ATTACH statement written whole (it ends with a newline). */
function wholeMetadata(file: string): boolean {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return /^ATTACH\s/.test(text) && text.endsWith('\n');
  } catch {
    return false;
  }
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function uuidOfLink(link: string): string | null {
  try {
    const id = path.basename(fs.readlinkSync(link));
    return UUID.test(id) ? id : null;
  } catch {
    return null;
  }
}

/** Sessions on one data directory, handed out one query at a time. */
/**
 * A chDB Session on `dir`; the first one open in the process starts the engine with `connectionArgs`.
 * Closing the last open Session stops the engine: the next one starts it afresh, which loads every
 * table again and loses what Memory databases held (EmbeddedEngine keeps one open for that reason).
 */
function openSession(dir: string, connectionArgs: readonly string[]): Session {
  return connectionArgs.length ? new Session(dir, { connectionArgs: [...connectionArgs] }) : new Session(dir);
}

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
    const s = openSession(this.dir, this.connectionArgs);
    try {
      for (const stmt of this.setup) await s.queryAsync(stmt);
    } catch (err) {
      s.close();
      throw engineError(err);
    }
    return s;
  }

  /** An idle Session at once, if there is one (no promise on the common path). */
  tryAcquire(): Session | undefined {
    const s = this.idle.pop();
    if (s) {
      this.busy++;
      this.lastUsed = Date.now();
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

/** The settings a read-only Session of a limit profile is set up with. */
function profileSettings(limits: SelectLimits): Array<[string, number]> {
  const settings: Array<[string, number]> = [
    ['max_execution_time', limits.maxExecutionTime],
    ['max_result_bytes', limits.maxResultBytes],
    ['max_memory_usage', limits.maxMemoryUsage],
  ];
  if (limits.maxThreads !== undefined) settings.push(['max_threads', limits.maxThreads]);
  for (const [k, v] of Object.entries(limits.formatSettings ?? {})) settings.push([k, v]);
  return settings;
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
  /**
   * Bytes of the engine's cache of decompressed blocks (uncompressed_cache_size), used by the
   * read-only Sessions (use_uncompressed_cache); 0 or absent = no cache (chDB's default).
   */
  uncompressedCache?: number;
  /** Bytes one internal statement may use (max_memory_usage on the writable Sessions); 0 = no own limit. */
  statementMaxMemory?: number;
  /**
   * Bytes of free disk below which the engine writes nothing (inserts fail with NOT_ENOUGH_SPACE,
   * DDL is refused before it runs): on a full disk chDB answers DDL with success yet leaves an
   * empty metadata file, which stops the next start. 0 disables the reserve.
   */
  reserveBytes?: number;
}

export class EmbeddedEngine implements Engine {
  readonly sandboxDatabase = SANDBOX_DATABASE;
  readonly localFiles = true;
  readonly inProcess = true;
  private readonly pool: SessionPool;
  private readonly selectPools = new Map<string, SessionPool>();
  /** The profile key of a limits object (QueryService hands out one object for its common profile). */
  private readonly profileKeys = new WeakMap<SelectLimits, string>();
  private readonly lanes: EngineLanes;
  private readonly connectionArgs: string[];
  private closed = false;
  /** A Session that runs nothing: while it is open the engine stays up (openSession). */
  private readonly anchor: Session;
  private busy = 0;
  private drainWaiters: Array<() => void> = [];
  private ready: Promise<void> | undefined;
  private sandboxReady = false;

  private readonly reserve: number;
  /** Tables whose damaged metadata was moved aside at start, for the catalog to restore. */
  readonly lost: LostTable[] = [];
  /** What the start-up repair did, one line each (the app logs them). */
  readonly repairs: string[] = [];

  constructor(
    private readonly dir: string,
    private readonly opts: EmbeddedEngineOptions,
  ) {
    fs.mkdirSync(dir, { recursive: true });
    this.reserve = Math.max(0, Math.floor(opts.reserveBytes ?? 0));
    this.repairMetadata();
    this.lanes = new EngineLanes({ user: opts.userSlots, internal: opts.internalSlots });
    this.connectionArgs = opts.maxServerMemory ? [`--max_server_memory_usage=${Math.floor(opts.maxServerMemory)}`] : [];
    if (opts.uncompressedCache) this.connectionArgs.push(`--uncompressed_cache_size=${Math.floor(opts.uncompressedCache)}`);
    const setup = opts.statementMaxMemory ? [`SET max_memory_usage = ${Math.floor(opts.statementMaxMemory)}`] : [];
    // Inserts stop at the reserve inside the engine (also those of materialized views).
    if (this.reserve) setup.push(`SET min_free_disk_bytes_to_perform_insert = ${this.reserve}`);
    // Held open until close(): the pools close Sessions that saw an error, and closing the last
    // one would stop the engine mid-run (every table loaded again, the ingest stages' Memory
    // database emptied under the inserts that use it).
    this.anchor = openSession(dir, this.connectionArgs);
    this.pool = new SessionPool(dir, opts.internalSlots, setup, this.connectionArgs);
    // Made now, while there is room, so reads never depend on a later metadata write.
    void this.ensureSandbox().catch(() => undefined);
  }

  /** Memory databases this process created (or found): `CREATE ... IF NOT EXISTS` of their objects writes no metadata file. */
  private readonly memoryDatabases = new Set<string>();

  /**
   * Start-up repair of what a full disk can leave behind: metadata files that are empty or torn
   * (chDB reports success for DDL whose metadata write failed) stop the engine from opening.
   * - A database file (`metadata/<db>.sql`) is rewritten from its directory link
   *   (`metadata/<db>` -> `store/.../<uuid>`): an Atomic database's file holds nothing but that UUID.
   * - A table or view file (`metadata/<db>/<t>.sql`) can not be rebuilt from the engine: it is
   *   moved to `damaged-metadata/` and listed in `lost` with the UUID of its data, so the catalog
   *   can attach the data again under its recorded definition (DatasourceService.restore).
   * - A file of a table already dropped (`metadata_dropped/`) is moved aside.
   */
  private repairMetadata(): void {
    const meta = path.join(this.dir, 'metadata');
    if (!isDir(meta)) return;
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const aside = (file: string, db: string): string | null => {
      const target = path.join(this.dir, 'damaged-metadata', stamp, db, path.basename(file));
      try {
        fs.mkdirSync(path.dirname(target), { recursive: true });
        fs.renameSync(file, target);
        return target;
      } catch {
        // No room even for a directory: an empty file holds nothing worth keeping.
        if (fs.statSync(file).size === 0) {
          fs.unlinkSync(file);
          return null;
        }
        throw new Error(`the engine metadata file ${file} is damaged and could not be moved aside; free some disk space and start again`);
      }
    };
    for (const name of fs.readdirSync(meta)) {
      if (!name.endsWith('.sql')) continue;
      const file = path.join(meta, name);
      const db = name.slice(0, -4);
      if (wholeMetadata(file)) continue;
      const uuid = uuidOfLink(path.join(meta, db));
      if (uuid) {
        writeFileAtomic(file, `ATTACH DATABASE _ UUID '${uuid}'\nENGINE = Atomic\n`, 0o644);
        this.repairs.push(`database ${db}: damaged metadata file rewritten from its directory (UUID ${uuid})`);
      } else {
        const to = aside(file, db);
        this.repairs.push(`database ${db}: damaged metadata file moved to ${to ?? '(removed, it was empty)'}; the database is created again`);
      }
    }
    for (const db of fs.readdirSync(meta)) {
      const dbDir = path.join(meta, db);
      if (db.endsWith('.sql') || !isDir(dbDir)) continue;
      for (const name of fs.readdirSync(dbDir)) {
        if (!name.endsWith('.sql')) continue;
        const file = path.join(dbDir, name);
        if (wholeMetadata(file)) continue;
        const table = name.slice(0, -4);
        const uuid = uuidOfLink(path.join(this.dir, 'data', db, table));
        const movedTo = aside(file, db);
        this.lost.push({ database: db, table, uuid, movedTo });
        this.repairs.push(`table ${db}.${table}: damaged metadata file moved to ${movedTo ?? '(removed, it was empty)'}${uuid ? ` (data UUID ${uuid})` : ''}`);
      }
    }
    const dropped = path.join(this.dir, 'metadata_dropped');
    if (isDir(dropped)) {
      for (const name of fs.readdirSync(dropped)) {
        const file = path.join(dropped, name);
        if (!name.endsWith('.sql') || wholeMetadata(file)) continue;
        const movedTo = aside(file, 'metadata_dropped');
        this.repairs.push(`dropped table ${name}: damaged metadata file moved to ${movedTo ?? '(removed, it was empty)'}`);
      }
    }
  }

  /** The UUID of a table's data directory (`data/<db>/<table>` links to `store/.../<uuid>`), null when none. */
  dataUuid(database: string, table: string): string | null {
    return uuidOfLink(path.join(this.dir, 'data', database, table));
  }

  /**
   * Refuses a metadata-writing statement while free space is under the reserve (before it runs:
   * the engine would answer success and leave an empty file). `true`: skip it, it is a
   * `CREATE ... IF NOT EXISTS` of an object that exists.
   */
  private async guardMetadataWrite(sql: string): Promise<boolean> {
    if (!this.reserve || !METADATA_WRITE.test(sql)) return false;
    const m = CREATE_IF_NOT_EXISTS.exec(sql);
    const unq = (x: string) => x.replace(/`/g, '');
    const memory = MEMORY_DATABASE.exec(sql);
    if (memory) this.memoryDatabases.add(unq(memory[1]));
    // An object of a Memory database has no metadata file.
    if (m?.[3] && this.memoryDatabases.has(unq(m[2]))) return false;
    if (freeBytes(this.dir) >= this.reserve) return false;
    if (m) {
      const exists =
        m[1].toUpperCase() === 'DATABASE'
          ? await this.rows(`SELECT 1 FROM system.databases WHERE name = '${unq(m[2])}'`)
          : m[3]
            ? await this.rows(`SELECT 1 FROM system.tables WHERE database = '${unq(m[2])}' AND name = '${unq(m[3])}'`)
            : [];
      if (exists.length) return true;
    }
    throw new DiskFullError(undefined, `free disk space under the reserve of ${this.reserve} bytes: refused ${sql.slice(0, 80)}`);
  }

  /**
   * After a metadata-writing statement: a metadata file of a database it names that is now empty
   * or torn means the disk filled up meanwhile. Answered as a full disk, so the caller undoes
   * what it created; what stays damaged is repaired at the next start.
   */
  private checkMetadataWritten(sql: string, since: number): void {
    if (!this.reserve || !METADATA_WRITE.test(sql)) return;
    const meta = path.join(this.dir, 'metadata');
    const damaged: string[] = [];
    const check = (file: string) => {
      try {
        const st = fs.statSync(file);
        if (st.size === 0 || (st.mtimeMs >= since - 1000 && !wholeMetadata(file))) damaged.push(file);
      } catch {
        /* removed meanwhile */
      }
    };
    let names: string[];
    try {
      names = fs.readdirSync(meta);
    } catch {
      return;
    }
    for (const name of names) {
      if (name.endsWith('.sql')) {
        if (sql.includes(name.slice(0, -4))) check(path.join(meta, name));
        continue;
      }
      if (!sql.includes(name)) continue;
      const dbDir = path.join(meta, name);
      try {
        for (const f of fs.readdirSync(dbDir)) if (f.endsWith('.sql')) check(path.join(dbDir, f));
      } catch {
        /* not a directory */
      }
    }
    if (damaged.length) throw new DiskFullError(undefined, `the engine could not write ${damaged.join(', ')}`);
  }

  /** Slots in use per lane (for tests and metrics). */
  get laneUsage(): { user: number; internal: number } {
    return { user: this.lanes.user.busy, internal: this.lanes.internal.busy };
  }

  /** Engine calls running and waiting per lane (the metrics). */
  get laneStats(): { busy: Record<string, number>; queued: Record<string, number> } {
    return {
      busy: { user: this.lanes.user.busy, internal: this.lanes.internal.busy },
      queued: { user: this.lanes.user.queued, internal: this.lanes.internal.queued },
    };
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
      throw engineError(err);
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
    let key = this.profileKeys.get(limits);
    if (key === undefined) {
      key = profileSettings(limits)
        .map(([k, v]) => `${k}=${v}`)
        .join(',');
      this.profileKeys.set(limits, key);
    }
    let pool = this.selectPools.get(key);
    if (!pool) {
      this.evictIdleProfiles();
      const setup = [`USE ${SANDBOX_DATABASE}`, ...profileSettings(limits).map(([k, v]) => `SET ${k} = ${Number(v)}`)];
      if (this.opts.uncompressedCache) setup.push('SET use_uncompressed_cache = 1');
      setup.push('SET readonly = 1');
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
    // A failure (a full disk) is not remembered: the next query tries again.
    this.ready ??= this.exec(`CREATE DATABASE IF NOT EXISTS ${SANDBOX_DATABASE}`).then(
      () => {
        this.sandboxReady = true;
      },
      (err) => {
        this.ready = undefined;
        throw err;
      },
    );
    return this.ready;
  }

  async select(sql: string, opts: SelectOptions): Promise<SelectResult> {
    if (this.closed) throw new EngineError(0, 'ENGINE_CLOSED', 'The engine is shutting down');
    if (!this.sandboxReady) await this.ensureSandbox();
    const free = await this.lanes.take('select', opts.signal);
    if (this.closed) {
      free();
      throw new EngineError(0, 'ENGINE_CLOSED', 'The engine is shutting down');
    }
    // Chosen once the slot is held: a profile pool is evicted only while none of its Sessions is out.
    const pool = this.selectPool(opts.limits);
    let session = pool.tryAcquire();
    if (!session) {
      try {
        session = await pool.acquire();
      } catch (err) {
        free();
        throw err;
      }
    }
    this.busy++;
    const marker = markerOf(opts.queryId);
    // Whole answers need no framing (what a stream's later chunks repeat).
    const framing = opts.buffered ? null : streamFraming(opts.format);
    const whole = opts.buffered || !framing;
    // Streams only: chDB stops a stream between chunks when this aborts.
    const ac = whole ? undefined : new AbortController();
    let finished = false;
    let dirty = false;
    let killing: NodeJS.Timeout | undefined;
    const finish = () => {
      if (finished) return;
      finished = true;
      if (killing) clearInterval(killing);
      opts.signal?.removeEventListener('abort', cancel);
      pool.release(session, dirty);
      free();
      this.done();
    };
    const kill = () => void this.kill(opts.queryId).catch(() => undefined);
    const cancel = () => {
      if (finished) return;
      dirty = true;
      ac?.abort();
      // Between chunks the abort stops the stream; a query still computing (a whole answer, or a
      // stream's first chunk) is killed inside the engine, again until it has ended: it may not
      // be in the engine's process list yet.
      kill();
      killing ??= setInterval(kill, 250);
    };
    if (opts.signal?.aborted) {
      // Nothing started yet: the Session is clean.
      finish();
      throw new EngineError(394, 'QUERY_WAS_CANCELLED', 'Query was cancelled');
    }
    opts.signal?.addEventListener('abort', cancel);
    let it: AsyncIterator<{ raw(): Uint8Array }>;
    let first: IteratorResult<{ raw(): Uint8Array }>;
    const hasParams = !!opts.params && Object.keys(opts.params).length > 0;
    // The engine re-formats statements with bound parameters and drops comments: such a query
    // carries its marker as a condition instead, so kill() still finds it.
    const body = hasParams && !/^\s*EXPLAIN\b/i.test(sql) ? markSelect(sql, opts.queryId) : sql;
    try {
      if (!ac) {
        // No AbortSignal: chDB can not interrupt a whole-answer query (an abort only stops waiting
        // for it while it runs on), and costs a listener per call. The kill by marker stops it, and
        // the Session and slot stay held until it has really ended.
        const text = `${marker} ${body}`;
        const r = hasParams
          ? await session.queryBindAsync(text, opts.params!, { format: opts.format })
          : await session.queryAsync(text, { format: opts.format });
        const b = r.bytes();
        finish();
        return wholeResult({ elapsed: r.elapsed, rowsRead: r.rowsRead, bytesRead: r.bytesRead }, Buffer.from(b.buffer, b.byteOffset, b.byteLength));
      }
      const stream = hasParams
        ? session.queryStreamBind(`${marker} ${body}`, opts.params!, { format: opts.format, signal: ac.signal })
        : session.queryStream(`${marker} ${sql}`, { format: opts.format, signal: ac.signal });
      it = stream[Symbol.asyncIterator]();
      first = await it.next();
    } catch (err) {
      dirty = true;
      finish();
      throw engineError(err);
    }
    // The header of the answer, from its first chunk; the same bytes begin every later chunk.
    let header: Buffer | undefined;
    return selectResult({
      stats: undefined,
      it,
      first,
      bytes: (c) => {
        const b = c.raw();
        let chunk = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
        if (framing?.headerLines && chunk.length > 0) {
          if (!header) {
            const n = headerLength(chunk, framing.headerLines, framing.csv);
            header = Buffer.from(n < 0 ? chunk : chunk.subarray(0, n));
          } else if (chunk.length >= header.length && header.equals(chunk.subarray(0, header.length))) {
            chunk = chunk.subarray(header.length);
          }
        }
        return chunk;
      },
      cancel,
      finish,
      finished: () => finished,
      error: (err) => {
        dirty = true;
        return engineError(err);
      },
    });
  }

  async query(sql: string, opts: QueryOptions = {}): Promise<QueryResult> {
    if (opts.signal?.aborted) throw new EngineError(394, 'QUERY_WAS_CANCELLED', 'Query was cancelled');
    return /^\s*INSERT\b/i.test(sql) ? this.gate.shared(() => this.queryNow(sql, opts), opts.ingest ? 'insert' : 'statement') : this.queryNow(sql, opts);
  }

  private async queryNow(sql: string, opts: QueryOptions): Promise<QueryResult> {
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
      if (await this.guardMetadataWrite(sql)) return { bytes: Buffer.alloc(0), elapsed: 0, rowsRead: 0, bytesRead: 0 };
      const started = Date.now();
      const r = await this.runQuery(opts.queryId ? `${markerOf(opts.queryId)} ${sql}` : sql, { ...opts, signal: undefined });
      this.checkMetadataWritten(sql, started);
      return r;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      if (timer) clearInterval(timer);
    }
  }

  private async runQuery(sql: string, opts: QueryOptions): Promise<QueryResult> {
    return this.withSession(
      async (s) => {
        const qo = { format: opts.format ?? 'TabSeparated', signal: opts.signal };
        const r = opts.params && Object.keys(opts.params).length ? await s.queryBindAsync(sql, opts.params, qo) : await s.queryAsync(sql, qo);
        const b = r.bytes();
        return {
          bytes: Buffer.from(b.buffer, b.byteOffset, b.byteLength),
          elapsed: r.elapsed,
          rowsRead: r.rowsRead,
          bytesRead: r.bytesRead,
        };
      },
      opts.ingest ? 'insert' : 'statement',
    );
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

  readonly gate = new WriteGate();

  exclusiveWrites<T>(fn: () => Promise<T>): Promise<T> {
    return this.gate.exclusive(fn);
  }

  /** The engine reads this host's files directly. */
  withFile<T>(file: string, format: 'Parquet', fn: (from: string) => Promise<T>): Promise<T> {
    return fn(`file(${quoteString(file)}, ${format})`);
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
      const s = (this.killSession ??= openSession(this.dir, this.connectionArgs));
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

  insert(opts: InsertOptions): Promise<InsertSummary> {
    return this.gate.shared(() => this.insertNow(opts));
  }

  private async insertNow(opts: InsertOptions): Promise<InsertSummary> {
    const data = withoutEmptyLines(typeof opts.data === 'string' ? Buffer.from(opts.data) : opts.data);
    if (data.length === 0) return NOTHING_WRITTEN;
    return this.withSession(async (s) => {
      const raw = rawInsertFormat(opts.format, data);
      if (raw) {
        // chDB's raw insert: the bytes go to the engine as they are (no string round trip).
        const r = await s.insert({
          table: opts.table,
          values: raw.data ?? data,
          format: raw.format,
          columns: opts.columns,
          settings: { ...opts.settings, ...raw.settings },
        });
        return { writtenRows: r.rowsWritten, writtenBytes: r.bytesWritten, elapsed: r.elapsed };
      }
      // Formats chDB's raw insert does not take go inline after the query.
      const cols = opts.columns ? ` (${opts.columns.join(', ')})` : '';
      const settings = opts.settings && Object.keys(opts.settings).length ? ` SETTINGS ${settingsList(opts.settings)}` : '';
      // This path reports no written rows or bytes.
      const r = await s.queryAsync(`INSERT INTO ${opts.table}${cols}${settings} FORMAT ${opts.format}\n${data.toString('utf8')}`);
      return { writtenRows: 0, writtenBytes: 0, elapsed: r.elapsed };
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
    this.anchor.close();
  }
}
