/**
 * Deploying pipes: one service that the Pipes API (`POST /v0/pipes`, appending a node), the CLI's
 * `push` (through that API) and the console share. A deploy is planned first — the nodes are
 * checked one by one (each seeing the earlier ones) and the plan says what is created, replaced or
 * left alone — then applied all-or-nothing: a materialized, copy or sink node whose settings are
 * refused undoes the whole change (the pipe, its views and the data sources they created).
 * Rejects with the 4xx of the first check that fails; nothing has changed by then.
 */
import type { NodeRecord, NodeType, PipeRecord } from '../catalog/catalog.js';
import type { QueryService } from './query-service.js';
import { isTemplate, templateTables } from '../template/index.js';
import type { Auth } from './access.js';
import type { CopyService, CopySettings } from './copy-service.js';
import type { DatasourceService } from './datasource-service.js';
import { badRequest, conflict, forbidden, PipitError } from '../basics/errors.js';
import type { MaterializeOptions, MaterializeService } from './materialize-service.js';
import type { PipeService } from './pipe-service.js';
import type { SinkService, SinkSettings } from './sink-service.js';

/** What a node is beyond its SQL: its type and, for materialized, copy and sink nodes, their settings. */
export type NodeRole =
  | { type: 'standard' | 'endpoint' }
  | { type: 'materialized'; materialize: MaterializeOptions }
  | { type: 'copy'; copy: CopySettings }
  | { type: 'sink'; sink: SinkSettings };

/** A node as a request describes it (JSON `nodes[]`, a `from=` pipe's nodes, `sql=`, a node body). */
export interface NodeSpec {
  name?: string;
  sql: string;
  description: string | null;
  role: NodeRole;
}

/** A whole pipe to deploy. */
export interface PipeSpec {
  name: string;
  description: string | null;
  nodes: NodeSpec[];
  /** Replace a pipe of that name (`force=true`, `tb push --force`); without it the name must be free. */
  force: boolean;
  /** The pipe this one was made from (`from=`). */
  parent: string | null;
}

export type PlanAction = 'create' | 'replace' | 'unchanged' | 'delete';

/** What applying a spec does; `nodes` lists the new nodes and then the old ones that go away. */
export interface PipePlan {
  spec: PipeSpec;
  action: 'create' | 'replace';
  existing: PipeRecord | null;
  /** The new nodes, checked, as they will be saved (materialized, copy and sink roles are set when applied). */
  records: NodeRecord[];
  nodes: Array<{ name: string; action: PlanAction }>;
}

export class DeployService {
  constructor(
    private readonly deps: {
      pipes: PipeService;
      datasources: DatasourceService;
      queries: QueryService;
      materializations: MaterializeService;
      copies: CopyService;
      sinks: SinkService;
    },
  ) {}

  /**
   * Checks a node's SQL in the context of its pipe; returns its dependencies. `saved` is the
   * node's SQL as saved: kept unchanged, it may name secrets whoever saves the node (an admin
   * wrote it); new SQL may only when an ADMIN token saves it.
   */
  async checkNode(auth: Auth, pipe: PipeRecord, index: number, sql: string, reqId: string, saved?: string): Promise<string[]> {
    const { queries } = this.deps;
    let prepared;
    try {
      prepared = await queries.prepare(auth, sql, { testMode: true, params: {}, pipe, nodeLimit: index, savedNode: saved !== undefined && saved === sql });
    } catch (err) {
      if (err instanceof PipitError && err.code === 'not_found') throw badRequest(err.message);
      throw err;
    }
    if (prepared.format) throw badRequest('The SQL of a node can not have a FORMAT clause');
    // Plain SQL is also checked by the engine (unknown columns, types); a template's test-mode
    // placeholders may not make a runnable query, so it is checked when it runs.
    if (!isTemplate(sql)) await queries.describe(prepared, reqId);
    // table('x') names count in every branch, not only the ones test mode ran.
    const names = prepared.tables.map((t) => t.name);
    if (isTemplate(sql)) for (const t of templateTables(sql)) if (!names.includes(t)) names.push(t);
    return names;
  }

