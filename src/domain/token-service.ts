/**
 * Tokens (`/v0/tokens`, reference §7): creating, changing, refreshing and deleting static tokens and
 * minting JWTs. The Tokens API route parses a request into a spec (NewTokenSpec, TokenChange,
 * JwtSpec) and shapes Tinybird's JSON; this service checks the scopes asked for (resources by name
 * or id, stored by id), that the caller may grant them (Auth.holds: only ADMIN grants ADMIN) and
 * manages the token (Auth.requireHolds), that names are free, that a workspace keeps an ADMIN
 * token, and keeps the local token discovery (`GET /tokens`) in step. Rejects with Tinybird's 4xx texts.
 */
import type { Scope, TokenRecord, Workspace } from '../catalog/catalog.js';
import { badRequest, forbidden, notFound, PipitError } from '../basics/errors.js';
import { checkExpression, checkNameLength } from '../schema/index.js';
import { type AccessService, type Auth, JWT_SCOPES, type LocalTokens, MAX_TOKENS, RESOURCE_SCOPES, STATIC_SCOPES, isStaticScope } from './access.js';
import type { DatasourceService } from './datasource-service.js';
import type { PipeService } from './pipe-service.js';

/** Scopes whose resource may carry a row filter (the JSON always shows it). */
export const READ_SCOPES = new Set(['DATASOURCES:READ', 'PIPES:READ']);
const JWT_DOCUMENTATION = 'https://docs.tinybird.co/api-reference/token-api.html#post--v0-tokens-?';
const NOT_FOUND = 'Static Token not found';
const TOKEN_NOT_FOUND = 'Token not found';
const CANNOT_SEE = 'Token has not enough permissions to get information about this token';

/** A scope as asked for: from `TYPE[:resource[:filter]]` text or a `{type, resource, filter}` object. */
export interface ScopeSpec {
  text: string;
  type: string;
  resource?: string;
  filter?: string;
}

/** A static token to create (`POST /v0/tokens`). */
export interface NewTokenSpec {
  name?: string;
  description?: string;
  /** Every scope given; null when none was. */
  scopes: ScopeSpec[] | null;
  /** `origin=` (`C`, the default, or `P`/`DS` with `resourceId`). */
  origin?: string;
  resourceId?: string;
}

/** A change to a static token (`PUT /v0/tokens/:token`): what is not given is kept. */
export interface TokenChange {
  name?: string;
  description?: string;
  /** Scopes given (also none, from an empty `scope=`) replace all the token's scopes; null keeps them. */
  scopes: ScopeSpec[] | null;
}

/** A JWT to mint (`POST /v0/tokens?expiration_time=`): the request's values as sent, checked here in Tinybird's order. */
export interface JwtSpec {
  expirationTime?: string;
  name?: string;
  /** The JSON body's `scopes`, as sent. */
  scopes: unknown;
  /** The JSON body's `limits`, as sent. */
  limits: unknown;
}

/** A minted JWT and the claims it carries. */
export interface MintedJwt {
  token: string;
  name: string;
  exp: number;
  scopes: Array<Record<string, unknown>>;
  limits: { rps: number | null };
}

const isAdminScopes = (scopes: readonly Scope[]) => scopes.some((sc) => sc.type === 'ADMIN');

export class TokenService {
  constructor(
    private readonly deps: {
      access: AccessService;
      datasources: DatasourceService;
      pipes: PipeService;
      /** The local token discovery's values (`GET /tokens`), kept in step with refreshes and deletes. */
      localTokens: LocalTokens;
    },
  ) {}

  /** Names of the workspace's data sources and pipes by id (scopes are stored by id). */
  async resourceNames(ws: Workspace): Promise<Map<string, string>> {
    const [ds, pipes] = await Promise.all([this.deps.datasources.list(ws), this.deps.pipes.list(ws)]);
    return new Map([...ds, ...pipes].map((r) => [r.id, r.name]));
  }

  list(auth: Auth): Promise<TokenRecord[]> {
    return this.deps.access.listTokens(auth.workspace);
  }

  /**
   * A token the caller may read, by id, name or value (else by `fallback`, when given; `viaFallback`
   * says which found it). A token may read itself; others need ADMIN or TOKENS, which see every
   * token, so an unknown one is a 404 for them. For any other caller unknown and hidden look alike (403).
   */
  async readable(auth: Auth, ref: string, fallback?: string): Promise<{ token: TokenRecord; viaFallback: boolean }> {
    let t = await this.deps.access.findToken(auth.workspace, ref);
    const viaFallback = !t && fallback !== undefined;
    if (viaFallback) t = await this.deps.access.findToken(auth.workspace, fallback);
    if (!t && auth.canManageTokens) throw notFound(TOKEN_NOT_FOUND);
    if (!t || (!auth.canManageTokens && t.id !== auth.token.id)) throw forbidden(CANNOT_SEE);
    return { token: t, viaFallback };
  }

