/**
 * Prepared user queries (QueryService.prepare: scope, template rendering, analysis and rewrite),
 * kept per workspace for the next identical request. An entry is the same caller (its token's
 * identity and scopes: row filters are part of them, so a query prepared for one token is never
 * served to another), the same SQL, the same parameter values and the same context. A workspace's
 * entries are dropped on every catalog change that can alter a preparation (data sources, pipes,
 * variables, tokens, workspaces; by this copy or another, see Catalog.onChange): the same
 * notifications that keep the records' caches coherent, and this copy's own writes to those caches
 * (WorkspaceCache.onChange, before their notification arrives), so an entry never outlives the
 * records, variables or scopes it was prepared from. A preparation that started before such a change is
 * not stored. Preparations that hold the time of rendering are not stored either.
 */
import type { Catalog, TokenRecord } from '../catalog/catalog.js';
import type { Auth } from './access.js';

/** Catalog tables whose changes can change what a query prepares to. */
const PREPARED_FROM = new Set(['datasources', 'pipes', 'variables', 'tokens', 'workspaces']);

/** Entries per workspace (least recently used first out). */
const MAX_ENTRIES = 1024;
/** Longer keys (a long `q`, large POST parameters) are prepared every time. */
const MAX_KEY_LENGTH = 16 * 1024;

export class PreparedCache<T> {
  private readonly byWorkspace = new Map<string, Map<string, T>>();
  /** Per workspace, bumped by each change; '' counts changes of every workspace. */
  private readonly generations = new Map<string, number>();
  private readonly identities = new WeakMap<TokenRecord, string>();

  constructor(catalog: Catalog) {
    catalog.onChange((c) => {
      if (c.table === '*' || (PREPARED_FROM.has(c.table) && !c.workspaceId)) this.drop(null);
      else if (PREPARED_FROM.has(c.table) && c.workspaceId) this.drop(c.workspaceId);
    });
  }

  /**
   * Drops a workspace's entries (null: every workspace's): on the catalog's notifications, and on
   * this copy's own writes to the record caches, which come before their notification.
   */
  drop(workspaceId: string | null): void {
    this.bump(workspaceId ?? '');
  }

  private bump(workspaceId: string): void {
    this.generations.set(workspaceId, (this.generations.get(workspaceId) ?? 0) + 1);
    if (workspaceId === '') this.byWorkspace.clear();
    else this.byWorkspace.delete(workspaceId);
  }

  /** What a preparation started now must still match when it ends to be stored. */
  stamp(workspaceId: string): string {
    return `${this.generations.get('') ?? 0}:${this.generations.get(workspaceId) ?? 0}`;
  }

  /**
   * Everything of the caller that preparation reads: the token (id, scopes with their row
   * filters, workspace, user-admin flag), a JWT's signature and fixed parameters.
   */
  private identity(auth: Auth): string {
    const t = auth.token;
    if (auth.jwt) return JSON.stringify(['jwt', t.token.slice(t.token.lastIndexOf('.') + 1), t.workspaceId, t.scopes, [...auth.jwt.fixedParams]]);
    let id = this.identities.get(t);
    if (id === undefined) {
      id = JSON.stringify([t.id, t.version, t.workspaceId, t.scopes, t.userAdmin === true]);
      this.identities.set(t, id);
    }
    return id;
  }

  /** The key of a preparation, from everything else it depends on; undefined when not cached. */
  keyOf(auth: Auth, parts: unknown[]): string | undefined {
    const key = `${this.identity(auth)}\u0000${JSON.stringify(parts)}`;
    return key.length <= MAX_KEY_LENGTH ? key : undefined;
  }

  get(workspaceId: string, key: string): T | undefined {
    const m = this.byWorkspace.get(workspaceId);
    const v = m?.get(key);
    if (v === undefined || !m) return undefined;
    // Most recently used last.
    m.delete(key);
    m.set(key, v);
    return v;
  }

  set(workspaceId: string, key: string, stamp: string, value: T): void {
    if (stamp !== this.stamp(workspaceId)) return;
    let m = this.byWorkspace.get(workspaceId);
    if (!m) {
      m = new Map();
      this.byWorkspace.set(workspaceId, m);
    }
    m.set(key, value);
    if (m.size > MAX_ENTRIES) m.delete(m.keys().next().value as string);
  }
}
