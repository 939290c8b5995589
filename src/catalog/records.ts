/**
 * Parsing of stored documents into typed records, once, as they leave the catalog: a document
 * that does not have the shape its type promises (written by an older version, or damaged) is
 * refused here rather than deep inside a service.
 */
import type {
  CopyData,
  DatasourceRecord,
  IntentKind,
  IntentRecord,
  CopyNode,
  MaterializedData,
  MaterializedNode,
  NodeRecord,
  NodeSchedule,
  NodeType,
  SinkData,
  SinkNode,
  StandardNode,
  Workspace,
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
function num(d: Doc, k: string, what: string): number | undefined {
  const v = d[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number') throw malformed(`${what} (${k})`);
  return v;
}
function bool(d: Doc, k: string, what: string): boolean {
  const v = d[k];
  if (typeof v !== 'boolean') throw malformed(`${what} (${k})`);
  return v;
}
function strings(d: Doc, k: string, what: string): string[] {
  const v = d[k];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw malformed(`${what} (${k})`);
  return v;
}
function doc(v: unknown, what: string): Doc {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw malformed(what);
  return v as Doc;
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

/** Reads one field of a stored document, or says it is malformed. */
type Reader<T> = (d: Doc, k: string, what: string) => T;
type Fields = Record<string, Reader<unknown>>;

/** The fields of `d` that `spec` names, each read (and checked) by its reader; other keys are dropped. */
function readFields<S extends Fields>(d: Doc, spec: S, what: string): { [K in keyof S]: ReturnType<S[K]> } {
  return Object.fromEntries(Object.entries(spec).map(([k, read]) => [k, read(d, k, what)])) as { [K in keyof S]: ReturnType<S[K]> };
}

const among =
  <T extends string>(...values: T[]): Reader<T> =>
  (d, k, what) =>
    oneOf(d, k, values, what);
const optional: Reader<string | undefined> = (d, k, what) => strOrNull(d, k, what) ?? undefined;

/** A data source as an intent keeps it (the record before or after a change, stored whole). */
const datasource: Reader<DatasourceRecord> = (d, k, what) => {
  const v = doc(d[k], `${what} (${k})`);
  if (typeof v.id !== 'string' || typeof v.name !== 'string' || !Array.isArray(v.columns)) throw malformed(`${what} (${k})`);
  return d[k] as DatasourceRecord;
};

/** A stored workspace. */
export function parseWorkspace(raw: unknown): Workspace {
  return readFields(doc(raw, 'workspace'), { id: str, name: str, database: str, createdAt: str }, 'workspace');
}

/** What each kind of intent records (catalog.ts IntentDataByKind), field by field. */
const INTENT_FIELDS = {
  append: {
    database: str,
    target: str,
    staging: str,
    cols: strings,
    phase: among('stage', 'publish'),
    rows: num,
    chunkRows: num,
    published: num,
    job: optional,
  },
  replace: {
    database: str,
    target: str,
    shadow: str,
    shadowUuid: strOrNull,
    condition: strOrNull,
    token: str,
    quarantine: bool,
    phase: among('load', 'swap'),
    job: optional,
  },
  alter: { ds: str, before: datasource, after: datasource, engineOps: strings, quarantineOps: strings, stages: bool, job: optional },
  materialize: { pipe: str, node: str, view: str, created: strOrNull, job: optional },
  unlink: { pipe: str, node: str, view: str, job: optional },
} satisfies { [K in IntentKind]: Fields };

/** A stored intent of the journal, typed by its kind; an unknown kind or a missing field is an error of the stored data. */
export function parseIntent(raw: unknown): IntentRecord {
  const i = doc(raw, 'intent');
  const base = readFields(i, { id: str, workspaceId: str, createdAt: str, updatedAt: str }, 'intent');
  const kind = str(i, 'kind', 'intent');
  const data = doc(i.data, `${kind} intent (data)`);
  const what = `${kind} intent`;
  switch (kind) {
    case 'append':
      return { ...base, kind, data: readFields(data, INTENT_FIELDS.append, what) };
    case 'replace':
      return { ...base, kind, data: readFields(data, INTENT_FIELDS.replace, what) };
    case 'alter':
      return { ...base, kind, data: readFields(data, INTENT_FIELDS.alter, what) };
    case 'materialize':
      return { ...base, kind, data: readFields(data, INTENT_FIELDS.materialize, what) };
    case 'unlink':
      return { ...base, kind, data: readFields(data, INTENT_FIELDS.unlink, what) };
    default:
      throw new Error(`catalog: a stored intent has the unknown kind "${kind}"`);
  }
}
