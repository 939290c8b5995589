/**
 * Connections (`/v0/connectors`): named, per-workspace credentials for the object storage sinks
 * write to. Kinds: `s3` (AWS or any S3-compatible endpoint, path-style for non-AWS endpoints),
 * `s3_iamrole` (a role ARN assumed with the workspace's external id), `gcs_hmac` (Google Cloud
 * Storage through its S3-compatible HMAC interface) and `local` (a directory under
 * PIPIT_SINK_LOCAL_ROOT, for development). Credentials are encrypted at rest with AES-256-GCM under
 * a key kept in its own file (as workspace variables are) and no route ever returns them.
 *
 * Where a sink writes is resolved here into a SinkLocation, whose every piece is checked: bucket
 * names, prefixes and endpoints for object storage; for local directories, a path that stays
 * inside the configured root without `..` or symbolic links.
 */
import crypto from 'node:crypto';
import { SecretBox } from './secret-box.js';
import { WorkspaceCache } from '../catalog/workspace-cache.js';
import fs from 'node:fs';
import path from 'node:path';
import { type Catalog, type ConnectionRecord, newNamedRecord, type Workspace } from '../catalog/catalog.js';
import { cleanMessage, EngineError, type Engine } from '../engine/engine.js';
import { badRequest, conflict, forbidden, notFound, PipitError, unauthorized } from '../basics/errors.js';
import { checkNameLength } from '../schema/names.js';
import { newResourceId } from '../basics/ids.js';
import { deleteObject } from './s3-delete.js';
import { checkRelativePath, parseBucketUri, parseLocalPath } from './sink-template.js';
import { tbTime } from '../basics/time.js';

export const SERVICES = ['s3', 's3_iamrole', 'gcs_hmac', 'local'] as const;
export type ConnectionKind = (typeof SERVICES)[number];

const NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;
const ROLE_ARN = /^arn:aws(-[a-z]+)?:iam::\d{12}:role\/[A-Za-z0-9+=,.@_/-]{1,512}$/;
const GCS_ENDPOINT = 'https://storage.googleapis.com';
export const MAX_CONNECTIONS = 100;
/** The object a connection check writes (and rewrites) to prove write access. */
export const CHECK_OBJECT = '_pipit_write_check';
const STAGING = '.pipit-staging';

/** Where a sink writes: object storage with credentials, or a local directory. */
export type SinkLocation =
  | {
      kind: 's3';
      service: string;
      /** `s3://bucket/prefix` as the user wrote it (gs:// for GCS). */
      display: string;
      bucket: string;
      /** No leading or trailing slash; may be empty. */
      prefix: string;
      /** The URL of a key: built from checked pieces only. */
      url(key: string): string;
      /** The URL of an existing object (a key the storage listed), each segment percent-encoded. */
      objectUrl(key: string): string;
      keyId: string;
      secret: string;
      /** Region requests are signed for (`auto` for GCS). */
      region: string;
    }
  | {
      kind: 'local';
      display: string;
      /** Real path of the configured root. */
      root: string;
      /** Absolute directory the files go to (inside root; created on use). */
      dir: string;
      /** Staging directory for a job (inside root, so moves are renames). */
      staging(jobId: string): string;
    };

interface Secret {
  access_key_id?: string;
  secret_access_key?: string;
}

export class ConnectionService {
  private readonly cache: WorkspaceCache<Map<string, ConnectionRecord>>;

  private constructor(
    private readonly catalog: Catalog,
    private readonly engine: Engine,
    private readonly box: SecretBox,
    private readonly localRoot: string,
  ) {
    this.cache = new WorkspaceCache(catalog, ['connections'], async (wsId) => new Map((await catalog.listConnections(wsId)).map((c) => [c.id, c])));
  }

  /** Opens the service with its key (see keys.ts). */
  static open(catalog: Catalog, engine: Engine, key: Buffer, localRoot: string): ConnectionService {
    return new ConnectionService(catalog, engine, new SecretBox(key), localRoot);
  }

