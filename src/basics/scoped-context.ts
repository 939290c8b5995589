/**
 * A value that asynchronous work sees while it runs inside a scope (the request a domain
 * operation runs for, whether work is a job's), held in an AsyncLocalStorage that is enabled only
 * while a scope is open.
 *
 * On Node 20 an enabled AsyncLocalStorage turns on V8's promise hooks (and async_hooks callbacks)
 * for every promise and callback of the process, whoever created them: measured on the endpoint
 * bench, a third more server CPU per trivial endpoint request. So the storage is disabled whenever
 * no scope is open: then `get()` is undefined and the process runs without hooks. Work a scope
 * started that outlives it (a continuation after the scope closed and every other scope too) no
 * longer sees the value.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export class ScopedContext<T> {
  private readonly storage = new AsyncLocalStorage<T>();
  private open = 0;

  /** The value of the innermost open scope the calling work runs in, if any. */
  get(): T | undefined {
    return this.open > 0 ? this.storage.getStore() : undefined;
  }

  /**
   * Opens a scope: `fn`, and the asynchronous work it starts, see `value` until the returned
   * function closes the scope (idempotent).
   */
  enter(value: T, fn: () => void): () => void {
    this.open++;
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      if (--this.open === 0) this.storage.disable();
    };
    try {
      this.storage.run(value, fn);
    } catch (err) {
      close();
      throw err;
    }
    return close;
  }

  /** Runs `fn` in a scope that closes when the promise it returns settles. */
  async run<R>(value: T, fn: () => Promise<R>): Promise<R> {
    let p!: Promise<R>;
    const close = this.enter(value, () => {
      p = fn();
    });
    try {
      return await p;
    } finally {
      close();
    }
  }
}
