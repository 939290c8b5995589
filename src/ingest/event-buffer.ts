/**
 * The Events API write path: a write-ahead log with group commit. Each request's rows are
 * appended to the data source's open segment file and acknowledged once the write returns (a 202
 * survives kill -9); one flusher per data source inserts whole segments into the engine, so many
 * small requests become one insert. Segments carry a dedup token, so replaying one after a crash
 * writes its rows once. Rejects with 503 when a data source's backlog is too large.
 *
 * Files under `wal/` (`<workspace>__<datasource>__<segment>[__<request>].<ext>`):
 * - `.tsv` — a lane segment: one row per line, `line <separator> request_id`, appended in the order
 *   they are acknowledged; the separator is 0x01 after a line as sent (a plain part, see `rowsOf`)
 *   or a tab after a TSV-escaped line (segments of earlier versions hold only these);
 * - `.ndjson` — one large request's body, written as `.partial` and renamed once complete, so a
 *   body torn by a crash before its acknowledgement is never replayed;
 * - `.orphan` — a segment whose data source no longer exists (set aside at start).
 * Every `.tsv`/`.ndjson` file present at start holds acknowledged rows not known to be in the
 * engine, and is replayed. A segment that can not be inserted (a full disk, the engine refusing)
 * stays on disk and is retried while the server runs, with a growing delay, until it is in; one
 * still there at shutdown is replayed at the next start.
 */
import { isUtf8 } from 'node:buffer';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { newUlid as ulid } from '../basics/ids.js';
import { type Engine, type InsertSummary, quoteString, settingsList } from '../engine/engine.js';
import { PipitError } from '../basics/errors.js';
import { isDiskFull } from '../basics/disk.js';
import { insertSettings } from './ingest-service.js';

/**
 * Called with the requests whose rows one insert wrote, their line count, bytes and seconds taken,
 * and the bytes the engine reported written (InsertSummary).
 */
export type InsertedListener = (
  target: EventTarget,
  requestIds: readonly string[],
  rows: number,
  bytes: number,
  elapsedSec: number,
  writtenBytes: number,
) => void;

/** Lines in a buffer (newline-terminated rows). */
function lineCount(data: Buffer): number {
  let n = 0;
  for (let i = data.indexOf(10); i >= 0; i = data.indexOf(10, i + 1)) n++;
  return data.length && data[data.length - 1] !== 10 ? n + 1 : n;
}

/** Where a segment goes: the NDJSON stage of one data source. */
export interface EventTarget {
  workspaceId: string;
  /** The workspace's database (where the data source's table and quarantine are). */
  database: string;
  datasourceId: string;
  /** Qualified NDJSON stage table. */
  stage: string;
}

interface Waiter {
  requestId: string;
  resolve: (flushedAt: number) => void;
  reject: (err: unknown) => void;
}

/**
 * One request's rows as the lane logs and inserts them (`rowsOf`). `plain`: each line as sent, then
 * 0x01 and the request id (read by the engine as CSV split at 0x01, LINES_WITH_ID: no escaping, no
 * decoding); otherwise each line TSV-escaped, then a tab and the request id.
 */
export interface Rows {
  bytes: Buffer;
  plain: boolean;
}

interface Part extends Rows {
  requestId: string;
  /** Where the rows begin in the segment file. */
  offset: number;
}

/**
 * CSV settings that read a plain row `line 0x01 request_id` as it is: no quoting, no trimming, no
 * header detection (the line holds no 0x01 and no CR, and is not `\N`, which CSV reads as NULL).
 */
const LINES_WITH_ID = {
  format_csv_delimiter: '\x01',
  format_csv_allow_double_quotes: 0,
  format_csv_allow_single_quotes: 0,
  input_format_csv_trim_whitespaces: 0,
  input_format_csv_detect_header: 0,
} as const;

interface Segment {
  id: string;
  file: string;
  /** With fsync: the log directory's flush after the file was made (its name survives a power loss). */
  named: Promise<void> | null;
  /** The segment file, open for appending; each request's rows are written to it synchronously (append). */
  fd: number;
  /** The rows in file order. */
  parts: Part[];
  bytes: number;
  /** Bytes of the file known to be whole (a failed write is cut back to this). */
  written: number;
  /** Disk flushes in flight (with fsync): the segment is sealed once they are done. */
  syncs: Set<Promise<unknown>>;
  /**
   * Rows in the file of requests answered 503 after their write (their disk flush failed): never
   * inserted. `unclean` while some are still in the file as written (they could not be blanked),
   * so a segment set aside for the background retries is first rewritten without them.
   */
  refused: Part[];
  unclean: boolean;
  /**
   * The file's state is in doubt (a disk flush failed, or a failed write could not be cut back):
   * it takes no more rows; it is flushed at once and the lane's next request opens a new segment.
   */
  sealed: boolean;
  /**
   * A disk flush of the file failed. The kernel reports a writeback error once per descriptor, and
   * all requests share this one: a flush that succeeds after that (one in flight alongside the
   * failed one, whose pages the failed writeback held) proves nothing, so its rows are refused too.
   */
  syncFailed: boolean;
  waiters: Waiter[];
  target: EventTarget;
}

interface Lane {
  current: Segment | null;
  flushing: boolean;
  backlog: number;
  /** When the last flush started (performance.now()), and the timer holding back the next one. */
  lastFlush: number;
  timer: NodeJS.Timeout | null;
  /** When the timer fires (performance.now()). */
  timerDue: number;
}

const newLane = (): Lane => ({ current: null, flushing: false, backlog: 0, lastFlush: -Infinity, timer: null, timerDue: 0 });

