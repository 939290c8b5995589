/**
 * Pipes and their nodes: the catalog record, names (pipes share one namespace with data sources;
 * node names are unique within a pipe), node operations and publishing. The SQL of a node is
 * checked by the caller (src/sql, which also yields its dependencies) before it is saved here.
 */
import {
  type Catalog,
  type NodeRecord,
  type NodeType,
  type PipeRecord,
  newNamedRecord,
  type StandardNode,
  UniqueViolation,
  type Workspace,
} from '../catalog/catalog.js';
import { retype } from '../catalog/records.js';
import type { DatasourceService } from './datasource-service.js';
import { badRequest, conflict, forbidden, notFound } from '../basics/errors.js';
import { byNameOrId, newResourceId } from '../basics/ids.js';
import { validateResourceName } from '../schema/index.js';
import { nowIso } from '../basics/time.js';
import { WorkspaceCache } from '../catalog/workspace-cache.js';

export interface NewNode {
  name?: string;
  sql: string;
  description?: string | null;
  /** New nodes are plain; materializing, copying or sinking one retypes it. */
  type?: 'standard' | 'endpoint';
  dependencies: string[];
}

/** The 404 of an unknown pipe, worded as Tinybird words it (clients' suites match the text). */
export const pipeNotFound = (nameOrId: string) => notFound(`Pipe '${nameOrId}' not found`);

/** Whether a node of `pipe` reads the data source `name`. */
export const readsDatasource = (pipe: PipeRecord, name: string) => pipe.nodes.some((n) => n.dependencies.includes(name));

export const NODE_TYPES: readonly NodeType[] = ['standard', 'endpoint', 'materialized', 'copy', 'sink'];

export class PipeService {
  /** workspace id → (id → record); the catalog is the truth, this is its cache (coherent across copies). */
  private readonly cache: WorkspaceCache<Map<string, PipeRecord>>;

  constructor(
    private readonly catalog: Catalog,
    private readonly datasources: DatasourceService,
  ) {
    this.cache = new WorkspaceCache(catalog, ['pipes'], async (wsId) => new Map((await catalog.listPipes(wsId)).map((p) => [p.id, p])));
  }

  /** Calls `listener` when a workspace's records change (null: every workspace's), see WorkspaceCache.onChange. */
  onChange(listener: (workspaceId: string | null) => void): void {
    this.cache.onChange(listener);
  }

  private byId(ws: Workspace): Promise<Map<string, PipeRecord>> {
    return this.cache.get(ws.id);
  }

  async list(ws: Workspace): Promise<PipeRecord[]> {
    return [...(await this.byId(ws)).values()];
  }

  /** Pipes with a node that reads `datasourceName` (a data source's `used_by`). */
  async usedBy(ws: Workspace, datasourceName: string): Promise<PipeRecord[]> {
    return (await this.list(ws)).filter((p) => readsDatasource(p, datasourceName));
  }

  /** By name or id (also decorated ids); null when absent. */
  async find(ws: Workspace, nameOrId: string): Promise<PipeRecord | null> {
    return this.cache.find(ws.id, (m) => byNameOrId(m, nameOrId));
  }

  async get(ws: Workspace, nameOrId: string): Promise<PipeRecord> {
    const p = await this.find(ws, nameOrId);
    if (!p) throw pipeNotFound(nameOrId);
    return p;
  }

  /** Checks a new pipe name: valid, and free among pipes and data sources. */
  async checkNewName(ws: Workspace, name: string, self?: string): Promise<void> {
    validateResourceName(name, 'pipe');
    const other = await this.find(ws, name);
    if (other && other.id !== self) throw conflict(`There's another resource with the same name "${name}", names must be unique`);
    if (await this.datasources.find(ws, name))
      throw conflict(`There's another resource with the same name "${name}", names must be unique. A Data Source with the "${name}" name exists`);
  }

  /** A node record; its name checked for validity and uniqueness in `pipe`. */
  newNode(pipe: { name: string; nodes: NodeRecord[] }, spec: NewNode, index = pipe.nodes.length): StandardNode {
    const name = spec.name || this.autoName(pipe, index);
    validateResourceName(name, 'node');
    if (pipe.nodes.some((n) => n.name === name)) {
      throw conflict(`Node name "${name}" already exists in pipe. Node names must be unique within a given pipe.`);
    }
    if (!spec.sql?.trim()) throw badRequest('The SQL of a node can not be empty');
    const now = nowIso();
    return {
      id: newResourceId(),
      name,
      sql: spec.sql,
      description: spec.description ?? null,
      nodeType: spec.type ?? 'standard',
      dependencies: spec.dependencies,
      createdAt: now,
      updatedAt: now,
      data: {},
    };
  }