  private encrypt(value: string, aad: string): string {
    return this.box.seal(value, aad);
  }

  private decrypt(stored: string, aad: string): string {
    return this.box.open(stored, aad);
  }

  /** The workspace's external id for IAM trust policies: stable, derived from the key and the workspace. */
  externalId(ws: Workspace): string {
    const h = crypto.createHmac('sha256', this.box.key).update(`external-id:${ws.id}`).digest('hex');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
  }

  private async byId(ws: Workspace): Promise<Map<string, ConnectionRecord>> {
    return this.cache.get(ws.id);
  }

  async list(ws: Workspace): Promise<ConnectionRecord[]> {
    return [...(await this.byId(ws)).values()];
  }

  async find(ws: Workspace, nameOrId: string): Promise<ConnectionRecord | null> {
    const m = await this.byId(ws);
    if (m.has(nameOrId)) return m.get(nameOrId)!;
    for (const c of m.values()) if (c.name === nameOrId) return c;
    return null;
  }

  async get(ws: Workspace, nameOrId: string): Promise<ConnectionRecord> {
    const c = await this.find(ws, nameOrId);
    if (!c) throw notFound(`Data connector "${nameOrId}" not found`);
    return c;
  }

  private secretOf(ws: Workspace, c: ConnectionRecord): Secret {
    return c.secret ? (JSON.parse(this.decrypt(c.secret, `${ws.id}/${c.id}`)) as Secret) : {};
  }

  /**
   * Creates a connection from request arguments; `bucket` (optional, object storage) is checked
   * for write access with the credentials, a local directory is created inside the root.
   */
  async create(ws: Workspace, a: Record<string, string | undefined>): Promise<ConnectionRecord> {
    const name = a.name;
    if (!name) throw badRequest('The "name" parameter is required');
    checkNameLength(name, 'connection');
    if (!NAME.test(name))
      throw badRequest(`Invalid connection name "${name}": it must start with a letter or underscore and have only letters, digits, _ and -`);
    const service = (a.service ?? '').toLowerCase() === 'gcs' ? 'gcs_hmac' : (a.service ?? '').toLowerCase();
    if (!SERVICES.includes(service as ConnectionKind)) throw badRequest(`Invalid service "${a.service ?? ''}". Valid services are: ${SERVICES.join(', ')}`);
    if (service === 'local') this.requireLocalFiles();
    const m = await this.byId(ws);
    if ([...m.values()].some((c) => c.name === name)) throw conflict(`Connection "${name}" already exists`);
    if (m.size >= MAX_CONNECTIONS) throw badRequest(`Maximum number of connections reached (${MAX_CONNECTIONS})`);
    const id = newResourceId();
    const settings: Record<string, string> = {};
    let secret: Secret | null = null;
    const pick = (...keys: string[]) => keys.map((k) => a[k]).find((v) => v !== undefined && v !== '');
    if (service === 's3') {
      const region = pick('s3_region', 'region') ?? 'us-east-1';
      if (!REGION.test(region)) throw badRequest(`Invalid region name "${region}"`);
      settings.s3_region = region;
      const endpoint = pick('s3_endpoint', 'endpoint');
      if (endpoint) settings.s3_endpoint = checkEndpoint(endpoint);
      const keyId = pick('s3_access_key_id', 'access_key_id');
      const key = pick('s3_secret_access_key', 'secret_access_key');
      if (!keyId || !key) throw badRequest('An s3 connection needs "s3_access_key_id" and "s3_secret_access_key"');
      secret = { access_key_id: checkCredential(keyId, 's3_access_key_id'), secret_access_key: checkCredential(key, 's3_secret_access_key') };
      settings.s3_access_key_id = mask(keyId);
    } else if (service === 'gcs_hmac') {
      const endpoint = pick('gcs_endpoint', 'endpoint');
      if (endpoint) settings.gcs_endpoint = checkEndpoint(endpoint);
      const keyId = pick('gcs_hmac_access_id', 'access_id', 'access_key_id');
      const key = pick('gcs_hmac_secret', 'secret', 'secret_access_key');
      if (!keyId || !key) throw badRequest('A gcs_hmac connection needs "gcs_hmac_access_id" and "gcs_hmac_secret"');
      secret = { access_key_id: checkCredential(keyId, 'gcs_hmac_access_id'), secret_access_key: checkCredential(key, 'gcs_hmac_secret') };
      settings.gcs_hmac_access_id = mask(keyId);
    } else if (service === 's3_iamrole') {
      const arn = pick('s3_iamrole_arn', 'role_arn');
      if (!arn || !ROLE_ARN.test(arn)) throw badRequest(`Invalid role ARN "${arn ?? ''}": expected arn:aws:iam::<account>:role/<name>`);
      const region = pick('s3_iamrole_region', 's3_region', 'region') ?? 'us-east-1';
      if (!REGION.test(region)) throw badRequest(`Invalid region name "${region}"`);
      Object.assign(settings, { s3_iamrole_arn: arn, s3_iamrole_region: region, s3_iamrole_external_id: this.externalId(ws) });
    } else {
      let raw = pick('directory', 'path') ?? '';
      // An absolute directory is accepted when it is inside the root.
      if (path.isAbsolute(raw)) {
        const rel = path.relative(this.rootReal(), path.resolve(raw));
        if (rel.startsWith('..') || path.isAbsolute(rel)) throw badRequest(`Invalid directory "${raw}": it is outside the sink root`);
        raw = rel.split(path.sep).join('/');
      }
      const dir = parseLocalPath(raw);
      settings.directory = dir;
      this.localDir(dir);
    }
    const record: ConnectionRecord = {
      ...newNamedRecord(ws, name, id),
      service,
      settings,
      secret: secret ? this.encrypt(JSON.stringify(secret), `${ws.id}/${id}`) : null,
    };
    const bucket = pick('bucket', 's3_bucket', 'gcs_bucket');
    if (bucket && service !== 'local') {
      const scheme = service === 'gcs_hmac' ? 'gs' : 's3';
      await this.check(this.locationOf(ws, record, `${scheme}://${bucket}`, secret ?? {}));
    }
    await this.catalog.insertConnection(record);
    await this.cache.update(ws.id, (cur) => cur.set(id, record));
    return record;
  }