/**
 * Least time between the starts of two flushes of a lane, unless its segment already holds
 * FLUSH_NOW_BYTES: every insert has a fixed cost in the engine (~20 ms: planning the stage and its
 * views, a part written, then merged), so under a steady stream of small requests flushing back to
 * back spent most of the engine's time on that cost. An idle lane still flushes at once. A segment
 * with a `wait=true` request in it keeps the short spacing (its caller is waiting for the insert);
 * one holding only acknowledged (202) rows, durable in the log already, waits longer and so
 * amortises the fixed cost over more rows (at 50 ms, 20 flushes a second took 0.3–0.6 of a core).
 */
const FLUSH_SPACING_MS = 50;
const ACKNOWLEDGED_SPACING_MS = 250;
const FLUSH_NOW_BYTES = 4 * 1024 * 1024;
/**
 * The same for a segment holding only acknowledged rows: its 250 ms decide, up to ~16 MB. An insert
 * into the stage costs ~20–25 ms of engine CPU whatever its size plus ~5 ms per MB (100 rows of
 * the bench's events: 21 ms; 14,000 rows, 4 MB: 46 ms; 56,000 rows, 16 MB: 103 ms), so at 1,500
 * 100-row requests a second 4 MB flushes (11 a second) spent ~0.3 ms of engine CPU per request,
 * 250 ms ones (~10 MB, 4 a second) ~0.2 (docs/benchmarks.md, "Session 8").
 */
const ACKNOWLEDGED_FLUSH_NOW_BYTES = 16 * 1024 * 1024;

/** Largest backlog (bytes not yet in the engine) per data source before new requests get a 503. */
const MAX_BACKLOG = 512 * 1024 * 1024;
/** Largest total of large bodies being inserted at once (all data sources) before new ones get a 503. */
const MAX_LARGE_IN_FLIGHT = 512 * 1024 * 1024;
/** Engine insert attempts per segment before it is set aside for the background retries. */
const INSERT_ATTEMPTS = 3;
/** Delay before the first background retry of a set-aside segment; doubles up to the maximum. */
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 10_000;

/** A segment file whose insert failed: acknowledged rows on disk, retried until they are in. */
/** A (workspace, data source)'s NDJSON stage, made when missing (again with `remake`); null when the data source is gone. */
export type StageResolver = (workspaceId: string, datasourceId: string, remake?: boolean) => Promise<string | null>;

interface Stranded {
  file: string;
  /** Lane key (`<workspace>__<datasource>`), for its backlog. */
  key: string;
  stage: string;
  segId: string;
  /** `.ndjson` bodies are inserted as lines tagged with their request id. */
  requestId: string | null;
  bytes: number;
  /**
   * The rows to keep when the file still holds rows of requests answered 503 (refused after their
   * write, and neither rewritten out nor blanked yet): the file is rewritten with these before it
   * is inserted, never inserted as it is.
   */
  keep?: Buffer[];
}

const UNAVAILABLE = 'Service temporarily unavailable, no data ingested, please retry again';

/** Writes the whole buffer (a single write may be short). */
async function writeFully(fh: fs.promises.FileHandle, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off);
    off += bytesWritten;
  }
}

/**
 * Flushes a directory's entries (a file made, renamed or removed in it) to disk. A file system that
 * can not flush a directory (EINVAL, as some network and FUSE ones answer) is taken as having
 * nothing to flush, as PostgreSQL does.
 */
async function syncDir(dir: string): Promise<void> {
  const fh = await fs.promises.open(dir, 'r');
  try {
    await fh.sync();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
  } finally {
    await fh.close();
  }
}

/**
 * Settings of every insert of a log segment (first attempt, retries, replay), under the segment's
 * dedup token. One block per insert: the engine deduplicates a retried insert block by block (the
 * token and the block's number), so the insert from memory (without refused rows) and a replay of
 * the file (where they are blank lines) must cut the same rows into the same blocks; at the
 * default of ~1M rows per block a larger segment could be cut differently and a block skipped.
 */
function walSettings(importId: string, segmentId: string): Record<string, string | number> {
  // max_insert_block_size: data handed over; max_block_size: a file read by the engine (FROM INFILE,
  // whose reader cut 65,409-row chunks: a segment inserted from its file and replayed from memory
  // under the same token was written twice).
  return { ...insertSettings(importId, `wal-${segmentId}`), max_insert_block_size: 2 ** 40, max_block_size: 2 ** 40 };
}

/** Looked up at each call (not bound once), so a fault test can make the disk refuse a flush. */
const fdatasync = (fd: number) => new Promise<void>((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
const closeFd = promisify(fs.close);

/** Runs `fn` up to INSERT_ATTEMPTS times with a short backoff; the insert carries a dedup token, so a retry after a partial success writes the rest once. */
async function withRetries<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= INSERT_ATTEMPTS) throw err;
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
}

const laneKey = (t: EventTarget) => `${t.workspaceId}__${t.datasourceId}`;

/**
 * What a `wait=true` append resolves to when its rows are durable but not yet in the engine (a
 * failed flush that could not take them out of the log): the caller answers 202, not 200.
 */
export const ACCEPTED = -1;

/**
 * Where the request id of the row in `data[start, end)` begins, less one: the row's last tab or 0x01,
 * whichever comes later (a plain line may hold tabs, a TSV-escaped one 0x01, the id neither); -1 when none.
 */
function separatorOf(data: Buffer, start: number, end: number): number {
  // Backwards within the row only: the id is short, so this stops within ~30 bytes (a search of
  // the whole buffer for a byte the file may not hold made a replay quadratic in its size).
  for (let i = end - 1; i >= start; i--) if (data[i] === 9 || data[i] === 1) return i;
  return -1;
}