  /**
   * Copy pipes and materialized views write what the pipes they read return, so changing a pipe
   * (a node's SQL or name, its endpoint, its name) changes the rows they write: it needs the write
   * rule on every Data Source it feeds, directly or through other pipes (scheduled copies run with
   * the workspace's authority, populates re-read the nodes).
   */
  async checkFeeds(auth: Auth, pipeNames: string[]): Promise<void> {
    if (auth.canWrite(null, 'change')) return;
    const pipes = await this.deps.pipes.list(auth.workspace);
    const feeding = new Set(pipeNames);
    for (let grew = true; grew; ) {
      grew = false;
      for (const p of pipes) {
        if (!feeding.has(p.name) && p.nodes.some((n) => n.dependencies.some((d) => feeding.has(d)))) {
          feeding.add(p.name);
          grew = true;
        }
      }
    }
    for (const p of pipes) {
      if (!feeding.has(p.name)) continue;
      for (const n of p.nodes) {
        const copy = n.nodeType === 'copy';
        if (!copy && n.nodeType !== 'materialized') continue;
        const target = await this.deps.datasources.find(auth.workspace, String(copy ? n.data.copy_target : n.data.materialized));
        if (!target) continue;
        const via = pipeNames.includes(p.name)
          ? `The ${copy ? 'copy' : 'materialized'} node '${n.name}' of the pipe '${p.name}'`
          : `The pipe '${pipeNames[0]}' feeds the ${copy ? 'copy pipe' : 'materialized view'} '${p.name}', which`;
        auth.requireWrite(target, copy && n.data.mode === 'replace' ? 'change' : 'append', via);
      }
    }
  }

  /**
   * Plans a pipe: checks the caller may create (or, with `force`, replace) it, that the name is
   * free and every node's SQL; changes nothing.
   */
  async plan(auth: Auth, spec: PipeSpec, reqId: string): Promise<PipePlan> {
    const { pipes } = this.deps;
    auth.requirePipesCreate();
    const found = spec.force ? await pipes.find(auth.workspace, spec.name) : null;
    const existing = found?.name === spec.name ? found : null;
    if (existing) {
      if (!auth.canDropPipe(existing.id)) throw forbidden(`token needs scope PIPES:DROP:${existing.name} to overwrite it`);
      if (existing.nodes.some((n) => n.nodeType === 'materialized')) {
        throw conflict(`The pipe '${existing.name}' materializes into a Data Source: unlink its materialized nodes (or delete the pipe) before overwriting it`);
      }
    }
    await pipes.checkNewName(auth.workspace, spec.name, existing?.id);
    // Copies and views may still read a dropped pipe of this name, or read the one overwritten.
    await this.checkFeeds(auth, [spec.name]);
    const records = await this.buildNodes(auth, spec.name, spec.nodes, reqId);
    const nodes: PipePlan['nodes'] = spec.nodes.map((n, i) => {
      const old = existing?.nodes.find((o) => o.name === records[i].name);
      if (!old) return { name: records[i].name, action: 'create' };
      const same = old.sql === n.sql && old.nodeType === n.role.type && (n.description ?? null) === (old.description ?? null);
      return { name: old.name, action: same && (n.role.type === 'standard' || n.role.type === 'endpoint') ? 'unchanged' : 'replace' };
    });
    for (const old of existing?.nodes ?? []) if (!records.some((r) => r.name === old.name)) nodes.push({ name: old.name, action: 'delete' });
    return { spec, action: existing ? 'replace' : 'create', existing, records, nodes };
  }

  /** Applies a plan: the pipe is saved, then each node's role set; any refusal undoes all of it. */
  async apply(auth: Auth, plan: PipePlan, reqId: string): Promise<PipeRecord> {
    const { pipes, datasources, materializations, copies, sinks } = this.deps;
    const { spec, existing, records } = plan;
    let pipe = existing
      ? await this.overwrite(auth, existing, spec.description, records, spec.parent)
      : await pipes.create(auth.workspace, spec.name, spec.description, records, spec.parent);
    const createdTargets: string[] = [];
    try {
      for (const [i, { role }] of spec.nodes.entries()) {
        const node = () => pipes.node(pipe, records[i].id);
        if (role.type === 'sink') pipe = await sinks.set(auth, pipe, node(), role.sink, reqId);
        else if (role.type === 'copy') pipe = await copies.set(auth, pipe, node(), role.copy, reqId);
        else if (role.type === 'materialized') {
          if (!role.materialize.datasource) throw badRequest(`The node '${records[i].name}' is materialized and needs a "datasource"`);
          const r = await materializations.materialize(auth, pipe, node(), role.materialize, reqId);
          pipe = r.pipe;
          if (r.created) createdTargets.push(r.target.id);
        }
      }
    } catch (err) {
      for (const n of pipe.nodes) if (n.nodeType === 'materialized') await materializations.unlink(auth, pipe.id, n.id).catch(() => undefined);
      for (const id of createdTargets) {
        const ds = await datasources.find(auth.workspace, id);
        if (ds) await datasources.drop(auth.workspace, ds).catch(() => undefined);
      }
      if (existing) await pipes.save(auth.workspace, existing);
      else await pipes.drop(auth.workspace, pipe);
      throw err;
    }
    return pipe;
  }

