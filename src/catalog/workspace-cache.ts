/**
 * A per-workspace cache of catalog records that every copy of the server keeps coherent: an
 * entry is dropped when the catalog reports a change of one of its tables in that workspace
 * (made by this copy or another, see Catalog.onChange), and everything is dropped when changes may
 * have been missed. The catalog stays the truth; the next read loads the workspace again.
 *
 * With copies sharing the catalog, a record another copy has just made is not in the cache until
 * its notification arrives (milliseconds; longer under load). `find` reads the catalog again
 * before it answers that a record is missing, so what one copy has made is found by every copy at
 * once (a pipe created through A is served by B in the next request).
 */
import type { Catalog } from './catalog.js';

export class WorkspaceCache<T> {
  private readonly entries = new Map<string, Promise<T>>();
  private readonly values = new Map<string, T>();
  private readonly listeners: Array<(workspaceId: string | null) => void> = [];
  /** Bumped by every change of any workspace's value (never reset): a fresh load made meanwhile is not installed. */
  private changes = 0;
  private readonly refreshing = new Map<string, Promise<T>>();
  private readonly shared: boolean;

  constructor(
    catalog: Pick<Catalog, 'onChange' | 'shared'>,
    tables: readonly string[],
    private readonly load: (workspaceId: string) => Promise<T>,
  ) {
    this.shared = catalog.shared;
    catalog.onChange((c) => {
      if (c.table === '*' || (tables.includes(c.table) && !c.workspaceId)) this.clear();
      else if (tables.includes(c.table) && c.workspaceId) this.drop(c.workspaceId);
    });
  }

  /**
   * Calls `listener` whenever a workspace's value changes: dropped on a notification, or changed
   * in place by this copy's own write (`update`), which its notification only confirms later.
   * `null`: every workspace.
   */
  onChange(listener: (workspaceId: string | null) => void): void {
    this.listeners.push(listener);
  }

  private changed(workspaceId: string | null): void {
    this.changes++;
    for (const l of this.listeners) l(workspaceId);
  }

  /**
   * `pick` from the workspace's value; when it finds nothing and copies share the catalog, from a
   * fresh load (concurrent misses share one). The fresh value replaces the cached one only when
   * it has what was missing and nothing changed the workspace meanwhile (else the notification
   * that is on its way does it).
   */
  async find<R>(workspaceId: string, pick: (value: T) => R | null): Promise<R | null> {
    const hit = pick(await this.get(workspaceId));
    if (hit !== null || !this.shared) return hit;
    let fresh = this.refreshing.get(workspaceId);
    if (!fresh) {
      const version = this.changes;
      const loading = this.load(workspaceId);
      fresh = loading;
      this.refreshing.set(workspaceId, loading);
      void loading.then(
        (v) => {
          if (this.refreshing.get(workspaceId) === loading) this.refreshing.delete(workspaceId);
          if (this.changes !== version || pick(v) === null) return;
          this.entries.set(workspaceId, loading);
          this.values.set(workspaceId, v);
          this.changed(workspaceId);
        },
        () => {
          if (this.refreshing.get(workspaceId) === loading) this.refreshing.delete(workspaceId);
        },
      );
    }
    return pick(await fresh);
  }

  /** Applies this copy's own write to the workspace's value (read-your-writes before the notification). */
  async update(workspaceId: string, fn: (value: T) => void): Promise<void> {
    fn(await this.get(workspaceId));
    this.changed(workspaceId);
  }

  /** The workspace's value, loaded once until a change drops it. */
  get(workspaceId: string): Promise<T> {
    let p = this.entries.get(workspaceId);
    if (!p) {
      const loading = this.load(workspaceId);
      p = loading;
      this.entries.set(workspaceId, loading);
      loading.then(
        (v) => {
          if (this.entries.get(workspaceId) === loading) this.values.set(workspaceId, v);
        },
        () => {
          if (this.entries.get(workspaceId) === loading) this.entries.delete(workspaceId);
        },
      );
    }
    return p;
  }

  /** Values loaded so far (synchronous lookups, e.g. names for error messages). */
  loaded(): Iterable<T> {
    return this.values.values();
  }

  drop(workspaceId: string): void {
    this.entries.delete(workspaceId);
    this.values.delete(workspaceId);
    this.changed(workspaceId);
  }

  clear(): void {
    this.entries.clear();
    this.values.clear();
    this.changed(null);
  }
}