/** Rows with the line text turned into spaces (same bytes, a blank line the stage skips). */
function blankLines(rows: Buffer): Buffer {
  const out = Buffer.from(rows);
  let start = 0;
  while (start < out.length) {
    let end = out.indexOf(10, start);
    if (end < 0) end = out.length;
    const sep = separatorOf(out, start, end);
    if (sep >= 0) out.fill(32, start, sep);
    start = end + 1;
  }
  return out;
}

/** Plain rows (`line 0x01 id`) as TSV rows (`escaped line \t id`), byte by byte (the lines need not be UTF-8). */
function plainToTsv(rows: Buffer): Buffer {
  let extra = 0;
  for (let i = 0; i < rows.length; i++) if (rows[i] === 0x5c || rows[i] === 9) extra++;
  const out = Buffer.allocUnsafe(rows.length + extra);
  let o = 0;
  for (let i = 0; i < rows.length; i++) {
    const b = rows[i];
    if (b === 0x5c || b === 9) {
      out[o++] = 0x5c;
      out[o++] = b === 9 ? 0x74 : 0x5c;
    } else out[o++] = b === 1 ? 9 : b;
  }
  return out;
}

/**
 * A segment's rows in one format for one insert: as they are when all are plain or all TSV; else
 * the plain ones turned into TSV (a segment whose requests needed both, or a file replayed).
 */
function oneFormat(parts: readonly Rows[]): Rows {
  if (parts.every((p) => p.plain)) return { bytes: Buffer.concat(parts.map((p) => p.bytes)), plain: true };
  return { bytes: Buffer.concat(parts.map((p) => (p.plain ? plainToTsv(p.bytes) : p.bytes))), plain: false };
}

/** A lane segment file's whole rows, each row as a part of its own format (a replay). */
export function rowsOfFile(data: Buffer): Rows {
  // Runs of rows of one format are one part each: the rows are contiguous, so a run is a slice.
  const parts: Rows[] = [];
  let runStart = 0;
  let runPlain: boolean | null = null;
  let start = 0;
  while (start < data.length) {
    let end = data.indexOf(10, start);
    if (end < 0) end = data.length;
    const sep = separatorOf(data, start, end);
    const plain = sep >= 0 && data[sep] === 1;
    if (runPlain !== null && plain !== runPlain) {
      parts.push({ bytes: data.subarray(runStart, start), plain: runPlain });
      runStart = start;
    }
    runPlain = plain;
    start = end + 1;
  }
  if (runPlain !== null) parts.push({ bytes: data.subarray(runStart), plain: runPlain });
  if (parts.length === 0) return { bytes: data, plain: false };
  return parts.length === 1 ? parts[0] : oneFormat(parts);
}

export class EventBuffer {
  private readonly lanes = new Map<string, Lane>();
  private closing = false;
  private readonly idleWaiters: Array<() => void> = [];

  constructor(
    private readonly dir: string,
    private readonly engine: Engine,
    private readonly fsync: boolean,
    private readonly log: (msg: string, extra?: Record<string, unknown>) => void,
    /** Told after each insert of acknowledged rows (the service data sources' `append-hfi`); must not throw. */
    private readonly onInserted: InsertedListener = () => undefined,
  ) {
    fs.mkdirSync(dir, { recursive: true });
  }

  /** Bytes acknowledged and not yet in the engine, all data sources (a metric). */
  get backlogBytes(): number {
    let n = this.largeBytes;
    for (const l of this.lanes.values()) n += l.backlog;
    return n;
  }

  /**
   * A request's rows for the stage's (__line, __import_id) columns. Plain (each line as sent, 0x01,
   * the request id) unless a line could not be read back that way: a body holding 0x01, a CR or
   * `\N`, or starting with a byte order mark is TSV (toTsv). Plain rows cost a copy per line; TSV
   * ones the body decoded as text, escaped and encoded again (~2–3× the CPU on the bench's
   * 100-row requests, whose JSON-string column holds many backslashes).
   */
  static rowsOf(body: Buffer, requestId: string): Rows {
    if (body.indexOf(1) >= 0 || body.indexOf(13) >= 0 || hasBackslashN(body) || (body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf))
      return { bytes: EventBuffer.toTsv(body, requestId), plain: false };
    const suffix = Buffer.from(`\x01${requestId}\n`, 'latin1');
    // One scan for the line ends, then one copy per line (a view over the body's bytes, no
    // argument checks): ~4× less CPU than Buffer.copy per line after a second scan.
    const ends: number[] = [];
    for (let i = body.indexOf(10); i >= 0; i = body.indexOf(10, i + 1)) ends.push(i);
    const unended = body.length > 0 && body[body.length - 1] !== 10;
    if (unended) ends.push(body.length);
    const out = Buffer.allocUnsafe(body.length + (unended ? 1 : 0) + ends.length * (suffix.length - 1));
    const src = new Uint8Array(body.buffer, body.byteOffset, body.length);
    let o = 0;
    let start = 0;
    for (const end of ends) {
      out.set(src.subarray(start, end), o);
      o += end - start;
      out.set(suffix, o);
      o += suffix.length;
      start = end + 1;
    }
    return { bytes: out, plain: true };
  }

  /**
   * TSV rows `<line>\t<requestId>` for the stage's (__line, __import_id) columns. The line's bytes
   * reach the stage as they came: a body that is not valid UTF-8 is escaped byte by byte (decoding
   * it would turn its bad bytes into U+FFFD and accept a line that the stage quarantines when the
   * same bytes come in a large body, which goes in as bytes).
   */
  static toTsv(body: Buffer, requestId: string): Buffer {
    if (!isUtf8(body)) return toTsvBytes(body, requestId);
    let text = body.toString('utf8');
    if (text.includes('\\')) text = text.replace(/\\/g, '\\\\');
    if (text.includes('\t')) text = text.replace(/\t/g, '\\t');
    if (text.includes('\r')) text = text.replace(/\r/g, '\\r');
    if (!text.endsWith('\n')) text += '\n';
    return Buffer.from(text.replace(/\n/g, `\t${requestId}\n`));
  }

