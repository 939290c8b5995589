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
  }

  clear(): void {
    this.entries.clear();
    this.values.clear();
  }
}
