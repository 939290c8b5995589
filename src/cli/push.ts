/**
 * `pipit push`: compares the project's datafiles with the workspace (the server's own
 * `.datasource` / `.pipe` text and token list, read over the /v0 API) and creates, alters or
 * replaces what differs, in dependency order. Unchanged resources are not touched, so pushing
 * twice changes nothing; `--dry-run` only reads. Changing an existing resource needs `--force`
 * (as with `tb push`).
 *
 * A pipe's new SQL is checked first in a scratch pipe, so a node that fails points at its line
 * and leaves the old version serving. SQL/description edits are applied in place, node by node
 * (node ids, copy and sink schedules stay). Other changes replace the pipe in one request
 * (`POST /v0/pipes?force=true`: the server's deploy service applies it whole or not at all);
 * a pipe that materializes into a Data Source, which the API does not overwrite, is deleted and
 * created (the old definition is restored if the create fails).
 */
import crypto from 'node:crypto';
import {
  DatafileError,
  parseDatasource,
  parsePipe,
  printDatasourceFile,
  printPipe,
  type DatasourceFile,
  type PipeFile,
  type PipeNode,
} from '../datafile/index.js';
import { SchemaError, parseEngineParams, parseIndexes, parseSchema, printColumn } from '../schema/index.js';
import { CliError, type Client } from './client.js';
import type { Project, Resource } from './project.js';

export type Action = 'create' | 'alter' | 'replace' | 'unchanged' | 'blocked';

export interface PlanItem {
  kind: 'datasource' | 'pipe' | 'token';
  name: string;
  file: string;
  action: Action;
  detail?: string;
}

export interface PushOptions {
  force: boolean;
  populate: boolean;
  dryRun: boolean;
  /** Called for each resource once it is decided (and applied, unless dry-run). */
  report: (item: PlanItem) => void;
}

const enc = encodeURIComponent;

// ---------------------------------------------------------------- data sources

/** Engine request arguments (`engine`, `engine_*`) of a datasource file or a materialized node. */
function engineArgs(engine: string | undefined, params: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  if (engine) out.engine = engine;
  for (const [k, v] of Object.entries(params)) out[`engine_${k}`] = v;
  return out;
}

/** The file as the server would print it (its canonical `.datasource`); schema errors point at the SCHEMA line. */
export function canonicalDatasource(r: Resource<DatasourceFile>): string {
  const ds = r.value;
  try {
    const args = engineArgs(undefined, ds.engineParams);
    return printDatasourceFile({
      description: ds.description,
      columns: parseSchema(ds.schema ?? ''),
      engine: parseEngineParams(ds.engine, args),
      indexes: parseIndexes(ds.indexes),
    });
  } catch (e) {
    if (e instanceof SchemaError) throw new DatafileError(e.message, r.file, ds.schemaLine ?? 0);
    throw e;
  }
}

async function pushDatasource(client: Client, r: Resource<DatasourceFile>, opts: PushOptions): Promise<PlanItem> {
  const item = (action: Action, detail?: string): PlanItem => ({ kind: 'datasource', name: r.name, file: r.file, action, ...(detail ? { detail } : {}) });
  const local = canonicalDatasource(r);
  const remote = await client.maybeText(`/v0/datasources/${enc(r.name)}.datasource`);
  const ds = r.value;
  if (remote === null) {
    if (!opts.dryRun) {
      const columns = parseSchema(ds.schema ?? '');
      await withFile(r, ds.schemaLine, () =>
        client.json(
          'POST',
          '/v0/datasources',
          client.form({
            name: r.name,
            schema: columns.map(printColumn).join(', '),
            ...engineArgs(ds.engine, ds.engineParams),
            indexes: ds.indexes,
            description: ds.description,
          }),
        ),
      );
    }
    return item('create');
  }
  if (remote === local) return item('unchanged');
  const a = parseDatasource(local).value;
  const b = parseDatasource(remote).value;
  const { ttl: ttlA, ...keysA } = a.engineParams;
  const { ttl: ttlB, ...keysB } = b.engineParams;
  if (a.engine !== b.engine || JSON.stringify(keysA) !== JSON.stringify(keysB)) {
    return item(
      'blocked',
      `the engine or its keys changed (${b.engine} → ${a.engine}); that needs a new table: remove it (\`pipit datasource rm ${r.name}\`) and push again`,
    );
  }
  const changes: Record<string, string> = {};
  if (a.schema !== b.schema) changes.schema = (a.schema ?? '').replace(/\n/g, ' ');
  if ((a.description ?? '') !== (b.description ?? '')) changes.description = a.description ?? '';
  if ((ttlA ?? '') !== (ttlB ?? '')) changes.ttl = ttlA ?? '';
  if ((a.indexes ?? '') !== (b.indexes ?? '')) changes.indexes = a.indexes ?? '0';
  const what = Object.keys(changes).join(', ');
  if (!opts.force) return item('blocked', `${what} changed: use --force to alter it`);
  if (!opts.dryRun) await withFile(r, ds.schemaLine, () => client.json('POST', `/v0/datasources/${enc(r.name)}/alter`, client.form(changes)));
  return item('alter', what);
}

