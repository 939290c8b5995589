import { describe, expect, it } from 'vitest';
import type { CatalogChange } from './catalog.js';
import { WorkspaceCache } from './workspace-cache.js';

/** The catalog's side the cache sees: its records (a name list per workspace) and its change notifications, delivered when the test says. */
function source(shared: boolean) {
  const rows = new Map<string, string[]>([['w', ['a']]]);
  const listeners: Array<(c: CatalogChange) => void> = [];
  let loads = 0;
  const cache = new WorkspaceCache<Set<string>>({ shared, onChange: (l) => listeners.push(l) }, ['pipes'], async (ws) => {
    loads++;
    const read = new Set(rows.get(ws)); // what the catalog held when the load read it
    await new Promise((r) => setTimeout(r, 5));
    return read;
  });
  return {
    cache,
    rows,
    loads: () => loads,
    notify: () => {
      for (const l of listeners) l({ table: 'pipes', workspaceId: 'w', id: null });
    },
  };
}
const named = (n: string) => (s: Set<string>) => (s.has(n) ? n : null);

describe('WorkspaceCache.find', () => {
  it('with a shared catalog, finds a record another copy made before its notification arrives', async () => {
    const s = source(true);
    expect(await s.cache.find('w', named('a'))).toBe('a');
    s.rows.set('w', ['a', 'b']); // made by another copy; its notification is still on its way
    const changes: Array<string | null> = [];
    s.cache.onChange((ws) => changes.push(ws));
    // Concurrent misses share one load; the fresh value replaces the cached one.
    expect(await Promise.all([s.cache.find('w', named('b')), s.cache.find('w', named('b'))])).toEqual(['b', 'b']);
    expect(s.loads()).toBe(2);
    expect(changes).toEqual(['w']);
    expect(await s.cache.find('w', named('b'))).toBe('b');
    expect(s.loads()).toBe(2);
    // A name that is nowhere: null, after one fresh load that leaves the cached value in place.
    expect(await s.cache.find('w', named('zz'))).toBeNull();
    expect(s.loads()).toBe(3);
    expect(changes).toEqual(['w']);
  });

  it('a fresh load that a change overtook is not installed', async () => {
    const s = source(true);
    await s.cache.get('w');
    s.rows.set('w', ['a', 'b']);
    const pending = s.cache.find('w', named('b'));
    await new Promise((r) => setTimeout(r, 1)); // the fresh load has read the catalog
    s.rows.set('w', ['a']); // b is dropped again, and that change is notified while the load runs
    s.notify();
    expect(await pending).toBe('b');
    expect(await s.cache.find('w', named('b'))).toBeNull();
  });

  it('with a catalog of its own (one copy), a miss is answered from the cache', async () => {
    const s = source(false);
    expect(await s.cache.find('w', named('a'))).toBe('a');
    s.rows.set('w', ['a', 'b']);
    expect(await s.cache.find('w', named('b'))).toBeNull();
    expect(s.loads()).toBe(1);
  });
});

describe('WorkspaceCache.find, changes of every workspace', () => {
  it('a fresh load overtaken by a change that dropped everything (a lost listen connection) is not installed', async () => {
    const s = source(true);
    await s.cache.get('w');
    s.rows.set('w', ['a', 'b']);
    const pending = s.cache.find('w', named('b'));
    await new Promise((r) => setTimeout(r, 1));
    s.rows.set('w', ['a']);
    s.cache.clear();
    expect(await pending).toBe('b');
    expect(await s.cache.find('w', named('b'))).toBeNull();
  });
});
