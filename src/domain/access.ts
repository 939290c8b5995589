/**
 * Who may do what: static token values (opaque and HMAC-signed, so a forged or truncated token is
 * refused before any catalog lookup), JWTs (HS256 with a workspace ADMIN token, reference §7.4),
 * the default workspace created on first start, and the scope checks every route calls (Auth).
 * Rejects with Tinybird's 403 messages.
 */
import crypto from 'node:crypto';
import { type Catalog, type PipeRecord, type Scope, type ScopeType, type TokenRecord, VersionConflict, type Workspace } from '../catalog/catalog.js';
import type { ParamValue } from '../template/index.js';
import { badRequest, conflict, forbidden } from '../basics/errors.js';
import { decodeJwt, signJwt, verifyHs256 } from './jwt.js';
import { checkExpression, checkNameLength } from '../schema/index.js';
import { newResourceId } from '../basics/ids.js';
import { nowIso } from '../basics/time.js';

export const INVALID_TOKEN = 'invalid authentication token';

/** Scope types a static token may hold (what the Tokens API accepts). */
export const STATIC_SCOPES: readonly ScopeType[] = [
  'DATASOURCES:READ',
  'DATASOURCES:APPEND',
  'DATASOURCES:CREATE',
  'DATASOURCES:DROP',
  'PIPES:READ',
  'PIPES:CREATE',
  'PIPES:DROP',
  'TOKENS',
  'ADMIN',
];
/** Scope types that name a resource (a data source or a pipe). */
export const isStaticScope = (t: string): t is ScopeType => (STATIC_SCOPES as readonly string[]).includes(t);
export { RESOURCE_SCOPES } from '../basics/scopes.js';
/** Scope types a JWT may hold (PIPES:READ in Classic; the DATASOURCES ones as the newer platform and the SDK use them). */
export const JWT_SCOPES: readonly ScopeType[] = ['PIPES:READ', 'DATASOURCES:READ', 'DATASOURCES:APPEND'];

/** What a valid JWT grants beyond its scopes. */
export interface JwtGrant {
  name: string;
  /** Expiry, unix seconds. */
  exp: number;
  /** Requests per second allowed to this JWT (`limits.rps`). */
  rps?: number;
  /** `fixed_params` of its PIPES:READ scopes, by pipe id. */
  fixedParams: Map<string, Record<string, ParamValue>>;
}

/** A table a prepared query reads (the analyzer's ResolvedTable, as far as access cares). */
export interface ReadTable {
  name: string;
  kind: string;
  id: string;
}

/**
 * What an Auth grants, as JSON a job row can hold so another copy of the server runs the job with
 * the caller's authority: the token's id, name and scopes (never its value), the JWT's grant.
 */
export interface AuthorityRecord {
  workspace: Workspace;
  tokenId: string;
  name: string;
  scopes: Scope[];
  userAdmin?: boolean;
  jwt?: { name: string; exp: number; rps?: number; fixedParams: Array<[string, Record<string, ParamValue>]> };
}

const sameValue = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** The authenticated caller of one request: a static token, or a verified JWT (`jwt` set). */
export class Auth {
  constructor(
    readonly token: TokenRecord,
    readonly workspace: Workspace,
    readonly jwt?: JwtGrant,
  ) {}

  /** The authority of this caller, to run a job with later on any copy (Auth.fromRecord). */
  toRecord(): AuthorityRecord {
    const t = this.token;
    return {
      workspace: this.workspace,
      tokenId: t.id,
      name: t.name,
      scopes: t.scopes,
      ...(t.userAdmin ? { userAdmin: true } : {}),
      ...(this.jwt ? { jwt: { name: this.jwt.name, exp: this.jwt.exp, rps: this.jwt.rps, fixedParams: [...this.jwt.fixedParams] } } : {}),
    };
  }

