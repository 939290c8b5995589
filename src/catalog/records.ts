/**
 * Parsing of stored documents into typed records, once, as they leave the catalog: a document
 * that does not have the shape its type promises (written by an older version, or damaged) is
 * refused here rather than deep inside a service.
 */
import type {
  CopyData,
  CopyNode,
  MaterializedData,
  MaterializedNode,
  NodeRecord,
  NodeSchedule,
  NodeType,
  SinkData,
  SinkNode,
  StandardNode,
} from './catalog.js';

const NODE_TYPES: ReadonlySet<string> = new Set<NodeType>(['standard', 'endpoint', 'materialized', 'copy', 'sink']);

type Doc = Record<string, unknown>;

function malformed(what: string): Error {
  return new Error(`catalog: a stored ${what} is malformed`);
}

/** `d[k]` when it is a string (or, with `nullable`, null or absent: null). */
function str(d: Doc, k: string, what: string): string {
  const v = d[k];
  if (typeof v !== 'string') throw malformed(`${what} (${k})`);
  return v;
}
function strOrNull(d: Doc, k: string, what: string): string | null {
  const v = d[k];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw malformed(`${what} (${k})`);
  return v;
}
function oneOf<T extends string>(d: Doc, k: string, values: readonly T[], what: string): T {
  const v = d[k];
  if (!values.includes(v as T)) throw malformed(`${what} (${k})`);
  return v as T;
}

/** The schedule fields (absent: no schedule, running). */
function schedule(d: Doc, what: string): NodeSchedule {
  return {
    cron: strOrNull(d, 'cron', what) || null,
    schedule_status: d.schedule_status === 'paused' ? 'paused' : 'running',
    last_tick: strOrNull(d, 'last_tick', what),
  };
}

function materializedData(d: Doc): MaterializedData {
  const what = 'materialized node';
  return { ...d, materialized: str(d, 'materialized', what), view: str(d, 'view', what), trigger: strOrNull(d, 'trigger', what) };
}

function copyData(d: Doc): CopyData {
  const what = 'copy node';
  return { ...d, ...schedule(d, what), copy_target: str(d, 'copy_target', what), mode: oneOf(d, 'mode', ['append', 'replace'], what) };
}

function sinkData(d: Doc): SinkData {
  const what = 'sink node';
  return {
    ...d,
    ...schedule(d, what),
    sink_connection: str(d, 'sink_connection', what),
    sink_connection_name: str(d, 'sink_connection_name', what),
    sink_service: str(d, 'sink_service', what),
    sink_path: str(d, 'sink_path', what),
    sink_file_template: str(d, 'sink_file_template', what),
    sink_format: oneOf(d, 'sink_format', ['csv', 'ndjson', 'parquet'], what),
    sink_compression: oneOf(d, 'sink_compression', ['none', 'gz', 'zstd'], what),
    sink_write_strategy: oneOf(d, 'sink_write_strategy', ['new', 'truncate'], what),
  };
}

/** A node of a stored pipe, typed by its node type; unknown node types and missing type fields are an error of the stored data. */
export function parseNode(raw: unknown): NodeRecord {
  const n = raw as Doc | null;
  if (!n || typeof n !== 'object' || typeof n.id !== 'string' || typeof n.sql !== 'string') throw malformed('pipe node');
  const nodeType = (n.nodeType ?? 'standard') as string;
  if (!NODE_TYPES.has(nodeType)) throw new Error(`catalog: a stored pipe node has the unknown type "${nodeType}"`);
  const data = (n.data && typeof n.data === 'object' ? n.data : {}) as Doc;
  const base = {
    id: n.id,
    name: String(n.name),
    sql: n.sql,
    description: typeof n.description === 'string' ? n.description : null,
    dependencies: Array.isArray(n.dependencies) ? (n.dependencies as string[]) : [],
    createdAt: String(n.createdAt),
    updatedAt: String(n.updatedAt),
  };
  switch (nodeType) {
    case 'materialized':
      return { ...base, nodeType, data: materializedData(data) };
    case 'copy':
      return { ...base, nodeType, data: copyData(data) };
    case 'sink':
      return { ...base, nodeType, data: sinkData(data) };
    default:
      return { ...base, nodeType: nodeType as 'standard' | 'endpoint', data };
  }
}

/** The node as `nodeType` with the type's fields added to its data (other keys kept, as stored). */
export function retype(node: NodeRecord, nodeType: 'materialized', data: MaterializedData): MaterializedNode;
export function retype(node: NodeRecord, nodeType: 'copy', data: CopyData): CopyNode;
export function retype(node: NodeRecord, nodeType: 'sink', data: SinkData): SinkNode;
/** The node as a standard or endpoint node, without the data keys `drop` (those of the type it leaves). */
export function retype(node: NodeRecord, nodeType: 'standard' | 'endpoint', drop?: readonly string[]): StandardNode;
export function retype(node: NodeRecord, nodeType: NodeType, arg?: Doc | readonly string[]): NodeRecord {
  if (Array.isArray(arg) || arg === undefined) {
    const drop = new Set<string>(arg ?? []);
    const data = Object.fromEntries(Object.entries(node.data).filter(([k]) => !drop.has(k)));
    return { ...node, nodeType: nodeType as 'standard' | 'endpoint', data };
  }
  return parseNode({ ...node, nodeType, data: { ...node.data, ...arg } });
}

/** The node with some of its type's fields changed. */
export function patchData<N extends NodeRecord>(node: N, patch: Partial<N['data']>): N {
  return { ...node, data: { ...node.data, ...patch } };
}
