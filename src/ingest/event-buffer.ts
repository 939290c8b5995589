/**
 * The Events API write path: a write-ahead log with group commit. Each request's rows are
 * appended to the data source's open segment file and acknowledged once the write returns (a 202
 * survives kill -9); one flusher per data source inserts whole segments into the engine, so many
 * small requests become one insert. Segments carry a dedup token, so replaying one after a crash
 * writes its rows once. Rejects with 503 when a data source's backlog is too large.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ulid } from 'ulid';
import type { Engine } from '../engine/engine.js';
import { PipitError } from '../domain/errors.js';
import { insertSettings } from './ingest-service.js';

/** Where a segment goes: the NDJSON stage of one data source. */
export interface EventTarget {
  workspaceId: string;
  datasourceId: string;
  /** Qualified NDJSON stage table. */
  stage: string;
}

interface Waiter {
  requestId: string;
  resolve: (flushedAt: number) => void;
  reject: (err: unknown) => void;
}

interface Segment {
  id: string;
  file: string;
  fh: fs.promises.FileHandle | null;
  opening: Promise<fs.promises.FileHandle>;
  parts: Buffer[];
  bytes: number;
  writes: Set<Promise<unknown>>;
  waiters: Waiter[];
  target: EventTarget;
}

interface Lane {
  current: Segment | null;
  flushing: boolean;
  backlog: number;
}

/** Largest backlog (bytes not yet in the engine) per data source before new requests get a 503. */
const MAX_BACKLOG = 512 * 1024 * 1024;

export class EventBuffer {
  private readonly lanes = new Map<string, Lane>();
  private closing = false;
  private readonly idleWaiters: Array<() => void> = [];

  constructor(
    private readonly dir: string,
    private readonly engine: Engine,
    private readonly fsync: boolean,
    private readonly log: (msg: string, extra?: Record<string, unknown>) => void,
  ) {
    fs.mkdirSync(dir, { recursive: true });
  }