  /**
   * Appends one request's rows (already TSV) and resolves once they are on disk. With `wait`,
   * resolves only after they are in the engine, with the time of the flush.
   */
  async append(target: EventTarget, rows: Rows, requestId: string, wait: boolean): Promise<number | null> {
    const data = rows.bytes;
    if (this.closing) throw new PipitError('unavailable', UNAVAILABLE);
    const key = laneKey(target);
    let lane = this.lanes.get(key);
    if (!lane) this.lanes.set(key, (lane = newLane()));
    if (lane.backlog > MAX_BACKLOG) throw new PipitError('unavailable', UNAVAILABLE);
    let seg = lane.current;
    if (seg?.sealed) {
      // Its file takes no more rows: flushed now (unless a flush runs), and this request opens a new one.
      this.schedule(key);
      seg = lane.current;
      if (seg) throw new PipitError('unavailable', UNAVAILABLE);
    }
    if (!seg) {
      const id = ulid();
      const file = path.join(this.dir, `${key}__${id}.tsv`);
      let fd: number;
      try {
        fd = fs.openSync(file, 'a');
      } catch (err) {
        this.log('event write failed', { segment: file, error: String(err) });
        throw new PipitError('unavailable', UNAVAILABLE);
      }
      const named = this.fsync ? syncDir(this.dir) : null;
      // Awaited by each request's flush; never an unhandled rejection when no request gets that far.
      named?.catch(() => undefined);
      seg = {
        id,
        file,
        named,
        fd,
        parts: [],
        bytes: 0,
        written: 0,
        syncs: new Set(),
        refused: [],
        unclean: false,
        sealed: false,
        syncFailed: false,
        waiters: [],
        target,
      };
      lane.current = seg;
    }
    const s = seg;
    // Written now, synchronously, before anything else can append: the file holds the parts in the
    // order of `parts` (a replay inserts exactly what the first attempt did), and a torn write (the
    // process killed mid-write, before this request's acknowledgement) can only be the file's tail.
    // A small request's rows go to the page cache in ~20 µs of the main thread's CPU; the same
    // write through the thread pool cost ~80–100 µs of CPU (the hand-offs to a pool thread and
    // back), most of the log's cost per request. Bodies of LARGE_BODY and more have their own
    // segment, written asynchronously (appendLarge).
    let done = 0;
    try {
      while (done < data.length) done += fs.writeSync(s.fd, data, done, data.length - done);
    } catch (err) {
      if (done > 0) this.cutBack(s, { requestId, bytes: data.subarray(0, done), plain: rows.plain, offset: s.written });
      this.log('event write failed', { segment: s.file, error: String(err) });
      this.schedule(key);
      throw new PipitError('unavailable', UNAVAILABLE);
    }
    const part: Part = { requestId, bytes: data, plain: rows.plain, offset: s.written };
    s.written += data.length;
    s.parts.push(part);
    s.bytes += data.length;
    lane.backlog += data.length;
    let waiter: Waiter | null = null;
    let flushed: Promise<number> | null = null;
    if (wait) {
      flushed = new Promise<number>((resolve, reject) => s.waiters.push((waiter = { requestId, resolve, reject })));
      // Never an unhandled rejection, even when this request gives up before its flush.
      flushed.catch(() => undefined);
    }
    if (this.fsync) {
      // Concurrent requests' disk flushes overlap (the kernel writes what is dirty once). A failed
      // one is handled inside the promise the segment's flush waits for: the rows are taken out
      // before the segment can be inserted or set aside.
      const sync = fdatasync(s.fd)
        .then(() => {
          if (s.syncFailed) throw new Error('an earlier disk flush of this segment failed');
          return s.named;
        })
        .then(
          () => true,
          async (err) => {
            s.syncFailed = true;
            this.log('event write failed', { segment: s.file, error: String(err) });
            await this.refuse(s, part, waiter);
            return false;
          },
        );
      s.syncs.add(sync);
      let synced: boolean;
      try {
        synced = await sync;
      } finally {
        s.syncs.delete(sync);
        this.schedule(key);
      }
      if (!synced) throw new PipitError('unavailable', UNAVAILABLE);
    } else this.schedule(key);
    return flushed ? await flushed : null;
  }

