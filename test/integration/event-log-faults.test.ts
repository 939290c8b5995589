/**
 * The Events API's write-ahead log when the disk refuses a step after the rows were written, on
 * the real engine: a request whose disk flush (fdatasync) fails, or whose write fails half-way and
 * can not be cut back (ftruncate), is answered 503 ("no data ingested"), so its rows must never
 * reach the table: not from memory, not when the segment is set aside, and not when a crash makes
 * the next start replay the file. The faults are made at the OS boundary (node:fs), where a real
 * disk would make them; the engine and the files are real.
 *
 * "A crash now" is a copy of the log directory replayed by a second EventBuffer (as the next start
 * does) while the first one's segment can not be inserted (its stage table is missing, a real
 * refusal of the engine) and waits on disk for the background retries.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { EmbeddedEngine } from '../../src/engine/embedded-engine.js';
import { EventBuffer, type EventTarget } from '../../src/ingest/event-buffer.js';
import { dropStagesSql } from '../../src/ingest/physical.js';
import { ndjsonDatasource } from '../helpers/ndjson-datasource.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-wal-faults-'));
const engine = new EmbeddedEngine(path.join(root, 'engine'), { userSlots: 2, internalSlots: 2 });
const logged: string[] = [];
const log = (msg: string) => {
  logged.push(msg);
};
let n = 0;

beforeAll(async () => {
  await engine.exec('CREATE DATABASE IF NOT EXISTS w');
});

afterEach(() => {
  vi.restoreAllMocks();
});

afterAll(async () => {
  await engine.close();
  fs.rmSync(root, { recursive: true, force: true });
});

/** A stage-shaped table (the real stage skips blank lines; so does `lines`). */
async function newStage(): Promise<string> {
  const t = `w.stage${n++}`;
  await engine.exec(`CREATE TABLE ${t} (__line String, __import_id String) ENGINE = MergeTree ORDER BY tuple()`);
  return t;
}

async function lines(stage: string): Promise<string[]> {
  const rows = await engine.rows<{ l: string }>(`SELECT __line AS l FROM ${stage} WHERE trim(__line) != '' ORDER BY l`);
  return rows.map((r) => r.l);
}

const target = (stage: string): EventTarget => ({ workspaceId: 'ws', database: 'w', datasourceId: `ds${n}`, stage });
const body = (tag: string, count: number) => Buffer.from(Array.from({ length: count }, (_, i) => `{"r":"${tag}${i}"}`).join('\n') + '\n');
const rowsOf = (tag: string, count: number) => Array.from({ length: count }, (_, i) => `{"r":"${tag}${i}"}`).sort();

/** The stage's table goes missing (the engine refuses every insert into it) until the returned function makes it again. */
async function dropStage(stage: string): Promise<() => Promise<void>> {
  await engine.exec(`DROP TABLE ${stage} SYNC`);
  return () => engine.exec(`CREATE TABLE ${stage} (__line String, __import_id String) ENGINE = MergeTree ORDER BY tuple()`);
}

/** What the next start would insert from a copy of the log as it is now (a crash at this instant). */
async function replayCopy(walDir: string): Promise<string[]> {
  const copy = fs.mkdtempSync(path.join(root, 'copy-'));
  for (const f of fs.readdirSync(walDir)) fs.copyFileSync(path.join(walDir, f), path.join(copy, f));
  const stage = await newStage();
  const next = new EventBuffer(copy, engine, true, log);
  await next.recover(async () => stage);
  await next.close();
  return lines(stage);
}

const eio = () => Object.assign(new Error('EIO: i/o error'), { code: 'EIO', errno: -5 });

/**
 * Disk flushes (fdatasync) from now on, answered in the order they were asked for (each after the
 * one before): the second fails, the others go through.
 */
function failSecondFlush(): void {
  const real = fs.fdatasync;
  let calls = 0;
  let previous: Promise<void> = Promise.resolve();
  vi.spyOn(fs, 'fdatasync').mockImplementation(((fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
    const fail = ++calls === 2;
    const before = previous;
    previous = new Promise<void>((done) => {
      real(
        fd,
        (err) =>
          void before.then(() =>
            setImmediate(() => {
              cb(fail ? eio() : err);
              done();
            }),
          ),
      );
    });
  }) as typeof fs.fdatasync);
}

/** A stage that is missing for now, its log directory and buffer (with or without disk flushes). */
async function setup(fsync: boolean) {
  const stage = await newStage();
  const wal = fs.mkdtempSync(path.join(root, 'wal-'));
  const buf = new EventBuffer(wal, engine, fsync, log);
  return { stage, wal, buf, t: target(stage), remake: await dropStage(stage) };
}

