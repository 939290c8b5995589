/**
 * Pipe and node representations: the JSON of the Pipes API (reference §5.2) and the `.pipe`
 * datafile text (§11.3, printed by src/datafile).
 */
import type { NodeRecord, PipeRecord } from '../../catalog/catalog.js';
import type { Auth } from '../../domain/access.js';
import { pipeType } from '../../domain/pipe-service.js';
import { tbTime } from '../../basics/time.js';
import { isTemplate, templateParams } from '../../template/index.js';

export interface JsonOptions {
  /** Include each node's dependencies (list endpoints make it opt-in). */
  dependencies?: boolean;
  /** Keep only these pipe attributes / node attributes. */
  attrs?: string[];
  nodeAttrs?: string[];
  apiHost: string;
}

/** The params of a node: derived from its template (empty for plain SQL); unparsable templates have none. */
export function nodeParams(sql: string): unknown[] {
  if (!isTemplate(sql)) return [];
  try {
    return templateParams(sql);
  } catch {
    return [];
  }
}

/** `workspaceId`: the pipe's, named by a copy node's tags (a copy writes into its own workspace). */
export function nodeJson(n: NodeRecord, opts: { dependencies?: boolean; limited?: boolean; workspaceId?: string } = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: n.id,
    name: n.name,
    sql: n.sql,
    description: n.description,
    materialized: n.nodeType === 'materialized' ? n.data.materialized : null,
    cluster: null,
    tags: {},
    created_at: tbTime(n.createdAt),
    updated_at: tbTime(n.updatedAt),
    version: 0,
    project: null,
    result: null,
    ignore_sql_errors: false,
    node_type: n.nodeType,
  };
  if (n.nodeType === 'copy') {
    out.tags = { copy_target_datasource: n.data.copy_target, copy_target_workspace: opts.workspaceId ?? null };
    out.mode = n.data.mode;
  }
  if (opts.dependencies !== false) out.dependencies = n.dependencies;
  out.params = nodeParams(n.sql);
  // A token that may only read the endpoint does not see how it is built.
  if (opts.limited) delete out.sql;
  return out;
}

export function pipeJson(p: PipeRecord, auth: Auth, opts: JsonOptions): Record<string, unknown> {
  const limited = !auth.canCreatePipes;
  const out: Record<string, unknown> = {
    id: p.id,
    name: p.name,
    description: p.description,
    endpoint: p.endpoint,
    created_at: tbTime(p.createdAt),
    updated_at: tbTime(p.updatedAt),
    parent: p.parent,
    type: pipeType(p),
    last_commit: { content_sha: '', path: '', status: 'ok' },
    nodes: p.nodes.map((n) => pick(nodeJson(n, { dependencies: opts.dependencies, limited, workspaceId: p.workspaceId }), opts.nodeAttrs)),
    url: `${opts.apiHost}/v0/pipes/${p.name}.json`,
  };
  const copy = p.nodes.find((n) => n.nodeType === 'copy');
  if (copy) {
    out.copy_node = copy.id;
    out.copy_target_datasource = copy.data.copy_target;
    out.copy_target_workspace = p.workspaceId;
    out.copy_mode = copy.data.mode;
    if (copy.data.cron) out.schedule = { timezone: 'Etc/UTC', cron: copy.data.cron, status: copy.data.schedule_status };
  }
  const sink = p.nodes.find((n) => n.nodeType === 'sink');
  if (sink) {
    out.sink_node = sink.id;
    if (sink.data.cron) out.schedule = { timezone: 'Etc/UTC', cron: sink.data.cron, status: sink.data.schedule_status };
  }
  return pick(out, opts.attrs);
}

function pick(o: Record<string, unknown>, keys?: string[]): Record<string, unknown> {
  if (!keys || keys.length === 0) return o;
  return Object.fromEntries(keys.filter((k) => k in o).map((k) => [k, o[k]]));
}