  /**
   * The Auth a job runs with: what the caller held when the job was created (a token revoked or
   * changed meanwhile does not change a job already accepted, as for a job started at once).
   */
  static fromRecord(r: AuthorityRecord): Auth {
    const token: TokenRecord = {
      id: r.tokenId,
      version: 0,
      workspaceId: r.workspace.id,
      name: r.name,
      token: '',
      scopes: r.scopes,
      description: '',
      createdAt: '',
      ...(r.userAdmin ? { userAdmin: true } : {}),
    };
    return new Auth(token, r.workspace, r.jwt && { name: r.jwt.name, exp: r.jwt.exp, rps: r.jwt.rps, fixedParams: new Map(r.jwt.fixedParams) });
  }

  get isJwt(): boolean {
    return this.jwt !== undefined;
  }

  private has(type: string): boolean {
    return this.token.scopes.some((s) => s.type === type);
  }

  private hasOn(type: string, resource: string): boolean {
    return this.token.scopes.some((s) => s.type === type && s.resource === resource);
  }

  get isAdmin(): boolean {
    return this.has('ADMIN');
  }

  /** The server-level user token (`user_token` of GET /tokens): manages workspaces. */
  get isUser(): boolean {
    return this.token.workspaceId === null && this.has('USER');
  }

  /** The user's admin token (`admin_token` of GET /tokens): ADMIN here, and sees every workspace. */
  get isUserAdmin(): boolean {
    return !this.jwt && this.isAdmin && this.token.userAdmin === true;
  }

  /**
   * Whether the caller may see a token's value: ADMIN sees every value but the user's admin token's
   * (which reaches every workspace); others see their own and those of non-ADMIN tokens.
   */
  seesValueOf(t: Pick<TokenRecord, 'token' | 'scopes' | 'userAdmin'>): boolean {
    if (t.token === this.token.token) return true;
    if (t.userAdmin) return this.isUserAdmin;
    return this.isAdmin || !t.scopes.some((sc) => sc.type === 'ADMIN');
  }

  requireUser(): void {
    if (!this.isUser) throw forbidden('token needs scope USER: use the user token to manage workspaces');
  }

  /** ADMIN or TOKENS: may list, create, change, refresh and delete tokens and mint JWTs. */
  get canManageTokens(): boolean {
    return this.isAdmin || this.has('TOKENS');
  }

  /** ADMIN or DATASOURCES:CREATE. */
  get canCreateDatasources(): boolean {
    return this.isAdmin || this.has('DATASOURCES:CREATE');
  }

  /** CREATE appends anywhere; DATASOURCES:APPEND:<ds> (a static one without resource: any). */
  canAppend(dsId: string): boolean {
    return this.canCreateDatasources || this.token.scopes.some((s) => s.type === 'DATASOURCES:APPEND' && (s.resource === dsId || (!s.resource && !this.jwt)));
  }

  /**
   * The one write rule: every path that puts rows into a data source or changes it asks this
   * (Data Sources and Events APIs, materialized views and their populates, copies, and edits of
   * the pipes a copy or a materialized view reads).
   * - `append` (rows added): ADMIN, DATASOURCES:CREATE or DATASOURCES:APPEND:<ds>;
   * - `change` (rows replaced or removed, or the data source itself changed: replace, truncate,
   *   delete rows, alter, rename, a copy in replace mode, a populate that truncates, a
   *   materialization that overrides its target): ADMIN or DATASOURCES:CREATE;
   * - `create` (a new data source, also a materialization's new target): ADMIN or DATASOURCES:CREATE.
   */
  canWrite(dsId: string | null, kind: WriteKind): boolean {
    if (kind === 'append' && dsId !== null) return this.canAppend(dsId);
    return this.canCreateDatasources;
  }

