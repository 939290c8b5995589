/**
 * Who may do what: token values (opaque and HMAC-signed, so a forged or truncated token is
 * refused before any catalog lookup), the default workspace created on first start, and the
 * scope checks every route calls. Rejects with Tinybird's 403 messages.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Catalog, Scope, TokenRecord, Workspace } from '../catalog/catalog.js';
import { forbidden } from './errors.js';
import { newResourceId } from './ids.js';
import { nowIso } from './time.js';

export const INVALID_TOKEN = 'invalid authentication token';

/** The authenticated caller of one request. */
export class Auth {
  constructor(
    readonly token: TokenRecord,
    readonly workspace: Workspace,
  ) {}

  private has(type: string, resource?: string): boolean {
    return this.token.scopes.some((s) => s.type === type && (resource === undefined || s.resource === undefined || s.resource === resource));
  }

  get isAdmin(): boolean {
    return this.has('ADMIN');
  }

  /** ADMIN or DATASOURCES:CREATE. */
  get canCreateDatasources(): boolean {
    return this.isAdmin || this.has('DATASOURCES:CREATE');
  }

  canAppend(dsId: string): boolean {
    return this.canCreateDatasources || this.token.scopes.some((s) => s.type === 'DATASOURCES:APPEND' && (!s.resource || s.resource === dsId));
  }

  canDrop(dsId: string): boolean {
    return this.canCreateDatasources || this.token.scopes.some((s) => s.type === 'DATASOURCES:DROP' && s.resource === dsId);
  }

  canRead(dsId: string): boolean {
    return this.canCreateDatasources || this.token.scopes.some((s) => (s.type === 'DATASOURCES:READ' || s.type === 'DATASOURCES:APPEND') && s.resource === dsId);
  }

  /** ADMIN or PIPES:CREATE. */
  get canCreatePipes(): boolean {
    return this.isAdmin || this.has('PIPES:CREATE');
  }

  canReadPipe(pipeId: string): boolean {
    return this.canCreatePipes || this.token.scopes.some((s) => s.type === 'PIPES:READ' && s.resource === pipeId);
  }

  canDropPipe(pipeId: string): boolean {
    return this.canCreatePipes || this.token.scopes.some((s) => s.type === 'PIPES:DROP' && s.resource === pipeId);
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
}

export interface LocalTokens {
  user_token: string;
  admin_token: string;
  workspace_admin_token: string;
}

export class AccessService {
  private readonly byValue = new Map<string, TokenRecord>();
  private workspaces = new Map<string, Workspace>();

  private constructor(
    private readonly catalog: Catalog,
    private readonly secret: Buffer,
  ) {}

  /** Loads the signing key (kept apart from the catalog) and the workspaces. */
  static async open(catalog: Catalog, dataDir: string): Promise<AccessService> {
    const keyFile = path.join(dataDir, 'secret.key');
    if (!fs.existsSync(keyFile)) fs.writeFileSync(keyFile, crypto.randomBytes(32).toString('hex'), { mode: 0o600, flag: 'wx' });
    const svc = new AccessService(catalog, Buffer.from(fs.readFileSync(keyFile, 'utf8').trim(), 'hex'));
    for (const ws of await catalog.listWorkspaces()) svc.workspaces.set(ws.id, ws);
    return svc;
  }

  private sign(payload: string): string {
    return crypto.createHmac('sha256', this.secret).update(payload).digest('base64url');
  }

  /** A new token value: `p.<payload>.<signature>`, like Tinybird's `p.` tokens. */
  newTokenValue(tokenId: string, workspaceId: string | null): string {
    const payload = Buffer.from(JSON.stringify({ u: workspaceId ?? '', id: tokenId, host: 'pipit' })).toString('base64url');
    return `p.${payload}.${this.sign(payload)}`;
  }

  private verifySignature(value: string): boolean {
    const m = /^p\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(value);
    if (!m) return false;
    const expected = Buffer.from(this.sign(m[1]));
    const given = Buffer.from(m[2]);
    return expected.length === given.length && crypto.timingSafeEqual(expected, given);
  }

  /** Creates the default workspace and its tokens on first start; returns the local tokens. */
  async bootstrap(): Promise<LocalTokens> {
    let ws = [...this.workspaces.values()][0];
    if (!ws) {
      const id = crypto.randomUUID();
      ws = { id, name: 'default', database: `w_${id.replace(/-/g, '')}`, createdAt: nowIso() };
      await this.catalog.insertWorkspace(ws);
      this.workspaces.set(ws.id, ws);
      await this.createToken(null, 'user token', [{ type: 'USER' }]);
      await this.createToken(ws.id, 'admin token', [{ type: 'ADMIN' }]);
      await this.createToken(ws.id, 'workspace admin token', [{ type: 'ADMIN' }]);
    }
    const userTok = (await this.catalog.listTokens(null)).find((t) => t.name === 'user token');
    const wsToks = await this.catalog.listTokens(ws.id);
    const admin = wsToks.find((t) => t.name === 'admin token');
    const wsAdmin = wsToks.find((t) => t.name === 'workspace admin token');
    return { user_token: userTok!.token, admin_token: admin!.token, workspace_admin_token: wsAdmin!.token };
  }

  get defaultWorkspace(): Workspace {
    return [...this.workspaces.values()][0];
  }

  async createToken(workspaceId: string | null, name: string, scopes: Scope[], description = ''): Promise<TokenRecord> {
    const id = newResourceId();
    const t: TokenRecord = { id, workspaceId, name, token: this.newTokenValue(id, workspaceId), scopes, description, createdAt: nowIso() };
    await this.catalog.insertToken(t);
    this.byValue.set(t.token, t);
    return t;
  }

  /** Resolves a token value to the caller, or throws 403 `invalid authentication token`. */
  async authenticate(value: string | undefined): Promise<Auth> {
    if (!value || !this.verifySignature(value)) throw forbidden(INVALID_TOKEN);
    let t = this.byValue.get(value);
    if (!t) {
      t = (await this.catalog.findToken(value)) ?? undefined;
      if (!t) throw forbidden(INVALID_TOKEN);
      this.byValue.set(value, t);
    }
    const ws = t.workspaceId ? this.workspaces.get(t.workspaceId) : this.defaultWorkspace;
    if (!ws) throw forbidden(INVALID_TOKEN);
    return new Auth(t, ws);
  }
}