  /**
   * A token the caller manages, by id, name or value; 404 `Static Token not found`. A token that
   * holds more than the caller (an ADMIN token, for a TOKENS one) is not the caller's to manage.
   */
  async managed(auth: Auth, ref: string, action: 'change' | 'refresh' | 'delete'): Promise<TokenRecord> {
    auth.requireTokens();
    const t = await this.deps.access.findToken(auth.workspace, ref);
    if (!t) throw notFound(NOT_FOUND);
    auth.requireHolds(t, action);
    return t;
  }

  /** Creates a static token with scopes the caller holds. */
  async create(auth: Auth, spec: NewTokenSpec): Promise<TokenRecord> {
    const { access, pipes, datasources } = this.deps;
    const { name } = spec;
    if (!name) throw badRequest('Missing argument name');
    if (!spec.scopes || spec.scopes.length === 0) throw badRequest('scope is mandatory');
    const scopes = this.grantable(auth, await this.toScopes(auth, spec.scopes, 'create'));
    let origin: TokenRecord['origin'];
    const originType = spec.origin;
    if (originType && originType !== 'C') {
      const ref = spec.resourceId;
      if (!ref) throw badRequest(`resource_id is required for origin ${originType}`);
      const found = originType === 'P' ? await pipes.find(auth.workspace, ref) : await datasources.find(auth.workspace, ref);
      if (!found) throw badRequest(`datasource or pipe ${ref} does not exist`);
      origin = { type: originType, resourceId: found.id };
    }
    await this.checkNameFree(auth, name);
    if ((await access.listTokens(auth.workspace)).length >= MAX_TOKENS) {
      throw badRequest(`The Workspace has reached the maximum number of tokens (${MAX_TOKENS})`);
    }
    return access.createToken(auth.workspace.id, name, scopes, spec.description ?? '', origin);
  }

  /** Changes a token the caller manages (see managed) by what the change gives. */
  async update(auth: Auth, t: TokenRecord, change: TokenChange): Promise<TokenRecord> {
    const scopes = change.scopes === null ? t.scopes : this.grantable(auth, await this.toScopes(auth, change.scopes, 'update'));
    await this.keepsAnAdmin(auth, t, scopes);
    const name = change.name || t.name;
    if (name !== t.name) await this.checkNameFree(auth, name, t.id);
    return this.deps.access.updateToken({ ...t, name, description: change.description ?? t.description, scopes });
  }

  async delete(auth: Auth, ref: string): Promise<void> {
    const t = await this.managed(auth, ref, 'delete');
    await this.keepsAnAdmin(auth, t, null);
    await this.deps.access.deleteToken(t);
    this.followLocal(t.token, '');
  }

  /** Gives a token a new value. */
  async refresh(auth: Auth, ref: string): Promise<TokenRecord> {
    const t = await this.managed(auth, ref, 'refresh');
    const refreshed = await this.deps.access.refreshToken(t);
    this.followLocal(t.token, refreshed.token);
    return refreshed;
  }

  /** A signed JWT (not stored) with `{name, scopes, limits}`, expiring at `expiration_time`. */
  async mintJwt(auth: Auth, spec: JwtSpec): Promise<MintedJwt> {
    const raw = spec.expirationTime;
    const exp = Number(raw);
    if (!/^\s*\d+\s*$/.test(raw ?? '') || !Number.isSafeInteger(exp) || exp <= Date.now() / 1000) {
      throw new PipitError(
        'bad_request',
        `The specified expiration time: '${raw}' is invalid, must be a future unix epoch timestamp indicating the token expiration time`,
        { documentation: JWT_DOCUMENTATION },
      );
    }
    const { name } = spec;
    if (!name) throw badRequest('Missing argument name');
    checkNameLength(name, 'token');
    if (!Array.isArray(spec.scopes)) throw badRequest('Invalid body, scopes must be a list of scope');
    const scopes: Array<Record<string, unknown>> = [];
    for (const sc of spec.scopes as unknown[]) {
      if (!sc || typeof sc !== 'object' || Array.isArray(sc)) throw badRequest('Invalid body, scopes must be a list of scope');
      const { type, resource, fixed_params: fixed, filter } = sc as Record<string, unknown>;
      if (typeof type !== 'string' || !(JWT_SCOPES as readonly string[]).includes(type))
        throw badRequest(`Invalid scope, only ${JWT_SCOPES.join(', ')} are allowed`);
      if (typeof resource !== 'string' || !resource) throw badRequest(`When creating a jwt token for ${type}, a resource name is required`);
      const found = type === 'PIPES:READ' ? await this.deps.pipes.find(auth.workspace, resource) : await this.deps.datasources.find(auth.workspace, resource);
      if (!found) throw badRequest(`Resource '${resource}' not found`);
      const out: Record<string, unknown> = { type, resource };
      if (fixed !== undefined && fixed !== null && fixed !== '') {
        if (type !== 'PIPES:READ') throw badRequest('fixed_params can only be used with the PIPES:READ scope');
        if (typeof fixed !== 'object' || Array.isArray(fixed)) throw badRequest('fixed_params must be an object of parameter values');
        out.fixed_params = fixed;
      }
      if (filter !== undefined && filter !== null && filter !== '') {
        if (type !== 'DATASOURCES:READ' || typeof filter !== 'string') throw badRequest("filters can't only be applied to READ scope");
        out.filter = checkExpression(filter, 'filter');
      }
      scopes.push(out);
    }
    let rps: number | null = null;
    const { limits } = spec;
    if (limits !== undefined && limits !== null) {
      const r = typeof limits === 'object' && !Array.isArray(limits) ? (limits as Record<string, unknown>).rps : undefined;
      if (r !== undefined && r !== null && (typeof r !== 'number' || !(r > 0))) throw badRequest('Invalid limits, rps must be a positive number');
      if (typeof r === 'number') rps = r;
    }
    const token = await this.deps.access.mintJwt(auth.workspace, { name, exp, scopes, ...(rps !== null ? { limits: { rps } } : {}) });
    return { token, name, exp, scopes, limits: { rps } };
  }