  /**
   * canWrite or 403: `what` names the operation that writes (e.g. "A materialized view"); without
   * it the Data Sources API's own messages.
   */
  requireWrite(ds: { id: string; name: string } | null, kind: WriteKind, what?: string): void {
    if (this.canWrite(ds?.id ?? null, kind)) return;
    if (what === undefined) {
      throw forbidden(
        kind === 'append' && ds ? `Token does not have DATASOURCES:APPEND scope for Data Source "${ds.name}"` : 'token needs scope DATASOURCES:CREATE',
      );
    }
    if (kind === 'append' && ds)
      throw forbidden(`${what} writes into the Data Source "${ds.name}": the token needs DATASOURCES:APPEND on it (or DATASOURCES:CREATE)`);
    if (kind === 'change' && ds) throw forbidden(`${what} replaces or removes rows of the Data Source "${ds.name}": the token needs DATASOURCES:CREATE`);
    throw forbidden(`${what} creates a Data Source: the token needs DATASOURCES:CREATE`);
  }

  canDrop(dsId: string): boolean {
    return this.canCreateDatasources || this.hasOn('DATASOURCES:DROP', dsId);
  }

  /**
   * May read the rows of a data source in queries: ADMIN, DATASOURCES:READ:<ds> (with its row
   * filter, see readFilter), and PIPES:CREATE (which may build pipes over any data source).
   * DATASOURCES:CREATE and APPEND do not read (reference §4.1).
   */
  canRead(dsId: string): boolean {
    return this.isAdmin || this.has('PIPES:CREATE') || this.hasOn('DATASOURCES:READ', dsId);
  }

  /**
   * The SQL filter of the token's DATASOURCES:READ scope(s) for a data source (checked when the
   * token was created), several ANDed; undefined when reads of it are not filtered.
   */
  readFilter(dsId: string): string | undefined {
    if (this.isAdmin) return undefined;
    const filters = this.token.scopes.filter((s) => s.type === 'DATASOURCES:READ' && s.resource === dsId && s.filter).map((s) => s.filter!);
    if (filters.length === 0) return undefined;
    return filters.length === 1 ? filters[0] : filters.map((f) => `(${f})`).join(' AND ');
  }

  /**
   * Whether the data source shows in the Data Sources API: ADMIN and DATASOURCES:CREATE see
   * all; others the ones they may read and the ones their readable pipes read.
   */
  seesDatasource(ds: { id: string; name: string }, pipes: readonly PipeRecord[]): boolean {
    if (this.canCreateDatasources || this.canRead(ds.id)) return true;
    return pipes.some((p) => this.hasOn('PIPES:READ', p.id) && p.nodes.some((n) => n.dependencies.includes(ds.name)));
  }

  /** ADMIN or PIPES:CREATE. */
  get canCreatePipes(): boolean {
    return this.isAdmin || this.has('PIPES:CREATE');
  }

  canReadPipe(pipeId: string): boolean {
    return this.canCreatePipes || this.hasOn('PIPES:READ', pipeId);
  }

  canDropPipe(pipeId: string): boolean {
    return this.canCreatePipes || this.hasOn('PIPES:DROP', pipeId);
  }

  /** The `fixed_params` a JWT's PIPES:READ scope sets for a pipe; undefined for static tokens. */
  fixedParams(pipeId: string): Record<string, ParamValue> | undefined {
    return this.jwt?.fixedParams.get(pipeId);
  }

  /**
   * Request parameters with a JWT's fixed_params on top, so a request can not widen them: those
   * of one pipe (an endpoint), or without a pipe those of every scope (a key two scopes fix to
   * different values is left as the request sent it; checkPinned then refuses what disagrees).
   */
  pinParams<T>(params: Record<string, T>, pipeId?: string): Record<string, T | ParamValue> {
    if (!this.jwt) return params;
    if (pipeId !== undefined) return { ...params, ...this.fixedParams(pipeId) };
    const merged: Record<string, ParamValue> = {};
    const clash = new Set<string>();
    for (const fixed of this.jwt.fixedParams.values()) {
      for (const [k, v] of Object.entries(fixed)) {
        if (k in merged && !sameValue(merged[k], v)) clash.add(k);
        else merged[k] = v;
      }
    }
    for (const k of clash) delete merged[k];
    return { ...params, ...merged };
  }