/** Requests A and B (`n` rows each) written to one segment in the same tick: A is acknowledged, B refused (its disk flush failed). */
async function appendTwoSecondRefused(buf: EventBuffer, t: EventTarget, n: number): Promise<void> {
  const a = buf.append(t, EventBuffer.rowsOf(body('a', n), 'A'), 'A', false);
  const b = buf.append(t, EventBuffer.rowsOf(body('b', n), 'B'), 'B', false);
  const [ra, rb] = await Promise.allSettled([a, b]);
  expect(ra).toEqual({ status: 'fulfilled', value: null });
  expect(rb).toMatchObject({ status: 'rejected', reason: { code: 'unavailable' } });
}

describe('the Events API log when the disk refuses a step', () => {
  it('a request whose disk flush fails is refused, and its rows are in no replay of the log and in no retry', async () => {
    const { stage, wal, buf, t, remake } = await setup(true);
    failSecondFlush();
    await appendTwoSecondRefused(buf, t, 3);
    vi.restoreAllMocks();
    // The segment's insert fails: it waits on disk. A crash now: B's rows are not replayed.
    await vi.waitFor(() => expect(buf.pendingSegments).toBe(1), { timeout: 10_000 });
    expect(await replayCopy(wal)).toEqual(rowsOf('a', 3));
    await remake();
    await vi.waitFor(() => expect(buf.pendingSegments).toBe(0), { timeout: 15_000 });
    await buf.close();
    expect(await lines(stage)).toEqual(rowsOf('a', 3));
    expect(fs.readdirSync(wal)).toEqual([]);
  });

  it('when the refused rows can not be blanked either, the segment is rewritten without them before it waits for retries', async () => {
    const { stage, wal, buf, t, remake } = await setup(true);
    failSecondFlush();
    // Writing over rows in place fails too.
    const realOpen = fs.promises.open;
    vi.spyOn(fs.promises, 'open').mockImplementation(async (file, flags, mode) => {
      if (flags === 'r+') throw eio();
      return realOpen(file, flags, mode);
    });
    await appendTwoSecondRefused(buf, t, 2);
    await vi.waitFor(() => expect(buf.pendingSegments).toBe(1), { timeout: 10_000 });
    vi.restoreAllMocks();
    expect(await replayCopy(wal)).toEqual(rowsOf('a', 2));
    await remake();
    await vi.waitFor(() => expect(buf.pendingSegments).toBe(0), { timeout: 15_000 });
    await buf.close();
    expect(await lines(stage)).toEqual(rowsOf('a', 2));
  });

  it('a write that fails half-way and can not be cut back leaves no row of its request, and no later row after its torn line', async () => {
    const { stage, wal, buf, t, remake } = await setup(false);
    // A's segment is being inserted (and failing, retried for ~0.6 s), so B opens the next segment.
    await buf.append(t, EventBuffer.rowsOf(body('a', 2), 'A'), 'A', false);
    const bRows = EventBuffer.rowsOf(body('b', 4), 'B');
    const realWrite = fs.writeSync;
    vi.spyOn(fs, 'writeSync').mockImplementation(((fd: number, data: Buffer, off?: number, len?: number, pos?: number | null) => {
      // B's rows: the first half is written, then the disk fails.
      if (data === bRows.bytes) {
        if (off === 0) return realWrite(fd, data, 0, Math.floor(data.length / 2));
        throw eio();
      }
      return realWrite(fd, data, off, len, pos);
    }) as typeof fs.writeSync);
    vi.spyOn(fs, 'ftruncateSync').mockImplementation(() => {
      throw eio();
    });
    await expect(buf.append(t, bRows, 'B', false)).rejects.toMatchObject({ code: 'unavailable' });
    vi.restoreAllMocks();
    // The segment with the torn write takes no more rows while A's insert runs (a retryable 503).
    await expect(buf.append(t, EventBuffer.rowsOf(body('c', 2), 'C'), 'C', false)).rejects.toMatchObject({ code: 'unavailable' });
    // A crash now replays A's rows only: B's whole rows were blanked, its torn line is left out.
    expect(await replayCopy(wal)).toEqual(rowsOf('a', 2));
    await remake();
    // Once A's segment is out of the way, the next request opens a new segment.
    await vi.waitFor(async () => expect(await buf.append(t, EventBuffer.rowsOf(body('c', 2), 'C'), 'C', false)).toBeNull(), { timeout: 10_000 });
    await buf.close();
    expect(await lines(stage)).toEqual([...rowsOf('a', 2), ...rowsOf('c', 2)].sort());
  });
  it('a write that can not be cut back nor blanked: when its segment is set aside, the retry inserts none of its rows', async () => {
    const { stage, wal, buf, t, remake } = await setup(false);
    // Z's segment is being inserted (and failing), so A and B share the next segment.
    await buf.append(t, EventBuffer.rowsOf(body('z', 1), 'Z'), 'Z', false);
    await buf.append(t, EventBuffer.rowsOf(body('a', 2), 'A'), 'A', false);
    const bRows = EventBuffer.rowsOf(body('b', 4), 'B');
    const realWrite = fs.writeSync;
    vi.spyOn(fs, 'writeSync').mockImplementation(((fd: number, data: Buffer, off?: number, len?: number, pos?: number | null) => {
      // B's rows: three of its four rows and part of the last are written, then the disk fails.
      if (data === bRows.bytes) {
        if (off === 0) return realWrite(fd, data, 0, Math.floor(data.length * 0.8));
        throw eio();
      }
      return realWrite(fd, data, off, len, pos);
    }) as typeof fs.writeSync);
    vi.spyOn(fs, 'ftruncateSync').mockImplementation(() => {
      throw eio();
    });
    // Writing over B's rows in place fails too.
    const realOpenSync = fs.openSync;
    vi.spyOn(fs, 'openSync').mockImplementation(((file: fs.PathLike, flags?: fs.OpenMode, mode?: fs.Mode) => {
      if (flags === 'r+') throw eio();
      return realOpenSync(file, flags ?? 'r', mode);
    }) as typeof fs.openSync);
    await expect(buf.append(t, bRows, 'B', false)).rejects.toMatchObject({ code: 'unavailable' });
    vi.restoreAllMocks();
    // Both segments' inserts fail: they wait on disk, B's rows out of the second one.
    await vi.waitFor(() => expect(buf.pendingSegments).toBe(2), { timeout: 15_000 });
    expect(await replayCopy(wal)).toEqual([...rowsOf('a', 2), ...rowsOf('z', 1)].sort());
    await remake();
    await vi.waitFor(() => expect(buf.pendingSegments).toBe(0), { timeout: 15_000 });
    await buf.close();
    expect(await lines(stage)).toEqual([...rowsOf('a', 2), ...rowsOf('z', 1)].sort());
  });

  it('refused rows that can not be blanked, in a segment that can not be rewritten either: the retry rewrites it first', async () => {
    const { stage, wal, buf, t, remake } = await setup(true);
    failSecondFlush();
    // Neither writing over rows in place nor writing a new file works for now.
    const realOpen = fs.promises.open;
    vi.spyOn(fs.promises, 'open').mockImplementation(async (file, flags, mode) => {
      if (flags === 'r+' || flags === 'w') throw eio();
      return realOpen(file, flags, mode);
    });
    await appendTwoSecondRefused(buf, t, 2);
    await vi.waitFor(() => expect(buf.pendingSegments).toBe(1), { timeout: 10_000 });
    vi.restoreAllMocks();
    await remake();
    await vi.waitFor(() => expect(buf.pendingSegments).toBe(0), { timeout: 15_000 });
    await buf.close();
    expect(await lines(stage)).toEqual(rowsOf('a', 2));
    expect(fs.readdirSync(wal)).toEqual([]);
  });
  it('a disk flush that succeeds after another of the same segment failed proves nothing: its request is refused too', async () => {
    const { stage, wal, buf, t, remake } = await setup(true);
    failSecondFlush();
    // A, B and C in one segment: A's flush goes through, B's fails, C's reports success after B's failure.
    const results = await Promise.allSettled(
      ['a', 'b', 'c'].map((tag) => buf.append(t, EventBuffer.rowsOf(body(tag, 2), tag.toUpperCase()), tag.toUpperCase(), false)),
    );
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected']);
    vi.restoreAllMocks();
    await vi.waitFor(() => expect(buf.pendingSegments).toBe(1), { timeout: 10_000 });
    expect(await replayCopy(wal)).toEqual(rowsOf('a', 2));
    await remake();
    await vi.waitFor(() => expect(buf.pendingSegments).toBe(0), { timeout: 15_000 });
    await buf.close();
    expect(await lines(stage)).toEqual(rowsOf('a', 2));
  });
  // The tests above read the stage-shaped table without its blank lines; here the data source's own
  // NDJSON stage (a Null table whose views skip lines matching ^\s*$) reads the blanked rows.
  it.each([
    ['plain (0x01-separated CSV) rows', 'b'],
    ['TSV rows', 'b\\N'],
  ])('refused %s, blanked in the file, reach neither the table nor the quarantine of a real data source', async (_, tag) => {
    const id = `t_faults${n++}`;
    const { names, target: t, makeStage } = await ndjsonDatasource(engine, id, 'String');
    const wal = fs.mkdtempSync(path.join(root, 'wal-'));
    const buf = new EventBuffer(wal, engine, true, log);
    // The stage is missing for now: the segment waits on disk, and its retry reads the file.
    failSecondFlush();
    const b = EventBuffer.rowsOf(body(tag, 3), 'B');
    expect(b.plain).toBe(tag === 'b');
    const results = await Promise.allSettled([buf.append(t, EventBuffer.rowsOf(body('a', 3), 'A'), 'A', false), buf.append(t, b, 'B', false)]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected']);
    vi.restoreAllMocks();
    await vi.waitFor(() => expect(buf.pendingSegments).toBe(1), { timeout: 10_000 });
    await makeStage();
    await vi.waitFor(() => expect(buf.pendingSegments).toBe(0), { timeout: 15_000 });
    await buf.close();
    expect(await engine.rows(`SELECT r FROM ${names.table} ORDER BY r`)).toEqual([{ r: 'a0' }, { r: 'a1' }, { r: 'a2' }]);
    expect(await engine.rows(`SELECT count() AS c FROM ${names.quarantine}`)).toEqual([{ c: 0 }]);
    for (const q of dropStagesSql(id)) await engine.exec(q);
  });
  it('a wait=true request whose segment is in but whose file can not be removed is answered (no hang)', async () => {
    const stage = await newStage();
    const buf = new EventBuffer(fs.mkdtempSync(path.join(root, 'wal-')), engine, false, log);
    vi.spyOn(fs.promises, 'unlink').mockImplementationOnce(async () => {
      throw eio();
    });
    const answered = buf.append(target(stage), EventBuffer.rowsOf(body('a', 2), 'A'), 'A', true);
    const hang = new Promise((resolve) => setTimeout(() => resolve('no answer'), 5_000));
    expect(await Promise.race([answered, hang])).toEqual(expect.any(Number));
    await buf.close();
    expect(await lines(stage)).toEqual(rowsOf('a', 2));
  });

  it("with disk flushes, a new log file's name is flushed before its first request is acknowledged; if that fails, the request is refused", async () => {
    const stage = await newStage();
    const wal = fs.mkdtempSync(path.join(root, 'wal-'));
    const buf = new EventBuffer(wal, engine, true, log);
    const realOpen = fs.promises.open;
    const dirFlushes: string[] = [];
    vi.spyOn(fs.promises, 'open').mockImplementation(async (file, flags, mode) => {
      if (file === wal && flags === 'r') {
        dirFlushes.push(String(file));
        if (dirFlushes.length === 1) throw eio();
      }
      return realOpen(file, flags, mode);
    });
    // The first segment's directory flush fails: its request is refused and its rows go nowhere.
    await expect(buf.append(target(stage), EventBuffer.rowsOf(body('a', 2), 'A'), 'A', true)).rejects.toMatchObject({ code: 'unavailable' });
    // The next segment's flush works: acknowledged once the name is on disk, and inserted.
    await vi.waitFor(async () => expect(await buf.append(target(stage), EventBuffer.rowsOf(body('c', 2), 'C'), 'C', true)).toBeGreaterThan(0), {
      timeout: 10_000,
    });
    // A large body's file is renamed into place: its name is flushed too before the answer.
    const flushesBefore = dirFlushes.length;
    await buf.appendLarge(target(stage), Buffer.from('{"r":"L"}\n'), 'L', true);
    expect(dirFlushes.length).toBe(flushesBefore + 1);
    await buf.close();
    expect(await lines(stage)).toEqual([...rowsOf('c', 2), '{"r":"L"}'].sort());
  });

  it('a large body refused because its name could not be flushed is not replayed at the next start', async () => {
    const stage = await newStage();
    const wal = fs.mkdtempSync(path.join(root, 'wal-'));
    const buf = new EventBuffer(wal, engine, true, log);
    const realOpen = fs.promises.open;
    vi.spyOn(fs.promises, 'open').mockImplementation(async (file, flags, mode) => {
      if (file === wal && flags === 'r') throw eio();
      return realOpen(file, flags, mode);
    });
    await expect(buf.appendLarge(target(stage), Buffer.from('{"r":"L"}\n'), 'L', true)).rejects.toMatchObject({ code: 'unavailable' });
    vi.restoreAllMocks();
    await buf.close();
    // The next start finds nothing of it: the renamed file went too, not only its `.partial`.
    expect(fs.readdirSync(wal)).toEqual([]);
    const next = new EventBuffer(wal, engine, true, log);
    await next.recover(async () => stage);
    await next.close();
    expect(await lines(stage)).toEqual([]);
  });
});