  /** The scopes asked for, checked and with resources resolved to ids. */
  private async toScopes(auth: Auth, specs: ScopeSpec[], mode: 'create' | 'update'): Promise<Scope[]> {
    const out: Scope[] = [];
    for (const spec of specs) {
      const { type } = spec;
      if (type === 'ADMIN_USER' || type === 'AUTH') throw badRequest('Cannot set ADMIN_USER scope, please provide a different target scope');
      if (!isStaticScope(type)) {
        throw badRequest(mode === 'create' ? `Unknown scope ${spec.text}` : `Invalid provided scope, valid ones are: ${STATIC_SCOPES.join(', ')}`);
      }
      if (type === 'ADMIN' && !auth.isAdmin) throw badRequest('Cannot set ADMIN scope, please provide a different target scope');
      if (spec.filter && !READ_SCOPES.has(type)) throw badRequest("filters can't only be applied to READ scope");
      const scope: Scope = { type };
      if (RESOURCE_SCOPES.has(type)) {
        if (!spec.resource) throw badRequest(`scope '${type}' requires a resource`);
        const found = type.startsWith('PIPES:')
          ? await this.deps.pipes.find(auth.workspace, spec.resource)
          : await this.deps.datasources.find(auth.workspace, spec.resource);
        if (!found) throw badRequest(`datasource or pipe ${spec.resource} does not exist`);
        scope.resource = found.id;
        if (spec.filter) scope.filter = checkExpression(spec.filter, 'filter');
      }
      if (!out.some((x) => x.type === scope.type && x.resource === scope.resource && x.filter === scope.filter)) out.push(scope);
    }
    return out;
  }

  private async checkNameFree(auth: Auth, name: string, self?: string): Promise<void> {
    checkNameLength(name, 'token');
    if ((await this.deps.access.listTokens(auth.workspace)).some((t) => t.name === name && t.id !== self)) {
      throw badRequest(`Auth token with name "${name}" already exists`);
    }
  }

  /**
   * A workspace keeps at least one ADMIN token: without one nobody could manage its variables or
   * tokens, and its scheduled copies and sinks (which run with an admin's authority) would stop.
   */
  private async keepsAnAdmin(auth: Auth, t: TokenRecord, scopesAfter: readonly Scope[] | null): Promise<void> {
    if (!isAdminScopes(t.scopes) || (scopesAfter && isAdminScopes(scopesAfter))) return;
    const admins = (await this.deps.access.listTokens(auth.workspace)).filter((x) => isAdminScopes(x.scopes));
    if (admins.length <= 1) throw forbidden('The last ADMIN token of a workspace can not be deleted or lose its ADMIN scope');
  }

  /** New scopes may only be ones the caller holds itself. */
  private grantable(auth: Auth, scopes: Scope[]): Scope[] {
    if (!auth.holds(scopes)) throw forbidden('The token can not grant scopes it does not hold');
    return scopes;
  }

  /** Keeps the local token discovery (`GET /tokens`) in step with a refreshed or deleted token. */
  private followLocal(old: string, now: string): void {
    const local = this.deps.localTokens;
    for (const k of Object.keys(local) as Array<keyof LocalTokens>) if (local[k] === old) local[k] = now;
  }
}