// ---------------------------------------------------------------- pipes

/** A pipe as the server keeps it: what its `.pipe` says, with tb's defaults applied. */
export function normalizePipe(p: PipeFile): PipeFile {
  const typed = p.nodes.some((n) => n.type && n.type !== 'standard');
  const nodes = p.nodes.map((n, i): PipeNode => {
    // Like `tb push`: a pipe without an output node publishes its last node.
    const type = n.type && n.type !== 'standard' ? n.type : !typed && i === p.nodes.length - 1 ? 'endpoint' : undefined;
    const out: PipeNode = { name: n.name, sql: n.sql.trim(), engineParams: {}, export: {} };
    if (n.description) out.description = n.description;
    if (type) out.type = type;
    if (type === 'materialized') out.datasource = n.datasource;
    if (type === 'copy') {
      out.targetDatasource = n.targetDatasource;
      if (n.copySchedule && n.copySchedule !== '@on-demand') out.copySchedule = n.copySchedule;
      out.copyMode = n.copyMode ?? 'append';
    }
    if (type === 'sink') {
      out.export = { ...n.export };
      if (out.export.schedule === '@on-demand') delete out.export.schedule;
    }
    return out;
  });
  return { kind: 'pipe', description: p.description || undefined, tokens: [], nodes };
}

/** The JSON node `POST /v0/pipes` takes (the shape `tb push` sends). */
function nodeJson(n: PipeNode, src: PipeNode | undefined, populate: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = { name: n.name, sql: n.sql, description: n.description ?? null, type: n.type ?? 'standard' };
  if (n.type === 'materialized') {
    out.datasource = n.datasource;
    Object.assign(out, engineArgs(src?.engine, src?.engineParams ?? {}));
    if (populate) out.populate = 'true';
  }
  if (n.type === 'copy') {
    out.target_datasource = n.targetDatasource;
    if (n.copySchedule) out.copy_schedule = n.copySchedule;
    out.mode = n.copyMode;
  }
  if (n.type === 'sink') for (const [k, v] of Object.entries(n.export)) out[`export_${k}`] = v;
  return out;
}

const sameShape = (a: PipeNode, b: PipeNode) =>
  a.name === b.name &&
  a.type === b.type &&
  a.datasource === b.datasource &&
  a.targetDatasource === b.targetDatasource &&
  a.copySchedule === b.copySchedule &&
  a.copyMode === b.copyMode &&
  JSON.stringify(a.export) === JSON.stringify(b.export);

/** Creates the pipe, or with `force` replaces the one of that name: the server's deploy is whole or nothing. */
async function createPipe(client: Client, name: string, p: PipeFile, src: PipeFile, populate: boolean, force = false): Promise<void> {
  await client.json('POST', '/v0/pipes', {
    query: force ? { force: 'true' } : undefined,
    // A replaced pipe keeps its description unless one is sent: '' clears it.
    body: JSON.stringify({ name, description: p.description ?? (force ? '' : null), nodes: p.nodes.map((n, i) => nodeJson(n, src.nodes[i], populate)) }),
    headers: { 'content-type': 'application/json' },
  });
}

/**
 * Checks every node's SQL in a scratch pipe (plain nodes, nothing published or materialized) and
 * drops it; on failure finds the first failing node so the error points at its SQL.
 */