  /**
   * A failed write left `written` (the first bytes of a request's rows) at the file's end: cut back,
   * so the next request's rows do not follow a torn line. When the file can not be cut, its whole
   * rows are blanked in place (a replay skips them; the torn last line it leaves out) and the
   * segment takes no more rows.
   */
  private cutBack(s: Segment, torn: Part): void {
    try {
      fs.ftruncateSync(s.fd, s.written);
      return;
    } catch (err) {
      this.log('event write could not be cut back; the segment takes no more rows', { segment: s.file, error: String(err) });
    }
    s.sealed = true;
    try {
      const fd = fs.openSync(s.file, 'r+');
      try {
        const blank = blankLines(torn.bytes);
        let off = 0;
        while (off < blank.length) off += fs.writeSync(fd, blank, off, blank.length - off, s.written + off);
        if (this.fsync) fs.fdatasyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    } catch (err) {
      // As after a crash mid-write, the replay leaves out the torn last line; whole rows of the
      // refused request before it would be replayed (the flush from memory inserts only acknowledged
      // ones). Set aside, the segment is rewritten without them first (dropParts).
      s.refused.push(torn);
      s.unclean = true;
      this.log('event write could not be blanked; a replay of this segment may hold its whole rows', { segment: s.file, error: String(err) });
    }
  }

  /**
   * A request's rows were written but their disk flush failed: it is answered 503, so its rows
   * must never be inserted. They leave the segment's parts and are blanked in the file (with a
   * flush of their own); if that fails too, the segment is rewritten without them before it is
   * ever set aside for the background retries. The segment takes no more rows: after a failed
   * flush the file's state is in doubt, and a later flush of the same descriptor may not report it.
   */
  private async refuse(s: Segment, part: Part, waiter: Waiter | null): Promise<void> {
    s.sealed = true;
    const i = s.parts.indexOf(part);
    if (i >= 0) {
      s.parts.splice(i, 1);
      s.bytes -= part.bytes.length;
      const lane = this.lanes.get(laneKey(s.target));
      if (lane) lane.backlog -= part.bytes.length;
    }
    if (waiter) s.waiters.splice(s.waiters.indexOf(waiter), 1);
    s.refused.push(part);
    try {
      await this.blankInPlace(s.file, [part]);
    } catch (err) {
      s.unclean = true;
      this.log('event rows of a refused request could not be blanked; the segment is rewritten before any retry', { segment: s.file, error: String(err) });
    }
  }

  /** Blanks parts' rows in place (their line text turned into spaces, byte for byte: no new space) and flushes the file. */
  private async blankInPlace(file: string, parts: readonly Part[]): Promise<void> {
    const fh = await fs.promises.open(file, 'r+');
    try {
      for (const p of parts) await fh.write(blankLines(p.bytes), 0, p.bytes.length, p.offset);
      if (this.fsync) await fh.datasync();
    } finally {
      await fh.close();
    }
  }

  /**
   * A large request (already a big batch) skips the TSV rewrite and the lane: its NDJSON bytes
   * are logged as their own segment, tagged with the request id, and inserted as lines.
   * `bodyFree` is called once `body` is read no more (its insert settled, or nothing was taken):
   * the caller may then reuse its memory, also after a 202 answered before the insert.
   */
  async appendLarge(target: EventTarget, body: Buffer, requestId: string, wait: boolean, bodyFree: () => void = () => undefined): Promise<void> {
    if (this.closing || this.largeBytes > MAX_LARGE_IN_FLIGHT) {
      bodyFree();
      throw new PipitError('unavailable', UNAVAILABLE);
    }
    const key = laneKey(target);
    const segId = ulid();
    const file = path.join(this.dir, `${key}__${segId}__${requestId}.ndjson`);
    // Written under a temporary name and renamed once whole: a body cut short by a crash before
    // the acknowledgement is never replayed (its torn last line would land in quarantine).
    const partial = file + '.partial';
    this.largeInFlight++;
    this.largeBytes += body.length;
    const release = () => {
      this.largeInFlight--;
      this.largeBytes -= body.length;
      this.maybeIdle();
    };
    let renamed = false;
    try {
      const fh = await fs.promises.open(partial, 'w');
      try {
        await writeFully(fh, body);
        if (this.fsync) await fh.datasync();
      } finally {
        await fh.close();
      }
      await fs.promises.rename(partial, file);
      renamed = true;
      // The new name survives a power loss only once the directory is flushed (a replay would
      // otherwise find the `.partial`, remove it, and lose an acknowledged body).
      if (this.fsync) await syncDir(this.dir);
    } catch (err) {
      release();
      bodyFree();
      // Refused (503): its file must not be replayed at the next start, under either name.
      await fs.promises.unlink(renamed ? file : partial).catch(() => undefined);
      this.log('event write failed', { segment: file, error: String(err) });
      throw new PipitError('unavailable', UNAVAILABLE);
    }
    const started = performance.now();
    const done = withRetries(() => this.insertLines(target.stage, body, requestId, segId, file))
      .then((summary) => {
        this.onInserted(target, [requestId], lineCount(body), body.length, (performance.now() - started) / 1000, summary.writtenBytes);
        return fs.promises.unlink(file);
      })
      .catch(async (err) => {
        this.log('event flush failed', { segment: file, error: String(err) });
        // A waiting caller is told nothing was ingested, so the segment must not be replayed
        // later; an acknowledged (202) one stays on disk and is retried in the background.
        if (wait) await fs.promises.unlink(file).catch(() => undefined);
        else this.strand({ file, key, stage: target.stage, segId, requestId, bytes: body.length });
        throw new PipitError('unavailable', UNAVAILABLE);
      })
      .finally(() => {
        release();
        bodyFree();
      });
    if (wait) await done;
    else done.catch(() => undefined);
  }

  private largeInFlight = 0;
  private largeBytes = 0;

  /** A large body's lines, read by the engine from its log file `file` when it can (fromFile), else handed over as bytes. */
  private async insertLines(stage: string, data: Buffer | null, requestId: string, segmentId: string, file: string): Promise<InsertSummary> {
    const settings = walSettings(requestId, segmentId);
    if (this.engine.localFiles && globFree(file)) return this.fromFile(stage, file, 'LineAsString', ['__line'], settings);
    return this.engine.insert({ table: stage, format: 'LineAsString', columns: ['__line'], data: data ?? (await fs.promises.readFile(file)), settings });
  }

  /**
   * An insert whose data the engine reads from a log file of this host (`INSERT ... FROM INFILE`):
   * the rows are on disk already, and chDB spends ~3.5 ns of CPU per byte handed to it in an insert
   * (~27 ms per 8 MB, about what it then spends parsing JSON and writing the part: docs/benchmarks.md,
   * "Session 8"), against ~0.5 ns reading the page cache. The engine reports the rows and bytes it
   * read (the stage's block), not what the views wrote; the file is one block, as every WAL insert (walSettings).
   */
  private async fromFile(
    stage: string,
    file: string,
    format: 'LineAsString' | 'CSV' | 'TabSeparated',
    columns: readonly string[],
    settings: Record<string, string | number>,
  ): Promise<InsertSummary> {
    const r = await this.engine.query(
      `INSERT INTO ${stage} (${columns.join(', ')}) FROM INFILE ${quoteString(path.resolve(file))} SETTINGS ${settingsList(settings)} FORMAT ${format}`,
      { ingest: true },
    );
    return { writtenRows: r.rowsRead, writtenBytes: r.bytesRead, elapsed: r.elapsed };
  }

  private schedule(key: string): void {
    const lane = this.lanes.get(key);
    if (!lane || lane.flushing || !lane.current) return;
    const now = performance.now();
    const waiting = lane.current.waiters.length > 0;
    const spacing = waiting ? FLUSH_SPACING_MS : ACKNOWLEDGED_SPACING_MS;
    const wait = lane.lastFlush + spacing - now;
    if (wait > 0 && lane.current.bytes < (waiting ? FLUSH_NOW_BYTES : ACKNOWLEDGED_FLUSH_NOW_BYTES) && !lane.current.sealed && !this.closing) {
      // A waiting request arriving in a segment timed for acknowledged rows brings the flush forward.
      if (lane.timer && lane.timerDue <= now + wait) return;
      if (lane.timer) clearTimeout(lane.timer);
      lane.timerDue = now + wait;
      lane.timer = setTimeout(() => {
        lane.timer = null;
        this.schedule(key);
      }, wait);
      return;
    }
    if (lane.timer) clearTimeout(lane.timer);
    lane.timer = null;
    lane.lastFlush = performance.now();
    lane.flushing = true;
    const seg = lane.current;
    lane.current = null;
    void this.flush(seg)
      .catch((err) => this.log('event flush failed', { segment: seg.file, error: String(err) }))
      .finally(() => {
        lane.flushing = false;
        lane.backlog -= seg.bytes;
        if (lane.current) this.schedule(key);
        else this.maybeIdle();
      });
  }

  private maybeIdle(): void {
    if (this.largeInFlight > 0) return;
    for (const l of this.lanes.values()) if (l.flushing || l.current) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private async flush(seg: Segment): Promise<void> {
    // Let the disk flushes of rows in this segment finish, then seal it.
    while (seg.syncs.size) await Promise.allSettled([...seg.syncs]);
    await closeFd(seg.fd).catch(() => undefined);
    if (seg.parts.length === 0) {
      await fs.promises.unlink(seg.file).catch(() => undefined);
      return;
    }
    // The engine reads the segment's file when it holds exactly the parts, in one format; else its rows are handed over.
    const asIs = this.readableAsIs(seg);
    const rows = asIs ? null : oneFormat(seg.parts);
    const started = performance.now();
    try {
      const summary = await withRetries(() =>
        rows ? this.insert(seg.target.stage, rows, seg.id) : this.insertSegmentFile(seg.target.stage, seg.file, seg.parts[0].plain, seg.id),
      );
      this.onInserted(
        seg.target,
        seg.parts.map((p) => p.requestId),
        rows ? lineCount(rows.bytes) : seg.parts.reduce((n, p) => n + lineCount(p.bytes), 0),
        rows ? rows.bytes.length : seg.written,
        (performance.now() - started) / 1000,
        summary.writtenBytes,
      );
    } catch (err) {
      // The waiting callers are told nothing was ingested: drop their rows from the segment. The
      // acknowledged (202) rows stay on disk and are retried in the background.
      const waiting = new Set(seg.waiters.map((w) => w.requestId));
      const kept = seg.parts.filter((p) => !waiting.has(p.requestId));
      const dropped = await this.dropParts(seg, waiting);
      if (dropped) {
        const unavailable = new PipitError('unavailable', UNAVAILABLE);
        for (const w of seg.waiters) w.reject(unavailable);
      } else {
        // Their rows could not be taken out of the file, so they will be inserted with the rest:
        // the callers are told their rows were accepted (202), never "nothing ingested".
        for (const w of seg.waiters) w.resolve(ACCEPTED);
      }
      const keptBytes = dropped ? kept.reduce((n, p) => n + p.bytes.length, 0) : seg.bytes;
      // Refused rows still in the file as written: it is rewritten before any retry inserts it.
      const keep = !dropped && seg.unclean ? seg.parts.map((p) => p.bytes) : undefined;
      if (keptBytes > 0)
        this.strand({ file: seg.file, key: laneKey(seg.target), stage: seg.target.stage, segId: seg.id, requestId: null, bytes: keptBytes, keep });
      throw err;
    }
    // The rows are in: the waiting callers are answered whatever happens to the file (a failed
    // unlink left them waiting forever); one left behind is replayed at the next start, where the
    // segment's dedup token keeps its rows from being written twice.
    await fs.promises
      .unlink(seg.file)
      .catch((err) => this.log('event segment could not be removed after its insert', { segment: seg.file, error: String(err) }));
    const at = Date.now();
    for (const w of seg.waiters) w.resolve(at);
  }

  /**
   * Takes the rows of `requests` (and of requests refused after their write and not yet blanked)
   * out of a segment file. A new file is written and renamed over it; when the disk has no room
   * for that, the rows are blanked in place (their line text turned into spaces, byte for byte,
   * which needs no new space): the stage skips blank lines. False when neither worked (the rows stay).
   */
  private async dropParts(seg: Segment, requests: ReadonlySet<string>): Promise<boolean> {
    const out = seg.parts.filter((p) => requests.has(p.requestId));
    if (seg.unclean) out.push(...seg.refused);
    if (out.length === 0) return true;
    try {
      await this.rewrite(
        seg.file,
        seg.parts.filter((p) => !requests.has(p.requestId)).map((p) => p.bytes),
      );
      return true;
    } catch (err) {
      if (!isDiskFull(err)) this.log('event segment rewrite failed', { segment: seg.file, error: String(err) });
    }
    try {
      await this.blankInPlace(seg.file, out);
      return true;
    } catch (err) {
      this.log('event segment rows could not be dropped; they will be inserted', { segment: seg.file, error: String(err) });
      return false;
    }
  }

  /** Replaces a segment file's content atomically (or removes it when nothing is left). */
  private async rewrite(file: string, parts: Buffer[]): Promise<void> {
    if (parts.length === 0) await fs.promises.unlink(file);
    else {
      const tmp = file + '.partial';
      const fh = await fs.promises.open(tmp, 'w');
      try {
        await writeFully(fh, Buffer.concat(parts));
        await fh.datasync();
      } finally {
        await fh.close();
      }
      await fs.promises.rename(tmp, file);
    }
    // With fsync, the old file must not come back after a power loss with the rows taken out.
    if (this.fsync) await syncDir(path.dirname(file));
  }

  /**
   * True when the engine may read the segment's file as it is: it reads this host's files, and the
   * file holds exactly the segment's parts, back to back, all of one format (no rows of refused
   * requests, blanked or not, no torn tail: such a segment is sealed).
   */
  private readableAsIs(seg: Segment): boolean {
    if (!this.engine.localFiles || !globFree(seg.file) || seg.sealed || seg.refused.length > 0 || seg.parts.length === 0) return false;
    let at = 0;
    for (const p of seg.parts) {
      if (p.offset !== at || p.plain !== seg.parts[0].plain) return false;
      at += p.bytes.length;
    }
    if (at !== seg.written) return false;
    try {
      return fs.statSync(seg.file).size === at;
    } catch {
      return false;
    }
  }

  /** A lane segment's file read by the engine (fromFile): plain rows as CSV split at 0x01, else TSV. */
  private insertSegmentFile(stage: string, file: string, plain: boolean, segmentId: string): Promise<InsertSummary> {
    const settings = walSettings(segmentId, segmentId);
    return this.fromFile(stage, file, plain ? 'CSV' : 'TabSeparated', ['__line', '__import_id'], plain ? { ...settings, ...LINES_WITH_ID } : settings);
  }

  private insert(stage: string, rows: Rows, segmentId: string): Promise<InsertSummary> {
    // Without parallel parsing (insertSettings): engine CPU of a 3.9 MB segment ~180 vs ~90 ms, of a 3,500-row one ~59 vs ~51.
    const settings = walSettings(segmentId, segmentId);
    return this.engine.insert({
      table: stage,
      format: rows.plain ? 'CSV' : 'TabSeparated',
      columns: ['__line', '__import_id'],
      data: rows.bytes,
      settings: rows.plain ? { ...settings, ...LINES_WITH_ID } : settings,
    });
  }

  /**
   * Replays segments left by a previous process. `resolve` maps a (workspace, data source) to its
   * stage, or null when the data source is gone (its segments are then set aside). A segment that
   * fails to insert is logged and left for the next start; it does not stop this one. `resolve` is
   * kept for the background retries: with `remake` it makes the stage again (found missing).
   */
  async recover(resolve: StageResolver): Promise<number> {
    this.resolveStage = resolve;
    let replayed = 0;
    const names = await fs.promises.readdir(this.dir);
    // Bodies whose write never completed were never acknowledged.
    for (const f of names.filter((n) => n.endsWith('.partial'))) await fs.promises.unlink(path.join(this.dir, f)).catch(() => undefined);
    const segments = names
      .filter((f) => f.endsWith('.tsv') || f.endsWith('.ndjson'))
      .map((f) => {
        const ext = f.endsWith('.tsv') ? 'tsv' : 'ndjson';
        const [ws, ds, segId, requestId] = f.slice(0, -(ext.length + 1)).split('__');
        return { f, ws, ds, segId, requestId, ext };
      })
      .filter((x) => x.ws && x.ds && x.segId)
      .sort((a, b) => a.segId.localeCompare(b.segId));
    // Once the disk is found full, the remaining segments go straight to the background retries
    // (trying each in turn would hold the start for as long).
    let diskFull = false;
    for (const { f, ws, ds, segId, requestId, ext } of segments) {
      const file = path.join(this.dir, f);
      let entry: Stranded;
      try {
        const stage = await resolve(ws, ds);
        if (!stage) {
          await fs.promises.rename(file, file + '.orphan');
          continue;
        }
        entry = { file, key: `${ws}__${ds}`, stage, segId, requestId: ext === 'ndjson' ? (requestId ?? segId) : null, bytes: 0 };
      } catch (err) {
        this.log('event segment replay failed; kept for the next start', { segment: file, error: String(err) });
        continue;
      }
      if (!diskFull) {
        try {
          await withRetries(() => this.insertFile(entry));
          await fs.promises.unlink(file);
          replayed++;
          continue;
        } catch (err) {
          diskFull = isDiskFull(err);
          this.log('event segment replay failed; retrying in the background', { segment: file, error: String(err) });
        }
      }
      // Kept on disk and retried while the server runs (the start goes on).
      entry.bytes = await fs.promises.stat(file).then(
        (st) => st.size,
        () => 0,
      );
      this.strand(entry);
    }
    return replayed;
  }

  /** Inserts a segment file as it is on disk (a torn last line of a lane segment is left out). */
  private async insertFile(e: Stranded): Promise<void> {
    if (e.requestId !== null) {
      await this.insertLines(e.stage, null, e.requestId, e.segId, e.file);
      return;
    }
    const data = await fs.promises.readFile(e.file);
    // A torn last line (the process died mid-write, before the acknowledgement) is dropped.
    const end = data.lastIndexOf(10) + 1;
    if (end > 0) await this.insert(e.stage, rowsOfFile(data.subarray(0, end)), e.segId);
  }

  // ---- background retries of set-aside segments ----
  private readonly stranded = new Map<string, Stranded>();
  private resolveStage: StageResolver | null = null;

  /** The lane's stage made again, null when its data source is gone, undefined when that is not known now. */
  private async stageOf(key: string): Promise<string | null | undefined> {
    const [ws, ds] = key.split('__');
    if (!this.resolveStage) return undefined;
    try {
      return await this.resolveStage(ws, ds, true);
    } catch {
      return undefined;
    }
  }
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelay = RETRY_MIN_MS;
  private retryPass: Promise<void> | null = null;

  /** Segments whose rows are acknowledged but not yet in the engine, retried in the background. */
  get pendingSegments(): number {
    return this.stranded.size;
  }

  /** Sets a segment aside for the background retries; its bytes stay in its lane's backlog. */
  private strand(e: Stranded): void {
    if (this.stranded.has(e.file)) return;
    this.stranded.set(e.file, e);
    let lane = this.lanes.get(e.key);
    if (!lane) this.lanes.set(e.key, (lane = newLane()));
    lane.backlog += e.bytes;
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.closing || this.retryTimer || this.retryPass || this.stranded.size === 0) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.retryPass = this.retryStranded().finally(() => {
        this.retryPass = null;
        this.scheduleRetry();
      });
    }, this.retryDelay);
    // Never what keeps the process alive.
    this.retryTimer.unref();
  }

  /**
   * One pass over the set-aside segments, oldest first. The first failure ends the pass (the
   * cause, a full disk, holds for the others too) and doubles the delay; a success resets it.
   */
  private async retryStranded(): Promise<void> {
    const entries = [...this.stranded.values()].sort((a, b) => a.segId.localeCompare(b.segId));
    for (const e of entries) {
      try {
        if (e.keep) {
          await this.rewrite(e.file, e.keep);
          e.keep = undefined;
        }
        await this.insertFile(e);
        await fs.promises.unlink(e.file).catch(() => undefined);
      } catch (err) {
        const ch = (err as { chCode?: number }).chCode;
        // A missing table: its data source was dropped meanwhile (set aside, like such a segment at
        // start), or only its stage (or the stages' database) is missing: made again, and the
        // segment retried. Another missing table (a view's target) sets it aside too.
        const message = String((err as Error).message);
        const missing = (name: string) => message.includes(`${name} does not exist`) || message.includes(`${name} doesn't exist`);
        const stageMissing = (ch === 60 && missing(e.stage)) || (ch === 81 && missing(e.stage.split('.')[0]));
        const stage = stageMissing ? await this.stageOf(e.key) : ch === 60 || ch === 81 ? null : undefined;
        if (stage === null) await fs.promises.rename(e.file, e.file + '.orphan').catch(() => undefined);
        else if (stage !== undefined) {
          e.stage = stage;
          this.retryDelay = Math.min(RETRY_MAX_MS, this.retryDelay * 2);
          this.log('event segment retry found its stage missing; made it again, will retry', { segment: e.file, retryInMs: this.retryDelay });
          return;
        } else if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && !(ch === 107 && !fs.existsSync(e.file))) {
          // (A file gone meanwhile: ENOENT when read here, FILE_DOESNT_EXIST when the engine reads it.)
          this.retryDelay = Math.min(RETRY_MAX_MS, this.retryDelay * 2);
          this.log('event segment retry failed; will retry', { segment: e.file, error: String(err), retryInMs: this.retryDelay });
          return;
        }
      }
      this.stranded.delete(e.file);
      const lane = this.lanes.get(e.key);
      if (lane) lane.backlog -= e.bytes;
      this.retryDelay = RETRY_MIN_MS;
    }
  }

  /** Stops accepting and waits until every buffered row is in the engine. */
  async close(): Promise<void> {
    this.closing = true;
    for (const key of this.lanes.keys()) this.schedule(key);
    await new Promise<void>((resolve) => {
      this.idleWaiters.push(resolve);
      this.maybeIdle();
    });
    // One last try for the set-aside segments; what still fails is replayed at the next start.
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    await this.retryPass;
    if (this.stranded.size) await this.retryStranded();
  }
}

