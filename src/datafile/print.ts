/**
 * Datafile printers: the model of ./model.ts → `.datasource`, `.pipe`, `.token`, `.incl` text that
 * ./parse.ts reads back to the same model. `printDatasourceFile` is the server's canonical form of
 * a Data Source (`GET /v0/datasources/:name.datasource`), built from validated schema objects.
 */
import { ENGINE_PARAM_ORDER, formatIndex, takesSortingKey } from '../schema/engine.js';
import { printColumn } from '../schema/schema.js';
import type { Column, EngineSpec, IndexSpec } from '../basics/types.js';
import type { DatasourceFile, IncludeFile, PipeFile, PipeNode, TokenFile } from './model.js';
import { ENGINE_KEYS, EXPORT_KEYS } from './parse.js';

const INDENT = '    ';
/** Separates sections with one blank line; never inside a value. */
const GAP = Symbol('gap');
type Part = string | typeof GAP;

const indent = (text: string) =>
  text
    .split('\n')
    .map((l) => (l.trim() ? INDENT + l : ''))
    .join('\n');

/** A value in double quotes (`\` and `"` escaped), as the parser's shell-like reader expects. */
export function quoted(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** `NAME "value"`, or a `NAME >` block when the value has several lines. */
function instr(name: string, value: string): Part[] {
  return value.includes('\n') ? [`${name} >\n${indent(value)}`, GAP] : [`${name} ${quoted(value)}`];
}

function block(name: string, value: string): Part[] {
  return [`${name} >\n${indent(value)}`, GAP];
}

function render(parts: Part[]): string {
  const out: string[] = [];
  let gap = false;
  for (const p of parts) {
    if (p === GAP) {
      gap = out.length > 0;
      continue;
    }
    if (gap) out.push('');
    gap = false;
    out.push(p);
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

/** `<PREFIX>_<KEY> value` for each of `values`: the keys of `order` first, in that order, then the others. */
function prefixed(prefix: string, order: readonly string[], values: Record<string, string>): Part[] {
  const keys = [...order.filter((k) => k in values), ...Object.keys(values).filter((k) => !order.includes(k))];
  return keys.flatMap((k) => instr(`${prefix}_${k.toUpperCase()}`, values[k]));
}

function engineLines(engine: string | undefined, params: Record<string, string>): Part[] {
  const out: Part[] = [];
  if (engine !== undefined) out.push(`ENGINE ${quoted(engine)}`);
  out.push(...prefixed('ENGINE', ENGINE_KEYS, params));
  return out;
}

const tokenLine = (t: { name: string; permission: string }) => `TOKEN ${quoted(t.name)} ${t.permission}`;

export function printDatasource(ds: DatasourceFile): string {
  const parts: Part[] = [];
  if (ds.description) parts.push(...block('DESCRIPTION', ds.description));
  for (const t of ds.tokens) parts.push(tokenLine(t));
  if (ds.tags !== undefined) parts.push(`TAGS ${quoted(ds.tags)}`);
  if (ds.version !== undefined) parts.push(`VERSION ${ds.version}`);
  parts.push(GAP);
  if (ds.schema !== undefined) parts.push(...block('SCHEMA', ds.schema));
  if (ds.indexes) parts.push(...block('INDEXES', ds.indexes));
  parts.push(...engineLines(ds.engine, ds.engineParams), GAP);
  for (const [k, v] of Object.entries(ds.connector)) parts.push(...instr(k.toUpperCase(), v));
  if (ds.sharedWith?.length) parts.push(...block('SHARED_WITH', ds.sharedWith.join('\n')));
  return render(parts);
}

function nodeParts(n: PipeNode): Part[] {
  const parts: Part[] = [GAP, `NODE ${/^[A-Za-z0-9_]+$/.test(n.name) ? n.name : quoted(n.name)}`];
  if (n.description) parts.push(...block('DESCRIPTION', n.description));
  parts.push(...block('SQL', n.sql.trim()));
  if (n.type) parts.push(`TYPE ${n.type}`);
  if (n.datasource !== undefined) parts.push(`DATASOURCE ${n.datasource}`);
  parts.push(...engineLines(n.engine, n.engineParams));
  if (n.targetDatasource !== undefined) parts.push(`TARGET_DATASOURCE ${n.targetDatasource}`);
  if (n.copySchedule !== undefined) parts.push(`COPY_SCHEDULE ${quoted(n.copySchedule)}`);
  if (n.copyMode !== undefined) parts.push(`COPY_MODE ${n.copyMode}`);
  parts.push(...prefixed('EXPORT', EXPORT_KEYS, n.export));
  if (n.tags !== undefined) parts.push(`TAGS ${quoted(n.tags)}`);
  parts.push(GAP);
  return parts;
}

export function printPipe(p: PipeFile): string {
  const parts: Part[] = [];
  if (p.description) parts.push(...block('DESCRIPTION', p.description));
  if (p.tags !== undefined) parts.push(`TAGS ${quoted(p.tags)}`);
  for (const t of p.tokens) parts.push(tokenLine(t));
  if (p.version !== undefined) parts.push(`VERSION ${p.version}`);
  for (const n of p.nodes) parts.push(...nodeParts(n));
  return render(parts) || '\n';
}

export function printInclude(f: IncludeFile): string {
  const parts: Part[] = [];
  for (const [k, v] of Object.entries(f.settings)) parts.push(...instr(k.toUpperCase(), v));
  for (const n of f.nodes) parts.push(...nodeParts(n));
  return render(parts);
}

export function printToken(t: TokenFile): string {
  const parts: Part[] = [];
  if (t.description) parts.push(...block('DESCRIPTION', t.description));
  for (const sc of t.scopes) {
    parts.push(GAP, `SCOPE '${sc.type}'`);
    if (sc.resource !== undefined) parts.push(`RESOURCE ${sc.resource}`);
    if (sc.filter !== undefined) parts.push(`FILTER >\n${indent(sc.filter)}`);
    parts.push(GAP);
  }
  return render(parts);
}

export interface DatasourceFileInput {
  description?: string | null;
  columns: readonly Column[];
  engine: EngineSpec;
  indexes?: readonly IndexSpec[];
}

/** One-line value: newlines folded, as the server has always printed engine values. */
const fold = (v: string) => v.replace(/\s*\r?\n\s*/g, ' ');

/** The canonical `.datasource` of a Data Source (§11.2), as `GET /v0/datasources/:name.datasource` serves it. */
export function printDatasourceFile({ description, columns, engine, indexes }: DatasourceFileInput): string {
  const params: Record<string, string> = {};
  for (const key of ENGINE_PARAM_ORDER) {
    // Like Tinybird's pulled files: a MergeTree without a sorting key says so (`tuple()`).
    const value = engine.params[key] || (key === 'sorting_key' && takesSortingKey(engine.engine) ? 'tuple()' : '');
    if (value) params[key] = fold(value);
  }
  const desc = description?.trim();
  return printDatasource({
    kind: 'datasource',
    description: desc || undefined,
    schema: columns.map(printColumn).join(',\n'),
    indexes: indexes?.length ? indexes.map(formatIndex).join('\n') : undefined,
    engine: engine.engine,
    engineParams: params,
    tokens: [],
    connector: {},
  });
}

export function printDatafile(f: import('./model.js').Datafile): string {
  switch (f.kind) {
    case 'datasource':
      return printDatasource(f);
    case 'pipe':
      return printPipe(f);
    case 'token':
      return printToken(f);
    case 'incl':
      return printInclude(f);
  }
}