async function validatePipe(client: Client, r: Resource<PipeFile>, p: PipeFile): Promise<void> {
  const scratch = `pipit_check_${crypto.randomBytes(6).toString('hex')}`;
  const attempt = async (count: number): Promise<CliError | null> => {
    try {
      await client.json('POST', '/v0/pipes', {
        body: JSON.stringify({ name: scratch, nodes: p.nodes.slice(0, count).map((n) => ({ name: n.name, sql: n.sql })) }),
        headers: { 'content-type': 'application/json' },
      });
    } catch (e) {
      if (e instanceof CliError && e.status !== undefined && e.status < 500) return e;
      throw e;
    }
    await client.request('DELETE', `/v0/pipes/${scratch}`, { allow: [404] });
    return null;
  };
  const failed = await attempt(p.nodes.length);
  if (!failed) return;
  for (let k = 1; k <= p.nodes.length; k++) {
    const e = await attempt(k);
    if (e) {
      const n = r.value.nodes[k - 1];
      throw new DatafileError(`node "${n.name}": ${e.message}`, r.file, n.sqlLine ?? n.line ?? 0);
    }
  }
  throw new DatafileError(failed.message, r.file, 0);
}

async function pushPipe(client: Client, r: Resource<PipeFile>, opts: PushOptions): Promise<PlanItem> {
  const item = (action: Action, detail?: string): PlanItem => ({ kind: 'pipe', name: r.name, file: r.file, action, ...(detail ? { detail } : {}) });
  const local = normalizePipe(r.value);
  const remoteText = await client.maybeText(`/v0/pipes/${enc(r.name)}.pipe`);
  if (remoteText === null) {
    if (!opts.dryRun) {
      await validatePipe(client, r, local);
      await withFile(r, 0, () => createPipe(client, r.name, local, r.value, opts.populate));
    }
    return item('create');
  }
  const remote = normalizePipe(parsePipe(remoteText).value);
  // The server prints every sink setting; only those the file sets are compared.
  remote.nodes.forEach((n, i) => {
    const l = local.nodes[i];
    if (l?.type === 'sink' && n.type === 'sink')
      n.export = Object.fromEntries(
        Object.keys(l.export)
          .filter((k) => k in n.export)
          .map((k) => [k, n.export[k]]),
      );
  });
  if (printPipe(local) === printPipe(remote)) return item('unchanged');
  const inPlace =
    local.nodes.length === remote.nodes.length &&
    local.nodes.every((n, i) => sameShape(n, remote.nodes[i]) && (n.type !== 'materialized' || n.sql === remote.nodes[i].sql));
  const changed = local.nodes
    .filter((n, i) => !remote.nodes[i] || n.sql !== remote.nodes[i].sql || n.description !== remote.nodes[i].description || !sameShape(n, remote.nodes[i]))
    .map((n) => n.name);
  const detail = inPlace ? `nodes changed: ${changed.join(', ') || 'description'}` : 'nodes added, removed, renamed or retyped';
  if (!opts.force) return item('blocked', `${detail}: use --force to update it`);
  if (opts.dryRun) return item(inPlace ? 'alter' : 'replace', detail);
  await validatePipe(client, r, local);
  if (inPlace) {
    for (const [i, n] of local.nodes.entries()) {
      const old = remote.nodes[i];
      if (n.sql === old.sql && n.description === old.description) continue;
      await withFile(r, r.value.nodes[i].sqlLine ?? 0, () =>
        client.json('PUT', `/v0/pipes/${enc(r.name)}/nodes/${enc(n.name)}`, {
          query: { description: n.description ?? '' },
          body: n.sql === old.sql ? undefined : n.sql,
        }),
      );
    }
    if (local.description !== remote.description) await client.json('PUT', `/v0/pipes/${enc(r.name)}`, client.form({ description: local.description ?? '' }));
    return item('alter', detail);
  }
  // One request replaces the pipe on the server (same id, so tokens that read it keep reading it):
  // the deploy is whole or nothing, a failure leaves the previous version serving. The API does
  // not overwrite a pipe that materializes into a Data Source, and an overwrite keeps the old
  // endpoint published when no new node is one: those pipes are dropped and created.
  const has = (p: PipeFile, type: string) => p.nodes.some((n) => n.type === type);
  if (!has(remote, 'materialized') && (has(local, 'endpoint') || !has(remote, 'endpoint'))) {
    await withFile(r, 0, () => createPipe(client, r.name, local, r.value, opts.populate, true));
    return item('replace', detail);
  }
  await client.request('DELETE', `/v0/pipes/${enc(r.name)}`);
  try {
    await withFile(r, 0, () => createPipe(client, r.name, local, r.value, opts.populate));
  } catch (e) {
    // The new version did not go in: put the old one back.
    await createPipe(client, r.name, remote, remote, false).catch(() => undefined);
    throw e;
  }
  return item('replace', detail);
}