  /** Plans and applies a pipe. */
  async deploy(auth: Auth, spec: PipeSpec, reqId: string): Promise<PipeRecord> {
    return this.apply(auth, await this.plan(auth, spec, reqId), reqId);
  }

  /**
   * Appends a node to a pipe and gives it its role, whole or not at all: a role that is refused
   * removes the node again. Returns the pipe, the node and what a materialization created.
   */
  async appendNode(
    auth: Auth,
    pipe: PipeRecord,
    spec: NodeSpec,
    reqId: string,
  ): Promise<{ pipe: PipeRecord; node: NodeRecord; materialized?: Awaited<ReturnType<MaterializeService['materialize']>> }> {
    const { pipes, materializations, copies, sinks } = this.deps;
    const { role } = spec;
    await this.checkFeeds(auth, [pipe.name]);
    const dependencies = await this.checkNode(auth, pipe, pipe.nodes.length, spec.sql, reqId);
    const node = pipes.newNode(pipe, { name: spec.name, sql: spec.sql, description: spec.description, type: 'standard', dependencies });
    let saved = await pipes.save(auth.workspace, { ...pipe, nodes: [...pipe.nodes, node] });
    if (role.type === 'endpoint') saved = await pipes.publish(auth.workspace, saved, pipes.node(saved, node.id));
    if (role.type === 'standard' || role.type === 'endpoint') return { pipe: saved, node: pipes.node(saved, node.id) };
    try {
      if (role.type === 'sink') saved = await sinks.set(auth, saved, pipes.node(saved, node.id), role.sink, reqId);
      else if (role.type === 'copy') saved = await copies.set(auth, saved, pipes.node(saved, node.id), role.copy, reqId);
      else if (role.type === 'materialized') {
        const r = await materializations.materialize(auth, saved, pipes.node(saved, node.id), role.materialize, reqId);
        return { pipe: r.pipe, node: pipes.node(r.pipe, node.id), materialized: r };
      }
    } catch (err) {
      // Not materialized, not appended: the change is whole or nothing.
      await pipes.save(auth.workspace, { ...saved, nodes: saved.nodes.filter((n) => n.id !== node.id) });
      throw err;
    }
    return { pipe: saved, node: pipes.node(saved, node.id) };
  }

  /** A draft pipe (nodes checked one by one, each seeing the earlier ones). */
  private async buildNodes(auth: Auth, name: string, specs: NodeSpec[], reqId: string): Promise<NodeRecord[]> {
    const draft: PipeRecord = {
      id: '',
      version: 0,
      workspaceId: auth.workspace.id,
      name,
      description: null,
      endpoint: null,
      parent: null,
      nodes: [],
      createdAt: '',
      updatedAt: '',
      data: {},
    };
    for (const spec of specs) {
      const dependencies = await this.checkNode(auth, draft, draft.nodes.length, spec.sql, reqId);
      // A materialized, copy or sink node becomes one once the pipe exists (apply()).
      const type: NodeType = spec.role.type === 'endpoint' ? 'endpoint' : 'standard';
      draft.nodes.push(this.deps.pipes.newNode(draft, { name: spec.name, sql: spec.sql, description: spec.description, type, dependencies }));
    }
    return draft.nodes;
  }

  /**
   * Replaces the nodes of an existing pipe (`force=true`): same id and name; the endpoint stays
   * published when a new node has the old endpoint node's name (seed 001), unless a new node is
   * itself an endpoint.
   */
  private async overwrite(auth: Auth, existing: PipeRecord, description: string | null, nodes: NodeRecord[], parent: string | null): Promise<PipeRecord> {
    const endpoints = nodes.filter((n) => n.nodeType === 'endpoint');
    if (endpoints.length > 1) throw badRequest('A pipe can only have one endpoint node');
    const oldEndpoint = existing.nodes.find((n) => n.id === existing.endpoint);
    let endpoint = endpoints[0] ?? (oldEndpoint ? nodes.find((n) => n.name === oldEndpoint.name) : undefined);
    if (endpoint && endpoint.nodeType !== 'endpoint') {
      const published: NodeRecord = { ...endpoint, nodeType: 'endpoint' };
      nodes = nodes.map((n) => (n.id === published.id ? published : n));
      endpoint = published;
    }
    return this.deps.pipes.save(auth.workspace, {
      ...existing,
      description: description ?? existing.description,
      nodes,
      endpoint: endpoint?.id ?? null,
      parent: parent ?? existing.parent,
    });
  }
}
