// Table engines and skipping indexes (reference §2.4, §2.6, §2.7): `engine`/`engine_*` request args
// → EngineSpec → ClickHouse DDL tail and the API's engine JSON. Rejects unknown engines and params,
// missing required params, and anything unsafe to paste into DDL (`;`, comments, non-literal settings).

import type { Column, EngineSpec, IndexSpec } from '../basics/types.js';
import { SchemaError } from './errors.js';
import { checkExpression, splitTopLevel, stripOuterParens } from './sql.js';

export const SUPPORTED_ENGINES = [
  'MergeTree',
  'ReplacingMergeTree',
  'SummingMergeTree',
  'AggregatingMergeTree',
  'CollapsingMergeTree',
  'VersionedCollapsingMergeTree',
  'Join',
  'Null',
] as const;

const MERGETREE_OPTIONS = ['partition_key', 'sorting_key', 'primary_key', 'sampling_key', 'ttl', 'settings'];

interface EngineDef {
  /** Engine arguments, in DDL order. */
  args: string[];
  options: string[];
  required: string[];
}

const ENGINES: Record<string, EngineDef> = {
  MergeTree: { args: [], options: MERGETREE_OPTIONS, required: [] },
  ReplacingMergeTree: { args: ['ver', 'is_deleted'], options: MERGETREE_OPTIONS, required: ['sorting_key'] },
  SummingMergeTree: { args: ['columns'], options: MERGETREE_OPTIONS, required: [] },
  AggregatingMergeTree: { args: [], options: MERGETREE_OPTIONS, required: ['sorting_key'] },
  CollapsingMergeTree: { args: ['sign'], options: MERGETREE_OPTIONS, required: ['sign', 'sorting_key'] },
  VersionedCollapsingMergeTree: { args: ['sign', 'version'], options: MERGETREE_OPTIONS, required: ['sign', 'version'] },
  Join: {
    args: ['join_strictness', 'join_type', 'key_columns'],
    options: ['settings'],
    required: ['join_strictness', 'join_type', 'key_columns'],
  },
  Null: { args: [], options: [], required: [] },
};

/** Whether `engine` (a canonical name) takes an ORDER BY: the MergeTree family. */
export const takesSortingKey = (engine: string): boolean => ENGINES[engine]?.options.includes('sorting_key') ?? false;