// ---------------------------------------------------------------- tokens

interface TokenJson {
  name: string;
  scopes: Array<{ type: string; resource?: string; filter?: string }>;
}

const scopeText = (s: { type: string; resource?: string; filter?: string }) =>
  [s.type, s.resource, s.filter].filter((x) => x !== undefined && x !== '').join(':');

async function pushTokens(client: Client, project: Project, opts: PushOptions): Promise<void> {
  const desired = new Map<string, { scopes: Set<string>; exact: boolean; file: string; description?: string }>();
  const want = (name: string, file: string, scope: string, exact = false, description?: string) => {
    const d = desired.get(name) ?? { scopes: new Set<string>(), exact: false, file };
    d.scopes.add(scope);
    d.exact ||= exact;
    if (description !== undefined) d.description = description;
    if (exact) d.file = file;
    desired.set(name, d);
  };
  for (const t of project.tokens) {
    if (!t.value.scopes.length) throw new DatafileError('A .token file needs at least one SCOPE', t.file, 0);
    for (const sc of t.value.scopes) want(t.name, t.file, scopeText(sc), true, t.value.description);
  }
  const refs = [
    ...project.datasources.flatMap((d) =>
      d.value.tokens.map((t) => ({ t, file: d.file, scope: `DATASOURCES:${t.permission === 'APPEND' ? 'APPEND' : 'READ'}:${d.name}` })),
    ),
    ...project.pipes.flatMap((p) => p.value.tokens.map((t) => ({ t, file: p.file, scope: `PIPES:READ:${p.name}` }))),
  ];
  for (const { t, file, scope } of refs) {
    if (!['READ', 'APPEND'].includes(t.permission))
      throw new DatafileError(`Invalid token permission "${t.permission}": use READ or APPEND`, file, t.line ?? 0);
    want(t.name, file, scope);
  }
  if (!desired.size) return;
  const { tokens } = await client.json<{ tokens: TokenJson[] }>('GET', '/v0/tokens');
  for (const [name, d] of desired) {
    const item = (action: Action, detail?: string): PlanItem => ({ kind: 'token', name, file: d.file, action, ...(detail ? { detail } : {}) });
    const existing = tokens.find((t) => t.name === name);
    const scopes = [...d.scopes];
    if (!existing) {
      if (!opts.dryRun) await client.json('POST', '/v0/tokens', { query: { name, scope: scopes, description: d.description } });
      opts.report(item('create', scopes.join(' ')));
      continue;
    }
    const have = existing.scopes.map(scopeText);
    const next = d.exact ? scopes : [...new Set([...have, ...scopes])];
    if (next.length === have.length && next.every((s) => have.includes(s))) {
      opts.report(item('unchanged'));
      continue;
    }
    if (!opts.dryRun)
      await client.json('PUT', `/v0/tokens/${enc(name)}`, { query: { scope: next, ...(d.description !== undefined ? { description: d.description } : {}) } });
    opts.report(item('alter', next.join(' ')));
  }
}

// ---------------------------------------------------------------- all

/** Runs `fn`; an API error becomes an error pointing at the file (and line). */
async function withFile<T>(r: Resource<unknown>, line: number | undefined, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof CliError && e.status !== undefined && e.status < 500) throw new DatafileError(e.message, r.file, line ?? 0);
    throw e;
  }
}

export async function push(client: Client, project: Project, opts: PushOptions): Promise<PlanItem[]> {
  const items: PlanItem[] = [];
  const report = (i: PlanItem) => {
    items.push(i);
    opts.report(i);
  };
  for (const d of project.datasources) report(await pushDatasource(client, d, opts));
  for (const p of project.pipes) report(await pushPipe(client, p, opts));
  await pushTokens(client, project, { ...opts, report });
  return items;
}