  /**
   * Refuses a query that reads a pipe with parameters other than the JWT's fixed_params for it
   * (e.g. `q=` of one endpoint naming another pipe the token reads with other fixed values).
   */
  checkPinned(tables: readonly ReadTable[], params: Record<string, unknown>): void {
    if (!this.jwt) return;
    for (const t of tables) {
      if (t.kind !== 'pipe') continue;
      for (const [k, v] of Object.entries(this.fixedParams(t.id) ?? {})) {
        if (!sameValue(params[k], v)) throw forbidden(`The token fixes the parameter '${k}' of '${t.name}' to another value`);
      }
    }
  }

  requirePipesCreate(): void {
    if (!this.canCreatePipes) throw forbidden('token needs scope PIPES:CREATE');
  }

  requireAdmin(): void {
    if (!this.isAdmin) throw forbidden('token needs scope admin');
  }

  requireCreate(): void {
    if (!this.canCreateDatasources) throw forbidden('token needs scope DATASOURCES:CREATE');
  }

  requireTokens(): void {
    if (!this.canManageTokens) throw forbidden('token needs scope TOKENS');
  }

  /**
   * Whether this token holds at least every scope in `scopes`, so that managing a token with
   * them grants nothing new. ADMIN holds everything. TOKENS holds every scope but ADMIN (and the
   * server-level USER): it may grant itself any of them anyway. Otherwise a scope is held through
   * the same scope on the same resource with no row filter or the same one (a filtered READ does
   * not hold an unfiltered one), or through the broader scope that implies it: DATASOURCES:CREATE
   * appends to and drops any data source, PIPES:CREATE reads and drops any pipe and reads any
   * data source unfiltered.
   */
  holds(scopes: readonly Scope[]): boolean {
    if (this.isAdmin) return true;
    return scopes.every((sc) => {
      if (sc.type === 'ADMIN' || sc.type === 'USER') return false;
      if (this.has('TOKENS')) return true;
      if ((sc.type === 'DATASOURCES:APPEND' || sc.type === 'DATASOURCES:DROP') && this.canCreateDatasources) return true;
      if ((sc.type === 'PIPES:READ' || sc.type === 'PIPES:DROP' || (sc.type === 'DATASOURCES:READ' && !sc.filter)) && this.canCreatePipes) return true;
      return this.token.scopes.some(
        (own) => own.type === sc.type && (own.resource ?? null) === (sc.resource ?? null) && (!own.filter || own.filter === sc.filter),
      );
    });
  }

  /**
   * A token may not create, change, refresh or delete a token that holds more than it does
   * (otherwise a TOKENS token could refresh, demote or delete every ADMIN token).
   */
  requireHolds(t: Pick<TokenRecord, 'name' | 'scopes' | 'userAdmin'>, action: 'change' | 'refresh' | 'delete'): void {
    if (!this.holds(t.scopes) || (t.userAdmin && !this.isUserAdmin))
      throw forbidden(`The token can not ${action} the token "${t.name}": it holds scopes this token does not hold`);
  }
}

/** What a write does to a data source (see Auth.canWrite). */
export type WriteKind = 'append' | 'change' | 'create';

export interface LocalTokens {
  user_token: string;
  admin_token: string;
  workspace_admin_token: string;
}

/** Finds a workspace's data sources and pipes by name or id (JWT scopes name them). */
export interface ResourceLookup {
  datasource(ws: Workspace, nameOrId: string): Promise<{ id: string; name: string } | null>;
  pipe(ws: Workspace, nameOrId: string): Promise<{ id: string; name: string } | null>;
}

/** Tokens per workspace (reference §12). */
export const MAX_TOKENS = 100_000;

/** The claims of a JWT minted by the Tokens API. */
export interface JwtClaims {
  name: string;
  exp: number;
  scopes: Array<Record<string, unknown>>;
  limits?: { rps?: number };
}

