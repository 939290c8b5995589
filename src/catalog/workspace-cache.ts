/**
 * A per-workspace cache of catalog records that every copy of the server keeps coherent: an
 * entry is dropped when the catalog reports a change of one of its tables in that workspace
 * (made by this copy or another, see Catalog.onChange), and everything is dropped when changes may
 * have been missed. The catalog stays the truth; the next read loads the workspace again.
 */
import type { Catalog } from './catalog.js';

export class WorkspaceCache<T> {
  private readonly entries = new Map<string, Promise<T>>();
  private readonly values = new Map<string, T>();
  private readonly listeners: Array<(workspaceId: string | null) => void> = [];

  constructor(
    catalog: Catalog,
    tables: readonly string[],
    private readonly load: (workspaceId: string) => Promise<T>,
  ) {
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
    for (const l of this.listeners) l(workspaceId);
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