  private autoName(pipe: { name: string; nodes: NodeRecord[] }, index: number): string {
    let i = index;
    while (pipe.nodes.some((n) => n.name === `${pipe.name}_${i}`)) i++;
    return `${pipe.name}_${i}`;
  }

  /** Creates a pipe with its nodes (already checked); an `endpoint`-typed node is published. */
  async create(ws: Workspace, name: string, description: string | null, nodes: NodeRecord[], parent: string | null = null): Promise<PipeRecord> {
    await this.checkNewName(ws, name);
    const endpoints = nodes.filter((n) => n.nodeType === 'endpoint');
    if (endpoints.length > 1) throw badRequest('A pipe can only have one endpoint node');
    const pipe: PipeRecord = { ...newNamedRecord(ws, name), description, endpoint: endpoints[0]?.id ?? null, parent, nodes, data: {} };
    try {
      await this.catalog.insertPipe(pipe);
    } catch (err) {
      if (err instanceof UniqueViolation) throw conflict(`There's another resource with the same name "${name}", names must be unique`);
      throw err;
    }
    await this.cache.update(ws.id, (m) => m.set(pipe.id, pipe));
    return pipe;
  }

  /** Saves a changed pipe (the caller built it from the cached one). */
  async save(ws: Workspace, pipe: PipeRecord): Promise<PipeRecord> {
    const updated = await this.catalog.updatePipe({ ...pipe, updatedAt: nowIso() });
    await this.cache.update(ws.id, (m) => m.set(updated.id, updated));
    return updated;
  }

  async drop(ws: Workspace, pipe: PipeRecord): Promise<void> {
    await this.catalog.deletePipe(ws.id, pipe.id);
    await this.cache.update(ws.id, (m) => m.delete(pipe.id));
  }

  node(pipe: PipeRecord, nameOrId: string, unknown: typeof notFound = notFound): NodeRecord {
    const n = pipe.nodes.find((x) => x.id === nameOrId || x.name === nameOrId);
    if (!n) throw unknown(`Pipe '${pipe.name}' does not contain the '${nameOrId}' node`);
    return n;
  }

  /** The node a publish names: an unknown one is a bad request (400), as Tinybird answers. */
  publishable(pipe: PipeRecord, nameOrId: string): NodeRecord {
    return this.node(pipe, nameOrId, badRequest);
  }

  /** Publishes `node` as the pipe's endpoint (replacing a previous one). */
  async publish(ws: Workspace, pipe: PipeRecord, node: NodeRecord): Promise<PipeRecord> {
    const kind = pipeType(pipe);
    if (kind === 'materialized' || kind === 'copy' || kind === 'sink') {
      throw forbidden(
        `The pipe '${pipe.name}' is a ${kind === 'materialized' ? 'materialized view' : `${kind} pipe`} and can not be published as an API Endpoint`,
      );
    }
    const nodes = pipe.nodes.map((n) => {
      if (n.id === node.id) return { ...retype(n, 'endpoint'), updatedAt: nowIso() };
      if (n.nodeType === 'endpoint') return retype(n, 'standard');
      return n;
    });
    return this.save(ws, { ...pipe, nodes, endpoint: node.id });
  }

  async unpublish(ws: Workspace, pipe: PipeRecord, node: NodeRecord): Promise<PipeRecord> {
    if (pipe.endpoint !== node.id) throw badRequest(`Pipe '${pipe.name}' node '${node.name}' is not an endpoint`);
    const nodes = pipe.nodes.map((n) => (n.id === node.id ? retype(n, 'standard') : n));
    return this.save(ws, { ...pipe, nodes, endpoint: null });
  }
}

/** The pipe's type as Tinybird reports it. */
export function pipeType(pipe: PipeRecord): 'default' | 'endpoint' | 'materialized' | 'copy' | 'sink' {
  if (pipe.endpoint) return 'endpoint';
  for (const t of ['materialized', 'copy', 'sink'] as const) if (pipe.nodes.some((n) => n.nodeType === t)) return t;
  return 'default';
}