  async delete(ws: Workspace, nameOrId: string, usedBy: string[]): Promise<void> {
    const c = await this.get(ws, nameOrId);
    if (usedBy.length)
      throw conflict(`The connection "${c.name}" is used by the sink pipes ${usedBy.map((p) => `'${p}'`).join(', ')}: remove their sinks first`);
    await this.catalog.deleteConnection(ws.id, c.id);
    await this.cache.update(ws.id, (cur) => cur.delete(c.id));
  }

  /** Local-directory connections need an engine that writes this host's files: the embedded one. */
  private requireLocalFiles(): void {
    if (!this.engine.localFiles) {
      throw badRequest(
        'Local-directory connections (service=local) work only with the embedded engine: this server uses a ClickHouse server (PIPIT_ENGINE_URL), ' +
          "which cannot write to Pipit's disk. Use an s3, s3_iamrole or gcs_hmac connection.",
      );
    }
  }

  /** Where a sink with this connection and `path` writes (every piece checked). */
  location(ws: Workspace, c: ConnectionRecord, sinkPath: string | undefined): SinkLocation {
    return this.locationOf(ws, c, sinkPath, this.secretOf(ws, c));
  }

  private locationOf(_ws: Workspace, c: ConnectionRecord, sinkPath: string | undefined, secret: Secret): SinkLocation {
    if (c.service === 'local') {
      this.requireLocalFiles();
      const rel = parseLocalPath(sinkPath);
      const sub = [c.settings.directory, rel].filter(Boolean).join('/');
      const root = this.rootReal();
      return {
        kind: 'local',
        display: `local://${rel}`,
        root,
        dir: this.localDir(sub),
        staging: (jobId) => path.join(root, STAGING, jobId.replace(/[^A-Za-z0-9_-]/g, '')),
      };
    }
    if (c.service === 's3_iamrole') {
      throw forbidden(
        `Can't assume the role ${c.settings.s3_iamrole_arn}: this server has no AWS credentials to assume roles with; use an s3 connection with an access key`,
      );
    }
    const gcs = c.service === 'gcs_hmac';
    const { bucket, prefix } = parseBucketUri(sinkPath, gcs ? ['gs', 's3'] : ['s3']);
    let base: (key: string) => string;
    const endpoint = gcs ? (c.settings.gcs_endpoint ?? GCS_ENDPOINT) : c.settings.s3_endpoint;
    if (endpoint) {
      // S3-compatible servers and GCS: path-style URLs.
      base = (key) => `${endpoint}/${bucket}/${key}`;
    } else {
      const region = c.settings.s3_region;
      // Dotted bucket names break virtual-hosted TLS: path-style for those.
      base = bucket.includes('.')
        ? (key) => `https://s3.${region}.amazonaws.com/${bucket}/${key}`
        : (key) => `https://${bucket}.s3.${region}.amazonaws.com/${key}`;
    }
    return {
      kind: 's3',
      service: c.service,
      display: `${gcs ? 'gs' : 's3'}://${bucket}${prefix ? `/${prefix}` : ''}`,
      bucket,
      prefix,
      url: (key) => {
        checkRelativePath(key.replace(/\{_partition_id\}|\*\*/g, 'x'), 'object key');
        return base(key);
      },
      objectUrl: (key) => base(key.split('/').map(encodeURIComponent).join('/')),
      keyId: secret.access_key_id ?? '',
      secret: secret.secret_access_key ?? '',
      region: gcs ? 'auto' : (c.settings.s3_region ?? 'us-east-1'),
    };
  }

