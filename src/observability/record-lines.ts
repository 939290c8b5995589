/** Records handed over for one insert. */
export interface RecordBatch {
  /** Their JSON lines. */
  data: Buffer;
  count: number;
  /** The whole buffer `data` starts, for `recycle`. */
  buffer: Buffer;
}

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
  /** A buffer whose insert has ended, filled again after the next take. */
  private spare: Buffer | undefined;
  count = 0;

  push(record: object): void {
    const line = JSON.stringify(record);
    // At most 3 bytes of UTF-8 per UTF-16 code unit, and the newline.
    const need = this.bytes + 3 * line.length + 1;
    if (need > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(64 * 1024, 2 * this.buf.length, need));
      this.buf.copy(next, 0, 0, this.bytes);
      this.buf = next;
    }
    this.bytes += this.buf.write(line, this.bytes);
    this.buf[this.bytes++] = 0x0a;
    this.count++;
  }

  /** Drops the oldest `n` records (a JSON line holds no raw newline). */
  dropOldest(n: number): void {
    let cut = 0;
    for (let i = 0; i < n; i++) cut = this.buf.indexOf(0x0a, cut) + 1;
    this.buf.copy(this.buf, 0, cut, this.bytes);
    this.bytes -= cut;
    this.count -= n;
  }

  /** Every record, handed over for an insert: its buffer is not written again until `recycle`. */
  take(): RecordBatch {
    const batch = { data: this.buf.subarray(0, this.bytes), count: this.count, buffer: this.buf };
    this.buf = this.spare ?? Buffer.allocUnsafe(0);
    this.spare = undefined;
    this.bytes = 0;
    this.count = 0;
    return batch;
  }

  /** A batch whose insert has ended (the engine holds none of its bytes): its buffer is used again. */
  recycle(batch: RecordBatch): void {
    if (batch.buffer.length > (this.spare?.length ?? 0) && batch.buffer !== this.buf) this.spare = batch.buffer;
  }

  /** Records taken whose insert failed go back before the newer ones. */
  restore(batch: RecordBatch): void {
    this.buf = Buffer.concat([batch.data, this.buf.subarray(0, this.bytes)]);
    this.bytes = this.buf.length;
    this.count += batch.count;
  }
}
