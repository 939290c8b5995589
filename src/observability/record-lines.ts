/** Records handed over for one insert. */
export interface RecordBatch {
  /** Their JSON lines. */
  data: Buffer;
  count: number;
  /** The whole buffer `data` starts, for `recycle`. */
  buffer: Buffer;
}

/**
 * The largest buffer kept for the next turn: one grown by an outage (records kept while inserts
 * failed, up to maxBuffered) is left to the collector once inserted, not held for the process's life.
 */
export const MAX_SPARE = 16 * 1024 * 1024;

/**
 * One table's records waiting for their insert: JSON lines in a buffer outside the JavaScript heap.
 * As objects (a record, its strings, its nested objects) they lived up to `flushMs`, long enough for
 * the young-generation collector to copy and then promote them: on a busy endpoint ~80% of what a
 * request left to the old generation (docs/benchmarks.md, "Endpoints (a) at c4, session 9"). Two
 * buffers take turns (one filling, one being inserted): a new buffer a flush, each freed only by a
 * full collection, made the collector run full collections for them.
 */
export class RecordLines {
  private buf: Buffer = Buffer.allocUnsafe(0);
  private bytes = 0;
  /** Where the oldest kept record starts: what is before it was dropped (reclaimed when the buffer is full). */
  private start = 0;
  /** A buffer whose insert has ended, filled again after the next take. */
  private spare: Buffer | undefined;
  count = 0;

  push(record: object): void {
    const line = JSON.stringify(record);
    // At most 3 bytes of UTF-8 per UTF-16 code unit, and the newline.
    const max = 3 * line.length + 1;
    if (this.bytes + max > this.buf.length) {
      const live = this.bytes - this.start;
      if (this.start >= live && live + max <= this.buf.length) {
        // Dropped records take at least as much as the kept ones: moved down in place (each byte
        // moved was pushed since the last move, so a push at the bound costs its own length, not the buffer's).
        this.buf.copy(this.buf, 0, this.start, this.bytes);
      } else {
        const next = Buffer.allocUnsafe(Math.max(64 * 1024, 2 * live, live + max));
        this.buf.copy(next, 0, this.start, this.bytes);
        this.buf = next;
      }
      this.bytes = live;
      this.start = 0;
    }
    this.bytes += this.buf.write(line, this.bytes);
    this.buf[this.bytes++] = 0x0a;
    this.count++;
  }

  /** Drops the oldest `n` records (a JSON line holds no raw newline). */
  dropOldest(n: number): void {
    n = Math.min(n, this.count);
    let cut = this.start;
    for (let i = 0; i < n; i++) cut = this.buf.indexOf(0x0a, cut) + 1;
    // Not moved now: at the bound every push drops one, and moving the rest each time (~46 MB
    // for 100,000 pipe_stats_rt records) took ~1.5 ms a push.
    this.start = cut;
    this.count -= n;
    if (this.count === 0) this.start = this.bytes = 0;
  }

  /** Every record, handed over for an insert: its buffer is not written again until `recycle`. */
  take(): RecordBatch {
    const batch = { data: this.buf.subarray(this.start, this.bytes), count: this.count, buffer: this.buf };
    this.buf = this.spare ?? Buffer.allocUnsafe(0);
    this.spare = undefined;
    this.bytes = 0;
    this.start = 0;
    this.count = 0;
    return batch;
  }

  /** A batch whose insert has ended (the engine holds none of its bytes): its buffer is used again. */
  recycle(batch: RecordBatch): void {
    if (batch.buffer.length > MAX_SPARE) return;
    if (batch.buffer.length > (this.spare?.length ?? 0) && batch.buffer !== this.buf) this.spare = batch.buffer;
  }

  /** Records taken whose insert failed go back before the newer ones. */
  restore(batch: RecordBatch): void {
    this.buf = Buffer.concat([batch.data, this.buf.subarray(this.start, this.bytes)]);
    this.bytes = this.buf.length;
    this.start = 0;
    this.count += batch.count;
  }
}