export class AccessService {
  private readonly byValue = new Map<string, TokenRecord>();
  /** ADMIN token values per workspace: the secrets JWTs are signed with. */
  private readonly adminValues = new Map<string, string[]>();
  private workspaces = new Map<string, Workspace>();

  private constructor(
    private readonly catalog: Catalog,
    private readonly secret: Buffer,
  ) {
    // Every copy forgets a changed token at once (a revoked or refreshed value is refused
    // everywhere within moments), and sees workspaces another copy created or removed.
    catalog.onChange((c) => {
      if (c.table === '*' || c.table === 'tokens') {
        this.byValue.clear();
        if (c.workspaceId && c.table !== '*') this.adminValues.delete(c.workspaceId);
        else this.adminValues.clear();
      }
      if (c.table === '*' || c.table === 'workspaces') void this.reloadWorkspaces().catch(() => undefined);
    });
  }

  private async reloadWorkspaces(): Promise<void> {
    this.workspaces = new Map((await this.catalog.listWorkspaces()).map((w) => [w.id, w]));
  }

  /** A workspace by id, loaded again once when this copy does not know it yet (made by another copy). */
  private async workspaceOf(id: string): Promise<Workspace | undefined> {
    if (!this.workspaces.has(id)) await this.reloadWorkspaces();
    return this.workspaces.get(id);
  }

  /** Opens the service with its signing key (never kept in the catalog, see keys.ts) and loads the workspaces. */
  static async open(catalog: Catalog, signingKey: Buffer): Promise<AccessService> {
    const svc = new AccessService(catalog, signingKey);
    for (const ws of await catalog.listWorkspaces()) svc.workspaces.set(ws.id, ws);
    return svc;
  }

  private sign(payload: string): string {
    return crypto.createHmac('sha256', this.secret).update(payload).digest('base64url');
  }

  /**
   * A new token value: `p.<payload>.<signature>`, like Tinybird's `p.` tokens. The payload
   * carries a fresh random id, so every issue (creation, refresh) is a different string.
   */
  newTokenValue(workspaceId: string | null): string {
    const payload = Buffer.from(JSON.stringify({ u: workspaceId ?? '', id: crypto.randomUUID(), host: TOKEN_HOST })).toString('base64url');
    return `p.${payload}.${this.sign(payload)}`;
  }

  private verifySignature(value: string): boolean {
    const m = /^p\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(value);
    if (!m) return false;
    const expected = Buffer.from(this.sign(m[1]));
    const given = Buffer.from(m[2]);
    return expected.length === given.length && crypto.timingSafeEqual(expected, given);
  }

  /**
   * Creates the default workspace and its tokens on first start, in one transaction (with a shared
   * catalog the first copy to start does, the others find them); returns the local tokens and
   * whether this call created them.
   */
  async bootstrap(): Promise<LocalTokens & { created: boolean }> {
    let created = false;
    if (!this.workspaces.size) {
      created = await this.catalog.transaction(async (tx) => {
        await tx.lock('bootstrap');
        if ((await tx.listWorkspaces()).length) return false;
        const id = crypto.randomUUID();
        const ws: Workspace = { id, name: 'default', database: `w_${id.replace(/-/g, '')}`, createdAt: nowIso() };
        await tx.insertWorkspace(ws);
        await tx.insertToken(this.newToken(null, 'user token', [{ type: 'USER' }]));
        await tx.insertToken({ ...this.newToken(ws.id, 'admin token', [{ type: 'ADMIN' }]), userAdmin: true });
        await tx.insertToken(this.newToken(ws.id, 'workspace admin token', [{ type: 'ADMIN' }]));
        return true;
      });
      await this.reloadWorkspaces();
    }
    const ws = this.defaultWorkspace;
    const userTok = (await this.catalog.listTokens(null)).find((t) => t.name === 'user token');
    const wsToks = await this.catalog.listTokens(ws.id);
    // Tokens may have been renamed or deleted through the Tokens API: any ADMIN token will do.
    const anyAdmin = wsToks.find((t) => t.scopes.some((sc) => sc.type === 'ADMIN'));
    const admin = wsToks.find((t) => t.name === 'admin token') ?? anyAdmin;
    const wsAdmin = wsToks.find((t) => t.name === 'workspace admin token') ?? anyAdmin;
    // The admin token handed out is the user's (Tinybird Local's ADMIN_USER): it lists every
    // workspace with its token (the TypeScript SDK's local flow). Marked once, also on old data.
    // Copies starting at once on old data may both mark it: the one that loses finds it marked.
    if (admin && !admin.userAdmin && admin !== wsAdmin)
      await this.updateToken({ ...admin, userAdmin: true }).catch((err) => {
        if (!(err instanceof VersionConflict)) throw err;
      });
    return { user_token: userTok?.token ?? '', admin_token: admin?.token ?? '', workspace_admin_token: wsAdmin?.token ?? '', created };
  }

