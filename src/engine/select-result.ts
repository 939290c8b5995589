/**
 * The `SelectResult` both engines hand back: the first chunk already fetched (so an engine error
 * surfaces before any byte is sent), the rest read on demand, one `finish` when the result is read
 * to its end, fails or is cancelled, and engine errors mapped at the boundary.
 */
import type { SelectResult } from './engine.js';

export interface ResultParts<C> {
  stats: SelectResult['stats'];
  it: AsyncIterator<C>;
  first: IteratorResult<C>;
  /** A chunk as bytes to send; empty ones are skipped. */
  bytes(chunk: C): Buffer;
  /** Stops the query (engine side). */
  cancel(): void;
  /** Releases what the query held; called once. */
  finish(): void;
  /** Whether `finish` already ran (then the iterator needs no closing). */
  finished(): boolean;
  /** Maps an error thrown while reading (and records what it means for the engine). */
  error(err: unknown): unknown;
}

export function selectResult<C>(p: ResultParts<C>): SelectResult {
  const close = () => void p.it.return?.()?.catch(() => undefined);
  return {
    stats: p.stats,
    cancel() {
      p.cancel();
      close();
      p.finish();
    },
    async *[Symbol.asyncIterator]() {
      try {
        for (let r = p.first; !r.done; r = await p.it.next()) {
          const chunk = p.bytes(r.value);
          if (chunk.length > 0) yield chunk;
        }
      } catch (err) {
        throw p.error(err);
      } finally {
        if (!p.finished()) close();
        p.finish();
      }
    },
  };
}

/** A result the engine answered whole: nothing left to read, release or cancel. */
export function wholeResult(stats: SelectResult['stats'], whole: Buffer): SelectResult {
  return {
    stats,
    whole,
    cancel() {},
    async *[Symbol.asyncIterator]() {
      if (whole.length > 0) yield whole;
    },
  };
}
