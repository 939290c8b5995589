/**
 * The console's only way to the server: the public /v0 API with the user's token in the
 * Authorization header. The token lives in sessionStorage (this tab, until it closes) and never
 * in a URL: not in the address bar, not in a query string, not in an example shown to copy.
 */
const TOKEN_KEY = 'pipit.console.token';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body?: unknown,
  ) {
    super(message);
  }
}

export function getToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token: string | null): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/**
 * On loopback, Pipit hands out the local tokens at GET /tokens (same origin, no CORS). Anywhere
 * else that answers 403 and the user pastes a token.
 */
export async function discoverLocalToken(): Promise<string | null> {
  try {
    const r = await fetch('/tokens', { credentials: 'omit', cache: 'no-store' });
    if (!r.ok) return null;
    const j = (await r.json()) as { workspace_admin_token?: string; admin_token?: string };
    return j.workspace_admin_token || j.admin_token || null;
  } catch {
    return null;
  }
}

export type Query = Record<string, string | number | boolean | undefined | null | Array<string>>;

export function qs(query: Query | undefined): string {
  if (!query) return '';
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) for (const x of v) p.append(k, x);
    else p.append(k, String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}

export interface RequestOptions {
  query?: Query;
  /** application/x-www-form-urlencoded body */
  form?: Query;
  json?: unknown;
  body?: BodyInit;
  contentType?: string;
  signal?: AbortSignal;
  token?: string | null;
}

function authHeaders(token: string | null | undefined): Record<string, string> {
  const t = token === undefined ? getToken() : token;
  return t ? { authorization: `Bearer ${t}` } : {};
}

async function errorOf(r: Response): Promise<ApiError> {
  const text = await r.text();
  let body: unknown = text;
  let message = text || `${r.status} ${r.statusText}`;
  try {
    body = JSON.parse(text);
    const e = (body as { error?: unknown }).error;
    if (typeof e === 'string') message = e;
  } catch {
    // not JSON: keep the text
  }
  return new ApiError(r.status, message, body);
}

export async function api<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = authHeaders(opts.token);
  let body: BodyInit | undefined = opts.body;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers['content-type'] = 'application/json';
  } else if (opts.form) {
    body = qs(opts.form).slice(1);
    headers['content-type'] = 'application/x-www-form-urlencoded';
  } else if (opts.contentType) headers['content-type'] = opts.contentType;
  const r = await fetch(path + qs(opts.query), { method, headers, body, signal: opts.signal, credentials: 'omit', cache: 'no-store' });
  if (!r.ok) throw await errorOf(r);
  if (r.status === 204 || r.status === 205) return null as T;
  const type = r.headers.get('content-type') ?? '';
  if (type.includes('json') && !type.includes('ndjson')) return (await r.json()) as T;
  return (await r.text()) as unknown as T;
}

export interface QueryResult {
  meta: Array<{ name: string; type: string }>;
  data: Array<Record<string, unknown>>;
  rows: number;
  rows_before_limit_at_least?: number;
  statistics?: { elapsed: number; rows_read: number; bytes_read: number };
}

const FORMAT_AT_END = /\bFORMAT\s+[A-Za-z]+\s*;?\s*$/i;

/** Whether the SQL names its own output format (then the answer is shown as text). */
export function hasFormat(sql: string): boolean {
  return FORMAT_AT_END.test(stripComments(sql));
}

function stripComments(sql: string): string {
  return sql.replace(/--[^\n]*$/gm, '').trimEnd();
}

/**
 * Runs SQL through POST /v0/sql (JSON body: `q` plus template parameters), asking for the JSON
 * envelope unless the query names a format itself. `pipeline` lets the query read that pipe's nodes.
 */
export async function runSql(
  sql: string,
  opts: { params?: Record<string, string>; pipeline?: string; signal?: AbortSignal } = {},
): Promise<QueryResult | string> {
  let q = sql.replace(/;\s*$/, '');
  if (!hasFormat(q)) q = `${q}\nFORMAT JSON`;
  const body: Record<string, string> = { ...(opts.params ?? {}), q };
  return api<QueryResult | string>('POST', '/v0/sql', { json: body, query: { pipeline: opts.pipeline }, signal: opts.signal });
}

/** Like runSql for queries the console writes itself (always the JSON envelope). */
export async function rows<T = Record<string, unknown>>(sql: string, signal?: AbortSignal): Promise<T[]> {
  const r = await runSql(sql, { signal });
  if (typeof r === 'string') throw new Error('Unexpected answer to a query');
  return r.data as T[];
}

/**
 * Uploads with progress (fetch can not report upload progress): multipart with the file under the
 * field name the Data Sources API expects for its format.
 */
export function upload(
  path: string,
  query: Query,
  field: string,
  file: File,
  onProgress: (sent: number, total: number) => void,
): { promise: Promise<unknown>; abort: () => void } {
  const xhr = new XMLHttpRequest();
  const promise = new Promise<unknown>((resolve, reject) => {
    xhr.open('POST', path + qs(query));
    const t = getToken();
    if (t) xhr.setRequestHeader('authorization', `Bearer ${t}`);
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onload = () => {
      let body: unknown = xhr.responseText;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        // text
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new ApiError(xhr.status, (body as { error?: string })?.error ?? String(body || xhr.status), body));
    };
    xhr.onerror = () => reject(new ApiError(0, 'The upload failed (network error)'));
    xhr.onabort = () => reject(new ApiError(0, 'The upload was cancelled'));
    const fd = new FormData();
    fd.append(field, file, file.name);
    xhr.send(fd);
  });
  return { promise, abort: () => xhr.abort() };
}

export interface Job {
  id: string;
  kind: string;
  status: string;
  progress?: number;
  progress_percentage?: number;
  created_at: string;
  updated_at: string;
  started_at?: string | null;
  is_cancellable?: boolean;
  error?: string;
  datasource?: { id: string; name: string };
  pipe_name?: string;
  pipe?: { id: string; name: string };
  statistics?: { bytes?: number; row_count?: number };
  quarantine_rows?: number;
}

export const FINAL_JOB_STATUSES = new Set(['done', 'error', 'cancelled']);

/** Polls a job until it ends, reporting each state. */
export async function followJob(id: string, onUpdate: (job: Job) => void, signal?: AbortSignal): Promise<Job> {
  for (;;) {
    const job = await api<Job>('GET', `/v0/jobs/${encodeURIComponent(id)}`, { signal });
    onUpdate(job);
    if (FINAL_JOB_STATUSES.has(job.status)) return job;
    await new Promise((r) => setTimeout(r, 700));
    if (signal?.aborted) return job;
  }
}