/**
 * True when `FROM INFILE` reads the file at this path as just that file: it expands globs (`*`, `?`,
 * `{a,b}`, `{1..3}`), so a data directory named with such characters keeps the in-memory path.
 */
function globFree(file: string): boolean {
  return !/[*?{}[\]\\]/.test(path.resolve(file));
}

/** True when `body` holds `\N` (a backslash, then N): sought by its rarer byte, N (a search for the pair cost ~14 µs per 25 KB). */
function hasBackslashN(body: Buffer): boolean {
  for (let i = body.indexOf(0x4e, 1); i >= 0; i = body.indexOf(0x4e, i + 1)) if (body[i - 1] === 0x5c) return true;
  return false;
}

/** EventBuffer.toTsv for bytes that are not UTF-8 text: the same escapes, byte by byte. */
function toTsvBytes(body: Buffer, requestId: string): Buffer {
  const suffix = Buffer.from(`\t${requestId}\n`);
  let lines = 1;
  for (let i = body.indexOf(10); i !== -1; i = body.indexOf(10, i + 1)) lines++;
  const out = Buffer.allocUnsafe(body.length * 2 + lines * suffix.length);
  let o = 0;
  for (let i = 0; i < body.length; i++) {
    const b = body[i];
    if (b === 10) o += suffix.copy(out, o);
    else if (b === 0x5c || b === 9 || b === 13) {
      out[o++] = 0x5c;
      out[o++] = b === 0x5c ? 0x5c : b === 9 ? 0x74 : 0x72;
    } else out[o++] = b;
  }
  if (body.length === 0 || body[body.length - 1] !== 10) o += suffix.copy(out, o);
  return out.subarray(0, o);
}