  /** TSV rows `<line>\t<requestId>` for the stage's (__line, __import_id) columns. */
  static toTsv(body: Buffer, requestId: string): Buffer {
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
  async append(target: EventTarget, tsv: Buffer, requestId: string, wait: boolean): Promise<number | null> {
    if (this.closing) throw new PipitError('unavailable', 'Service temporarily unavailable, no data ingested, please retry again');
    const key = `${target.workspaceId}__${target.datasourceId}`;
    let lane = this.lanes.get(key);
    if (!lane) this.lanes.set(key, (lane = { current: null, flushing: false, backlog: 0 }));
    if (lane.backlog > MAX_BACKLOG) throw new PipitError('unavailable', 'Service temporarily unavailable, no data ingested, please retry again');
    let seg = lane.current;
    if (!seg) {
      const id = ulid();
      const file = path.join(this.dir, `${key}__${id}.tsv`);
      seg = { id, file, fh: null, opening: fs.promises.open(file, 'a'), parts: [], bytes: 0, writes: new Set(), waiters: [], target };
      lane.current = seg;
    }
    seg.parts.push(tsv);
    seg.bytes += tsv.length;
    lane.backlog += tsv.length;
    const s = seg;
    const write = (async () => {
      const fh = s.fh ?? (s.fh = await s.opening);
      await fh.write(tsv);
      if (this.fsync) await fh.datasync();
    })();
    s.writes.add(write);
    let flushed: Promise<number> | null = null;
    if (wait) flushed = new Promise<number>((resolve, reject) => s.waiters.push({ requestId, resolve, reject }));
    try {
      await write;
    } finally {
      s.writes.delete(write);
    }
    this.schedule(key);
    return flushed ? await flushed : null;
  }

  /**
   * A large request (already a big batch) skips the TSV rewrite and the lane: its NDJSON bytes
   * are logged as their own segment, tagged with the request id, and inserted as lines.
   */
  async appendLarge(target: EventTarget, body: Buffer, requestId: string, wait: boolean): Promise<void> {
    if (this.closing) throw new PipitError('unavailable', 'Service temporarily unavailable, no data ingested, please retry again');
    const key = `${target.workspaceId}__${target.datasourceId}`;
    const segId = ulid();
    const file = path.join(this.dir, `${key}__${segId}__${requestId}.ndjson`);
    const fh = await fs.promises.open(file, 'w');
    try {
      await fh.write(body);
      if (this.fsync) await fh.datasync();
    } finally {
      await fh.close();
    }
    this.largeInFlight++;
    const done = this.insertLines(target.stage, body, requestId, segId)
      .then(() => fs.promises.unlink(file))
      .catch(async (err) => {
        await fs.promises.rename(file, file + '.failed').catch(() => undefined);
        this.log('event flush failed', { segment: file, error: String(err) });
        throw new PipitError('unavailable', 'Service temporarily unavailable, no data ingested, please retry again');
      })
      .finally(() => {
        this.largeInFlight--;
        this.maybeIdle();
      });
    if (wait) await done;
    else done.catch(() => undefined);
  }

  private largeInFlight = 0;

  private async insertLines(stage: string, data: Buffer, requestId: string, segmentId: string): Promise<void> {
    await this.engine.insert({ table: stage, format: 'LineAsString', columns: ['__line'], data, settings: insertSettings(requestId, `wal-${segmentId}`) });
  }

  private schedule(key: string): void {
    const lane = this.lanes.get(key);
    if (!lane || lane.flushing || !lane.current) return;
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
    // Let writes that joined this segment finish, then seal it.
    while (seg.writes.size) await Promise.allSettled([...seg.writes]);
    const fh = seg.fh ?? (await seg.opening);
    await fh.close();
    const data = Buffer.concat(seg.parts);
    let lastErr: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await this.insert(seg.target.stage, data, seg.id);
        await fs.promises.unlink(seg.file);
        const at = Date.now();
        for (const w of seg.waiters) w.resolve(at);
        return;
      } catch (err) {
        lastErr = err;
        await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
      }
    }
    // Keep the rows: the segment stays on disk (renamed) for an operator to replay.
    await fs.promises.rename(seg.file, seg.file + '.failed').catch(() => undefined);
    const err = new PipitError('unavailable', 'Service temporarily unavailable, no data ingested, please retry again');
    for (const w of seg.waiters) w.reject(err);
    throw lastErr;
  }

  private async insert(stage: string, data: Buffer, segmentId: string): Promise<void> {
    await this.engine.insert({
      table: stage,
      format: 'TabSeparated',
      columns: ['__line', '__import_id'],
      data,
      settings: insertSettings(segmentId, `wal-${segmentId}`),
    });
  }

  /**
   * Replays segments left by a previous process. `resolve` maps a (workspace, data source) to its
   * stage, or null when the data source is gone (its segments are then set aside).
   */
  async recover(resolve: (workspaceId: string, datasourceId: string) => Promise<string | null>): Promise<number> {
    let replayed = 0;
    const files = (await fs.promises.readdir(this.dir)).filter((f) => f.endsWith('.tsv') || f.endsWith('.ndjson')).sort((a, b) => a.split('__')[2].localeCompare(b.split('__')[2]));
    for (const f of files) {
      const [ws, ds, rest, reqPart] = f.split('__');
      const segId = rest.replace(/\.tsv$/, '').replace(/\.ndjson$/, '');
      const file = path.join(this.dir, f);
      const stage = await resolve(ws, ds);
      if (!stage) {
        await fs.promises.rename(file, file + '.orphan');
        continue;
      }
      const data = await fs.promises.readFile(file);
      // A torn last line (the process died mid-write, before the acknowledgement) is dropped.
      const end = data.lastIndexOf(10) + 1;
      if (f.endsWith('.ndjson')) await this.insertLines(stage, data, reqPart.replace(/\.ndjson$/, ''), segId);
      else if (end > 0) await this.insert(stage, data.subarray(0, end), segId);
      await fs.promises.unlink(file);
      replayed++;
    }
    return replayed;
  }

  /** Stops accepting and waits until every buffered row is in the engine. */
  async close(): Promise<void> {
    this.closing = true;
    for (const key of this.lanes.keys()) this.schedule(key);
    await new Promise<void>((resolve) => {
      this.idleWaiters.push(resolve);
      this.maybeIdle();
    });
  }
}