/** Params holding SQL expressions; params holding column names; order used by every output. */
const EXPRESSION_PARAMS = new Set(['partition_key', 'sorting_key', 'primary_key', 'sampling_key', 'ttl']);
const COLUMN_PARAMS = new Set(['ver', 'is_deleted', 'sign', 'version']);
const COLUMN_LIST_PARAMS = new Set(['columns', 'key_columns']);
export const ENGINE_PARAM_ORDER = [
  'partition_key',
  'sorting_key',
  'primary_key',
  'sampling_key',
  'ttl',
  'settings',
  'ver',
  'is_deleted',
  'sign',
  'version',
  'columns',
  'join_strictness',
  'join_type',
  'key_columns',
];
const JOIN_STRICTNESS = ['ANY', 'ALL', 'SEMI', 'ANTI'];
const JOIN_TYPES = ['LEFT', 'INNER', 'RIGHT', 'FULL'];
const COLUMN_REF = /^(?:`[^`\\]+`|[A-Za-z_][A-Za-z0-9_.]*)$/;

export function isMergeTreeFamily(engine: string): boolean {
  return /MergeTree$/i.test(engine);
}

function canonicalEngine(name: string | undefined): string {
  const wanted = (name ?? '').trim() || 'MergeTree';
  const found = SUPPORTED_ENGINES.find((e) => e.toLowerCase() === wanted.toLowerCase());
  if (!found) throw new SchemaError(`Engine ${wanted} is not supported, supported engines include: ${SUPPORTED_ENGINES.join(', ')}`);
  return found;
}

/**
 * Builds an EngineSpec from request args: `engine` (default MergeTree) plus every `engine_*` arg,
 * stored without the prefix. Other args are ignored; empty values count as absent.
 */
export function parseEngineParams(engine: string | undefined, args: Record<string, string>): EngineSpec {
  const name = canonicalEngine(engine);
  const def = ENGINES[name];
  const allowed = [...def.args, ...def.options];
  const params: Record<string, string> = {};
  for (const [rawKey, rawValue] of Object.entries(args)) {
    const key = rawKey.toLowerCase();
    if (!key.startsWith('engine_')) continue;
    const param = key.slice('engine_'.length);
    const value = (rawValue ?? '').trim();
    if (!value) continue;
    if (!allowed.includes(param))
      throw new SchemaError(
        `Invalid engine parameter "${rawKey}" for engine ${name}. Valid parameters are: ${allowed.map((p) => `engine_${p}`).join(', ') || 'none'}`,
      );
    if (value.includes(';')) throw new SchemaError(`Invalid character ';' in engine_${param}`);
    params[param] = normalizeParam(param, value);
  }
  for (const r of def.required) if (!params[r]) throw new SchemaError(`Missing required parameter "engine_${r}" for engine ${name}`);
  if (params.is_deleted && !params.ver) throw new SchemaError('The parameter "engine_is_deleted" requires "engine_ver" to be set');
  return { engine: name, params };
}

function normalizeParam(param: string, value: string): string {
  const what = `engine_${param}`;
  if (EXPRESSION_PARAMS.has(param)) return checkExpression(value, what);
  if (param === 'settings')
    return parseSettings(value)
      .map(([k, v]) => `${k} = ${v}`)
      .join(', ');
  if (COLUMN_PARAMS.has(param)) return columnRef(value, what);
  if (COLUMN_LIST_PARAMS.has(param))
    return splitTopLevel(stripOuterParens(value))
      .map((c) => columnRef(c, what))
      .join(', ');
  if (param === 'join_strictness' || param === 'join_type') {
    const options = param === 'join_strictness' ? JOIN_STRICTNESS : JOIN_TYPES;
    const upper = value.toUpperCase();
    if (!options.includes(upper)) throw new SchemaError(`Invalid ${what} "${value}", valid values are: ${options.join(', ')}`);
    return upper;
  }
  return value;
}

function columnRef(value: string, what: string): string {
  if (!COLUMN_REF.test(value)) throw new SchemaError(`Invalid ${what} "${value}": expected a column name`);
  return value;
}

const SETTING_VALUE = /^(?:-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|'[^'\\]*'|[A-Za-z_][A-Za-z0-9_]*)$/i;

/**
 * Parses `k=v, k=v` engine settings. Keys must be identifiers and values plain literals (numbers,
 * true/false, quoted strings without escapes, identifiers): anything else could smuggle SQL into DDL.
 */
export function parseSettings(text: string): [string, string][] {
  if (text.includes(';')) throw new SchemaError("Invalid character ';' in engine_settings");
  return splitTopLevel(text).map((item): [string, string] => {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.+)$/s.exec(item);
    if (!m) throw new SchemaError(`Invalid engine_settings "${text}": expected a list of key=value`);
    const value = m[2].trim();
    if (!SETTING_VALUE.test(value))
      throw new SchemaError(`Invalid engine_settings value for "${m[1]}": ${value}. Only numbers, booleans, identifiers and quoted strings are allowed`);
    return [m[1], value];
  });
}

/** `a, b` → `(a, b)`; single expressions stay bare; empty → `tuple()`. */
function keyExpr(key: string | undefined): string {
  const k = key?.trim();
  if (!k) return 'tuple()';
  return splitTopLevel(k).length > 1 ? `(${k})` : k;
}

function checkColumns(spec: EngineSpec, columns: readonly Column[]): void {
  const names = new Set(columns.map((c) => c.name));
  for (const param of [...COLUMN_PARAMS, ...COLUMN_LIST_PARAMS]) {
    const value = spec.params[param];
    if (!value) continue;
    for (const ref of splitTopLevel(value)) {
      const name = ref.replace(/^`|`$/g, '');
      if (!names.has(name)) throw new SchemaError(`Invalid engine_${param}: column '${name}' does not exist in the schema`);
    }
  }
}

/**
 * The ClickHouse DDL tail for `spec`: `ENGINE = X(args) PARTITION BY .. PRIMARY KEY .. ORDER BY ..
 * SAMPLE BY .. TTL .. SETTINGS ..`. With `columns`, column references are checked against them.
 */
export function engineClause(spec: EngineSpec, columns?: readonly Column[]): string {
  const p = spec.params;
  if (columns) checkColumns(spec, columns);
  if (spec.engine === 'Null') return 'ENGINE = Null';
  if (spec.engine === 'Join') {
    const keys = splitTopLevel(p.key_columns ?? '');
    return `ENGINE = Join(${[p.join_strictness, p.join_type, ...keys].join(', ')})${p.settings ? ` SETTINGS ${p.settings}` : ''}`;
  }
  const args = ENGINES[spec.engine]?.args.filter((a) => p[a]).map((a) => (a === 'columns' ? keyExpr(p[a]) : p[a])) ?? [];
  const parts = [`ENGINE = ${spec.engine}${args.length ? `(${args.join(', ')})` : ''}`];
  if (p.partition_key) parts.push(`PARTITION BY ${keyExpr(p.partition_key)}`);
  if (p.primary_key) parts.push(`PRIMARY KEY ${keyExpr(p.primary_key)}`);
  parts.push(`ORDER BY ${keyExpr(p.sorting_key)}`);
  if (p.sampling_key) parts.push(`SAMPLE BY ${p.sampling_key}`);
  if (p.ttl) parts.push(`TTL ${p.ttl}`);
  if (p.settings) parts.push(`SETTINGS ${p.settings}`);
  return parts.join(' ');
}

/** Key as ClickHouse reports it in system.tables: `(a, b)` → `a, b`, `tuple()` → ''. */
function reportedKey(key: string | undefined): string {
  const k = stripOuterParens(key ?? '');
  return /^tuple\(\s*\)$/i.test(k) ? '' : k;
}

/**
 * Engine object of `GET /v0/datasources/:name`: `engine`, `engine_full` and every non-empty param.
 * `columns` is accepted for call-site symmetry with `engineClause` but not needed (nothing is validated here).
 */
export function engineToJson(spec: EngineSpec, columns?: readonly Column[]): Record<string, string> {
  void columns;
  const out: Record<string, string> = {
    engine: spec.engine,
    engine_full: engineClause(spec).replace(/^ENGINE = /, ''),
  };
  for (const key of ENGINE_PARAM_ORDER) {
    const raw = spec.params[key];
    const value = key.endsWith('_key') ? reportedKey(raw) : raw;
    if (value) out[key] = value;
  }
  return out;
}

/** Engine object of `GET /v0/datasources` items (primary key defaults to the sorting key, like ClickHouse). */
export function engineToListJson(spec: EngineSpec): Record<string, string> {
  const sorting = reportedKey(spec.params.sorting_key);
  return {
    engine: spec.engine,
    engine_sorting_key: sorting,
    engine_partition_key: reportedKey(spec.params.partition_key),
    engine_primary_key: reportedKey(spec.params.primary_key) || sorting,
  };
}

// ---------------------------------------------------------------------------------------------
// Skipping indexes

const INDEX_FORMAT = 'invalid INDEX format. Usage: `name expr TYPE type_full GRANULARITY granularity`';
export const ALLOWED_INDEX_TYPES = ['minmax', 'set', 'bloom_filter', 'ngrambf_v1', 'tokenbf_v1'];
const INDEX_TAIL = /^TYPE\s+([A-Za-z_][A-Za-z0-9_]*)\s*(?:\(([^()]*)\))?(?:\s+GRANULARITY\s+(\d+))?\s*$/i;
const INDEX_ARG = /^(?:-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|'[^'\\]*')$/;

/** Parses the `indexes` param: one `name expr TYPE type(args) GRANULARITY n` per line; `0` or empty → []. */
export function parseIndexes(text: string | undefined): IndexSpec[] {
  const trimmed = (text ?? '').trim();
  if (!trimmed || trimmed === '0') return [];
  const out: IndexSpec[] = [];
  for (const rawLine of trimmed.split(/\r?\n/)) {
    const line = rawLine
      .trim()
      .replace(/,$/, '')
      .replace(/^INDEX\s+/i, '')
      .trim();
    if (!line) continue;
    const index = parseIndex(line);
    if (out.some((i) => i.name === index.name)) throw new SchemaError(`Index name '${index.name}' is duplicated`);
    out.push(index);
  }
  return out;
}

function parseIndex(line: string): IndexSpec {
  const head = /^([A-Za-z_][A-Za-z0-9_]*)\s+/.exec(line);
  if (!head) throw new SchemaError(INDEX_FORMAT);
  const rest = line.slice(head[0].length);
  // The rightmost `TYPE` whose tail parses, so expressions may mention a column named `type`.
  const candidates = [...rest.matchAll(/\sTYPE\s/gi)].map((m) => m.index!).reverse();
  for (const at of candidates) {
    const tail = INDEX_TAIL.exec(rest.slice(at + 1));
    if (!tail) continue;
    const expr = rest.slice(0, at).trim();
    if (!expr || /\b(TYPE|GRANULARITY)\b/.test(expr.replace(/'[^']*'/g, ''))) break;
    const kind = tail[1].toLowerCase();
    const args = tail[2] === undefined ? undefined : splitTopLevel(tail[2]);
    const type = args ? `${kind}(${args.join(', ')})` : kind;
    if (!ALLOWED_INDEX_TYPES.includes(kind)) throw new SchemaError(`Not allowed index '${type}'`);
    if (args?.some((a) => !INDEX_ARG.test(a))) throw new SchemaError(INDEX_FORMAT);
    const granularity = tail[3] ?? '1';
    if (Number(granularity) < 1) throw new SchemaError(INDEX_FORMAT);
    return { name: head[1], expr: checkExpression(expr, `index ${head[1]}`), type, granularity };
  }
  throw new SchemaError(INDEX_FORMAT);
}

/** `name expr TYPE type GRANULARITY n` (the datafile form). */
export function formatIndex(i: IndexSpec): string {
  return `${i.name} ${i.expr} TYPE ${i.type} GRANULARITY ${i.granularity}`;
}

/** `INDEX name expr TYPE type GRANULARITY n` (the DDL form). */
export function indexClause(i: IndexSpec): string {
  return `INDEX ${formatIndex(i)}`;
}