  get defaultWorkspace(): Workspace {
    return [...this.workspaces.values()][0];
  }

  /** Every workspace of the server, oldest first. */
  listWorkspaces(): Workspace[] {
    return [...this.workspaces.values()];
  }

  workspaceById(id: string): Workspace | undefined {
    return this.workspaces.get(id);
  }

  /** The server's one organization, with an id stable across restarts. */
  get organization(): { id: string; name: string } {
    const h = crypto.createHmac('sha256', this.secret).update('organization').digest('hex');
    return { id: `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`, name: 'default' };
  }

  /** The server's one user (owner of every workspace), with an id stable across restarts. */
  get user(): { id: string; email: string } {
    const h = crypto.createHmac('sha256', this.secret).update('user').digest('hex');
    return { id: `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`, email: 'admin@localhost' };
  }

  /**
   * The token of a workspace that the user's workspace list shows (what the TypeScript SDK builds
   * with): its first ADMIN token that is not the user's admin token.
   */
  async workspaceToken(ws: Workspace): Promise<TokenRecord | undefined> {
    return (await this.catalog.listTokens(ws.id)).find((t) => !t.userAdmin && t.scopes.some((sc) => sc.type === 'ADMIN'));
  }

  /** A new, isolated workspace (own engine database and tokens) with its admin token. */
  async createWorkspace(name: string): Promise<{ workspace: Workspace; admin: TokenRecord }> {
    checkNameLength(name, 'workspace');
    if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(name)) {
      throw badRequest(`Invalid workspace name "${name}". Name must start with a letter and contain only letters, numbers, and underscores.`);
    }
    if ([...this.workspaces.values()].some((w) => w.name === name)) throw conflict(`Workspace "${name}" already exists`);
    const id = crypto.randomUUID();
    const workspace: Workspace = { id, name, database: `w_${id.replace(/-/g, '')}`, createdAt: nowIso() };
    await this.catalog.insertWorkspace(workspace);
    this.workspaces.set(id, workspace);
    const admin = await this.createToken(id, 'admin token', [{ type: 'ADMIN' }]);
    await this.createToken(id, 'workspace admin token', [{ type: 'ADMIN' }]);
    return { workspace, admin };
  }

  /** Forgets cached lookups that a change of `t` makes stale. */
  private changed(t: TokenRecord, oldValue?: string): void {
    if (oldValue !== undefined) this.byValue.delete(oldValue);
    this.byValue.delete(t.token);
    if (t.workspaceId) this.adminValues.delete(t.workspaceId);
  }

  private newToken(workspaceId: string | null, name: string, scopes: Scope[], description = '', origin?: TokenRecord['origin']): TokenRecord {
    const t: TokenRecord = {
      id: newResourceId(),
      version: 1,
      workspaceId,
      name,
      token: this.newTokenValue(workspaceId),
      scopes,
      description,
      createdAt: nowIso(),
    };
    if (origin) t.origin = origin;
    return t;
  }

  async createToken(workspaceId: string | null, name: string, scopes: Scope[], description = '', origin?: TokenRecord['origin']): Promise<TokenRecord> {
    const t = this.newToken(workspaceId, name, scopes, description, origin);
    await this.catalog.insertToken(t);
    this.changed(t);
    return t;
  }

  /** The workspace's static tokens, oldest first. */
  listTokens(ws: Workspace): Promise<TokenRecord[]> {
    return this.catalog.listTokens(ws.id);
  }

  /** A token of the workspace by id, name or value; null when there is none. */
  async findToken(ws: Workspace, ref: string): Promise<TokenRecord | null> {
    const all = await this.listTokens(ws);
    return all.find((t) => t.id === ref) ?? all.find((t) => t.token === ref) ?? all.find((t) => t.name === ref) ?? null;
  }

  /** Saves a changed name, description or scope list (the value stays). */
  async updateToken(t: TokenRecord): Promise<TokenRecord> {
    const saved = await this.catalog.updateToken(t);
    this.changed(saved);
    return saved;
  }

  /** A new value for the token, same scopes; the old value stops working at once. */
  async refreshToken(t: TokenRecord): Promise<TokenRecord> {
    const refreshed = await this.catalog.updateToken({ ...t, token: this.newTokenValue(t.workspaceId) });
    this.changed(refreshed, t.token);
    return refreshed;
  }

  async deleteToken(t: TokenRecord): Promise<void> {
    await this.catalog.deleteToken(t.id);
    this.changed(t);
  }

  /** Values of the workspace's ADMIN tokens: a JWT signed with any of them is genuine. */
  private async jwtSecrets(ws: Workspace): Promise<string[]> {
    let values = this.adminValues.get(ws.id);
    if (!values) {
      values = (await this.catalog.listTokens(ws.id)).filter((t) => t.scopes.some((s) => s.type === 'ADMIN')).map((t) => t.token);
      this.adminValues.set(ws.id, values);
    }
    return values;
  }

  /** Signs a JWT for the workspace with its admin token (`admin token`, else its oldest ADMIN token). */
  async mintJwt(ws: Workspace, claims: JwtClaims): Promise<string> {
    const admins = (await this.catalog.listTokens(ws.id)).filter((t) => t.scopes.some((s) => s.type === 'ADMIN'));
    const signer = admins.find((t) => t.name === 'admin token') ?? admins[0];
    if (!signer) throw badRequest('The Workspace has no admin token to sign JWTs with');
    const payload: Record<string, unknown> = { workspace_id: ws.id, name: claims.name, exp: claims.exp, scopes: claims.scopes };
    if (claims.limits) payload.limits = claims.limits;
    return signJwt(payload, signer.token);
  }

  /**
   * Resolves a token value to the caller, or throws 403 `invalid authentication token`. Values
   * starting with `p.` are static tokens (signature checked before any lookup); anything else is
   * taken for a JWT, whose scopes name resources that `lookup` resolves.
   */
  async authenticate(value: string | undefined, lookup?: ResourceLookup): Promise<Auth> {
    if (!value) throw forbidden(INVALID_TOKEN);
    if (!value.startsWith('p.')) return this.authenticateJwt(value, lookup);
    // Values in byValue passed the signature check when they were looked up.
    let t = this.byValue.get(value);
    if (!t) {
      if (!this.verifySignature(value)) throw forbidden(INVALID_TOKEN);
      t = (await this.catalog.findToken(value)) ?? undefined;
      if (!t) throw forbidden(INVALID_TOKEN);
      this.byValue.set(value, t);
    }
    const ws = t.workspaceId ? await this.workspaceOf(t.workspaceId) : this.defaultWorkspace;
    if (!ws) throw forbidden(INVALID_TOKEN);
    return new Auth(t, ws);
  }

  /**
   * A JWT (§7.4): HS256 signed with an ADMIN token of the workspace in `workspace_id`, with
   * `exp` in the future and scopes of the JWT kinds. A scope whose resource the workspace does
   * not have grants nothing; anything malformed refuses the whole token.
   */
  private async authenticateJwt(value: string, lookup?: ResourceLookup): Promise<Auth> {
    const invalid = () => forbidden(INVALID_TOKEN);
    const jwt = decodeJwt(value);
    if (!jwt) throw invalid();
    const p = jwt.payload;
    const ws = typeof p.workspace_id === 'string' ? await this.workspaceOf(p.workspace_id) : undefined;
    if (!ws || !verifyHs256(jwt, await this.jwtSecrets(ws))) throw invalid();
    if (p.exp === undefined) throw forbidden("JWT tokens is missing the 'exp' claim");
    if (typeof p.exp !== 'number' || !Number.isFinite(p.exp)) throw invalid();
    if (p.exp <= Date.now() / 1000) throw forbidden(`${INVALID_TOKEN}. Signature has expired`);
    if (!Array.isArray(p.scopes)) throw invalid();
    const scopes: Scope[] = [];
    const fixedParams = new Map<string, Record<string, ParamValue>>();
    for (const raw of p.scopes as unknown[]) {
      if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw invalid();
      const { type, resource, fixed_params: fixed, filter } = raw as Record<string, unknown>;
      if (typeof type !== 'string' || !(JWT_SCOPES as readonly string[]).includes(type)) throw invalid();
      if (resource !== undefined && resource !== null && typeof resource !== 'string') throw invalid();
      let scopeFilter: string | undefined;
      if (filter !== undefined && filter !== null && filter !== '') {
        if (type !== 'DATASOURCES:READ' || typeof filter !== 'string') throw invalid();
        try {
          scopeFilter = checkExpression(filter, 'filter');
        } catch {
          throw invalid();
        }
      }
      const params = fixed === undefined || fixed === null || fixed === '' ? undefined : fixedParamsOf(fixed);
      if (params === null || (params && type !== 'PIPES:READ')) throw invalid();
      if (!resource || !lookup) continue;
      const found = type === 'PIPES:READ' ? await lookup.pipe(ws, resource) : await lookup.datasource(ws, resource);
      if (!found) continue;
      const st = type as ScopeType;
      scopes.push(scopeFilter ? { type: st, resource: found.id, filter: scopeFilter } : { type: st, resource: found.id });
      if (params) fixedParams.set(found.id, { ...fixedParams.get(found.id), ...params });
    }
    let rps: number | undefined;
    if (p.limits !== undefined && p.limits !== null) {
      if (typeof p.limits !== 'object' || Array.isArray(p.limits)) throw invalid();
      const r = (p.limits as Record<string, unknown>).rps;
      if (r !== undefined && r !== null) {
        if (typeof r !== 'number' || !(r > 0)) throw invalid();
        rps = r;
      }
    }
    const name = typeof p.name === 'string' ? p.name : '';
    const record: TokenRecord = { id: '', version: 0, workspaceId: ws.id, name, token: value, scopes, description: '', createdAt: '' };
    return new Auth(record, ws, { name, exp: p.exp, rps, fixedParams });
  }
}

/** Host (region) written in static token payloads and token JSON. */
export const TOKEN_HOST = 'pipit';

/** `fixed_params` as template parameters: scalars, arrays of scalars, objects as JSON text; null when malformed. */
function fixedParamsOf(v: unknown): Record<string, ParamValue> | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const out: Record<string, ParamValue> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean') out[k] = x;
    else if (Array.isArray(x) && x.every((e) => typeof e === 'string' || typeof e === 'number' || typeof e === 'boolean')) out[k] = x;
    else if (x !== null && typeof x === 'object') out[k] = JSON.stringify(x);
    else return null;
  }
  return out;
}