  /** Real path of the local root (created on first use). */
  rootReal(): string {
    fs.mkdirSync(this.localRoot, { recursive: true });
    return fs.realpathSync(this.localRoot);
  }

  /**
   * The absolute directory `rel` under the root, created one level at a time; refuses anything
   * that leaves the root, and symbolic links anywhere below it. `fromEngine`: `rel` ends with
   * directories a partitioned export named (checked for traversal, not for its characters).
   */
  localDir(rel: string, fromEngine = false): string {
    const root = this.rootReal();
    // Names the engine wrote (cleaned column values) may have any character but / and NUL.
    if (fromEngine) {
      if (rel?.split('/').some((seg) => seg === '' || seg === '.' || seg === '..' || seg.includes('\u0000'))) throw badRequest(`Invalid directory "${rel}"`);
    } else {
      checkRelativePath(rel, 'directory', true);
      if (rel.split('/')[0] === STAGING) throw badRequest(`Invalid directory "${rel}": ${STAGING} is the server's own`);
    }
    let cur = root;
    for (const seg of rel ? rel.split('/') : []) {
      const next = path.join(cur, seg);
      if (path.dirname(next) !== cur) throw badRequest(`Invalid directory "${rel}"`);
      let st: fs.Stats | null = null;
      try {
        st = fs.lstatSync(next);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      if (st?.isSymbolicLink()) throw badRequest(`Invalid directory "${rel}": symbolic links are not allowed under the sink root`);
      if (st && !st.isDirectory()) throw badRequest(`Invalid directory "${rel}": "${seg}" is a file`);
      if (!st) fs.mkdirSync(next);
      cur = next;
    }
    if (fs.realpathSync(cur) !== cur || !(cur === root || cur.startsWith(root + path.sep)))
      throw badRequest(`Invalid directory "${rel}": it is outside the sink root`);
    return cur;
  }

  /**
   * Checks that the location is reachable and writable: object storage by writing one small
   * object under the prefix and deleting it again; 404 missing bucket, 401 refused credentials,
   * 400 anything else.
   */
  async check(loc: SinkLocation): Promise<void> {
    if (loc.kind === 'local') {
      try {
        fs.accessSync(loc.dir, fs.constants.W_OK);
      } catch {
        throw badRequest(`The directory ${loc.display} is not writable by the server`);
      }
      return;
    }
    const key = loc.prefix ? `${loc.prefix}/${CHECK_OBJECT}` : CHECK_OBJECT;
    try {
      await this.engine.exec(
        `INSERT INTO FUNCTION s3({pipit_url:String}, {pipit_key:String}, {pipit_secret:String}, 'TSV', 'check String') SELECT 'pipit write check' SETTINGS s3_truncate_on_insert = 1, ${PROBE_SETTINGS}`,
        { params: { pipit_url: loc.url(key), pipit_key: loc.keyId, pipit_secret: loc.secret } },
      );
    } catch (err) {
      throw storageError(err, loc);
    }
    // The check leaves nothing behind (best effort: the write already proved what it had to).
    await deleteObject({ url: loc.url(key), region: loc.region, keyId: loc.keyId, secret: loc.secret }).catch(() => false);
  }
}

/** Settings that keep a check from retrying for minutes against a dead endpoint. */
export const PROBE_SETTINGS = 's3_retry_attempts = 1, s3_connect_timeout_ms = 2000, s3_request_timeout_ms = 5000';

/** An object storage error as the API answers it: 404 missing bucket, 401 credentials refused, 400 otherwise. */
export function storageError(err: unknown, loc: { display: string; bucket: string }): PipitError {
  if (err instanceof PipitError) return err;
  const msg = err instanceof EngineError ? err.message : cleanMessage(String((err as Error)?.message ?? err));
  if (/NoSuchBucket|bucket does not exist/i.test(msg)) return notFound(`Bucket "${loc.bucket}" doesn't exist (${loc.display})`);
  if (/InvalidAccessKeyId|SignatureDoesNotMatch|Access Key Id|AccessDenied|ACCESS_DENIED|response code: 403|Forbidden|InvalidToken|credentials/i.test(msg)) {
    return unauthorized(`Invalid credentials: the storage refused the connection's credentials for ${loc.display} (${msg.split(', bucket ')[0]})`);
  }
  if (/Connection refused|Timeout|timed out|resolve|Host not found|DNS|Network|Poco::Exception/i.test(msg)) {
    return badRequest(`Could not reach the storage endpoint for ${loc.display}: ${msg}`);
  }
  return badRequest(`Could not write to ${loc.display}: ${msg}`);
}

function checkEndpoint(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw badRequest(`Invalid endpoint "${raw}": it must be an http(s) URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw badRequest(`Invalid endpoint "${raw}": it must be an http(s) URL`);
  if (u.username || u.password || u.search || u.hash || (u.pathname !== '/' && u.pathname !== '')) {
    throw badRequest(`Invalid endpoint "${raw}": only scheme, host and port (no path, query or credentials)`);
  }
  // The origin is rebuilt by the URL parser: no quotes, spaces or control characters survive.
  if (!/^https?:\/\/[A-Za-z0-9.\-[\]:]+$/.test(u.origin)) throw badRequest(`Invalid endpoint "${raw}"`);
  return u.origin;
}

function checkCredential(v: string, what: string): string {
  if (v.length > 256 || !/^[\x21-\x7e]+$/.test(v)) throw badRequest(`Invalid ${what}: printable characters without spaces only`);
  return v;
}

/** An access key id as shown: its last 4 characters when it is long enough for that to say little. */
function mask(v: string): string {
  return v.length < 12 ? '****' : `${'*'.repeat(Math.min(v.length - 4, 16))}${v.slice(-4)}`;
}

/** The public JSON of a connection: settings, never credentials. */
export function connectionJson(c: ConnectionRecord, usedBy: Array<{ id: string; name: string }> = []): Record<string, unknown> {
  return {
    id: c.id,
    name: c.name,
    service: c.service,
    settings: { ...c.settings },
    created_at: tbTime(c.createdAt),
    updated_at: tbTime(c.updatedAt),
    linkers: usedBy.map((p) => ({ resource_id: p.id, resource_name: p.name, resource_type: 'pipe' })),
  };
}
