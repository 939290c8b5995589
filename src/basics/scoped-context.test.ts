import { describe, expect, it } from 'vitest';
import { ScopedContext } from './scoped-context.js';

const tick = () => new Promise((r) => setTimeout(r, 1));

describe('ScopedContext', () => {
  it('is seen by the work a scope starts, across awaits, until the scope closes', async () => {
    const c = new ScopedContext<string>();
    let close = () => {};
    const seen: Array<string | undefined> = [];
    let later!: Promise<void>;
    close = c.enter('a', () => {
      seen.push(c.get());
      later = (async () => {
        await tick();
        seen.push(c.get());
      })();
    });
    await later;
    expect(seen).toEqual(['a', 'a']);
    expect(c.get()).toBeUndefined();
    close();
    close();
    // A scope opened and closed at once leaves nothing behind; a later one is seen as usual.
    let after: string | undefined = 'unset';
    c.enter('b', () => undefined)();
    await c.run('c', async () => {
      await tick();
      after = c.get();
    });
    expect(after).toBe('c');
    expect(c.get()).toBeUndefined();
  });

  it('keeps concurrent and nested scopes apart, and closes a scope whose work fails', async () => {
    const c = new ScopedContext<number>();
    const inner: Array<number | undefined> = [];
    await Promise.all([
      c.run(1, async () => {
        await tick();
        inner.push(c.get());
        await c.run(3, async () => {
          await tick();
          inner.push(c.get());
        });
        inner.push(c.get());
      }),
      c.run(2, async () => {
        await tick();
        inner.push(c.get());
      }),
    ]);
    expect(inner.sort()).toEqual([1, 1, 2, 3]);
    await expect(
      c.run(4, async () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(() =>
      c.enter(5, () => {
        throw new Error('sync');
      }),
    ).toThrow('sync');
    // Every scope closed: nothing is seen any more.
    expect(c.get()).toBeUndefined();
    let seen: number | undefined = 0;
    await (async () => {
      await tick();
      seen = c.get();
    })();
    expect(seen).toBeUndefined();
  });
});
