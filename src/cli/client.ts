/**
 * The CLI's connection to a Pipit (or Tinybird) host: where (`--host`, `TB_HOST`, `.tinyb`, else
 * the local default), with which token (`--token`, `TB_TOKEN`, `.tinyb`, else the local server's
 * admin token from `GET /tokens`), and a small fetch wrapper that turns API errors into CliError.
 */
import fs from 'node:fs';
import path from 'node:path';

export const DEFAULT_HOST = 'http://127.0.0.1:7181';

/** A failure the CLI reports and exits with (code 1 unless said otherwise). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface Connection {
  host: string;
  token: string;
  /** Where the settings came from, for messages. */
  source: string;
}

/** The `.tinyb` file `tb auth` writes: JSON with host, token (and workspace name/id). */
export function findTinyb(from: string): string | null {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    const f = path.join(dir, '.tinyb');
    if (fs.existsSync(f)) return f;
    if (path.dirname(dir) === dir) return null;
  }
}

export async function resolveConnection(flags: { host?: string; token?: string }, env: NodeJS.ProcessEnv, cwd: string): Promise<Connection> {
  let tinyb: { host?: string; token?: string } = {};
  const file = findTinyb(cwd);
  if (file) {
    try {
      tinyb = JSON.parse(fs.readFileSync(file, 'utf8')) as typeof tinyb;
    } catch (e) {
      throw new CliError(`${file}: not valid JSON (${(e as Error).message})`, 2);
    }
  }
  const host = (flags.host ?? env.TB_HOST ?? tinyb.host ?? DEFAULT_HOST).replace(/\/+$/, '');
  let token = flags.token ?? env.TB_TOKEN ?? tinyb.token;
  const source = flags.token ? '--token' : env.TB_TOKEN ? 'TB_TOKEN' : tinyb.token ? file! : 'the local server';
  if (!token) token = await localToken(host);
  return { host, token, source };
}

/** A local Pipit (like Tinybird Local) lists its tokens at `GET /tokens` on loopback. */
async function localToken(host: string): Promise<string> {
  let r: Response;
  try {
    r = await fetch(`${host}/tokens`);
  } catch {
    throw new CliError(`No token given and no server at ${host}: pass --token, set TB_TOKEN, or run \`pipit dev\``, 2);
  }
  if (!r.ok) throw new CliError(`No token given (--token, TB_TOKEN or .tinyb) and ${host}/tokens answered ${r.status}`, 2);
  const body = (await r.json()) as { workspace_admin_token?: string };
  if (!body.workspace_admin_token) throw new CliError(`No token given (--token, TB_TOKEN or .tinyb)`, 2);
  return body.workspace_admin_token;
}

export interface RequestOptions {
  query?: Record<string, string | string[] | undefined>;
  body?: BodyInit;
  headers?: Record<string, string>;
  /** Statuses returned to the caller instead of raising (e.g. 404 when probing). */
  allow?: number[];
}

export class Client {
  constructor(readonly conn: Connection) {}

  url(p: string, query?: RequestOptions['query']): string {
    const u = new URL(this.conn.host + p);
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v === undefined) continue;
      for (const x of Array.isArray(v) ? v : [v]) u.searchParams.append(k, x);
    }
    return u.toString();
  }

  async request(method: string, p: string, opts: RequestOptions = {}): Promise<Response> {
    let r: Response;
    try {
      r = await fetch(this.url(p, opts.query), {
        method,
        body: opts.body,
        headers: { authorization: `Bearer ${this.conn.token}`, ...(opts.headers ?? {}) },
      });
    } catch (e) {
      throw new CliError(
        `Can not reach ${this.conn.host}: ${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message}`,
      );
    }
    if (r.ok || opts.allow?.includes(r.status)) return r;
    throw new CliError(await errorText(r), 1, r.status);
  }

  async json<T = Record<string, unknown>>(method: string, p: string, opts: RequestOptions = {}): Promise<T> {
    const r = await this.request(method, p, opts);
    const text = await r.text();
    return (text ? JSON.parse(text) : {}) as T;
  }

  /** GET returning null on 404. */
  async maybeText(p: string): Promise<string | null> {
    const r = await this.request('GET', p, { allow: [404] });
    return r.status === 404 ? null : r.text();
  }

  form(values: Record<string, string | undefined>): { body: string; headers: Record<string, string> } {
    const f = new URLSearchParams();
    for (const [k, v] of Object.entries(values)) if (v !== undefined) f.append(k, v);
    return { body: f.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } };
  }
}

async function errorText(r: Response): Promise<string> {
  const text = await r.text();
  try {
    const j = JSON.parse(text) as { error?: unknown };
    if (j.error) return String(j.error);
  } catch {
    /* not JSON */
  }
  return text.trim() || `HTTP ${r.status}`;
}
