/**
 * Datafile parser (reference §11): `.datasource`, `.pipe`, `.token` and `.incl` text → the model
 * of ./model.ts. Pure: includes are read through a callback, variables come from the caller.
 *
 * Grammar: one instruction per line (case-insensitive), arguments with shell-like quoting; `#`
 * starts a comment line; `INSTRUCTION >` opens a block of indented lines that ends at the next
 * unindented line starting with a known instruction; blocks are dedented. `INCLUDE "f.incl" k=v`
 * pastes a file with `$k`/`${k}` replaced; `$VAR`/`${VAR}` are replaced from `env` when set and left
 * as they are otherwise. Every error is a DatafileError naming the file and line.
 */
import { ENGINE_PARAM_ORDER } from '../schema/engine.js';
import {
  DatafileError,
  type Datafile,
  type DatafileKind,
  type DatafileWarning,
  type DatasourceFile,
  type IncludeFile,
  type NodeType,
  type PipeFile,
  type PipeNode,
  type TokenFile,
} from './model.js';

export interface ParseOptions {
  /** The file's path, used in messages and to pick the kind from its extension. */
  file?: string;
  kind?: DatafileKind;
  /** Values for `$VAR` / `${VAR}` (the CLI passes its environment). */
  env?: Record<string, string | undefined>;
  /** Reads an INCLUDE target; `from` is the including file. Throw to report it missing. */
  readInclude?: (path: string, from: string) => { file: string; text: string };
}

export interface ParseResult<T extends Datafile = Datafile> {
  value: T;
  warnings: DatafileWarning[];
}

interface SrcLine {
  text: string;
  file: string;
  line: number;
}

/** ENGINE_* keys (without the prefix) in the order every printer uses: the schema's own order. */
export const ENGINE_KEYS: readonly string[] = ENGINE_PARAM_ORDER;
const LEGACY_ENGINE_KEYS = ['PARTITION_KEY', 'SORTING_KEY', 'PRIMARY_KEY', 'SAMPLING_KEY', 'TTL'];
/** EXPORT_* keys (lower case, without the prefix) in the order every printer uses. */
export const EXPORT_KEYS: readonly string[] = [
  'service',
  'connection_name',
  'bucket_uri',
  'file_template',
  'format',
  'compression',
  'write_strategy',
  'strategy',
  'kafka_topic',
  'schedule',
];
const KAFKA_KEYS = [
  'CONNECTION_NAME',
  'TOPIC',
  'GROUP_ID',
  'BOOTSTRAP_SERVERS',
  'KEY',
  'SECRET',
  'SCHEMA_REGISTRY_URL',
  'TARGET_PARTITIONS',
  'AUTO_OFFSET_RESET',
  'STORE_RAW_VALUE',
  'STORE_HEADERS',
  'STORE_BINARY_HEADERS',
  'KEY_FORMAT',
  'VALUE_FORMAT',
  'KEY_AVRO_DESERIALIZATION',
  'SSL_CA_PEM',
  'SASL_MECHANISM',
].map((k) => `KAFKA_${k}`);
const IMPORT_KEYS = [
  'SERVICE',
  'CONNECTION_NAME',
  'SCHEDULE',
  'STRATEGY',
  'EXTERNAL_DATASOURCE',
  'BUCKET_URI',
  'FROM_TIMESTAMP',
  'QUERY',
  'TABLE_ARN',
  'EXPORT_BUCKET',
].map((k) => `IMPORT_${k}`);
/** Tinybird Forward instructions: parsed, ignored with a warning. */
const FORWARD_ONLY = new Set(['FORWARD_QUERY', 'BACKFILL', 'DEPLOYMENT_METHOD', 'ENV']);
const NODE_TYPES: NodeType[] = ['standard', 'endpoint', 'materialized', 'copy', 'sink'];

/** Every instruction of any kind: an unindented line starting with one ends a block. */
const KNOWN = new Set([
  'DESCRIPTION',
  'SCHEMA',
  'INDEXES',
  'ENGINE',
  ...ENGINE_KEYS.map((k) => `ENGINE_${k.toUpperCase()}`),
  ...LEGACY_ENGINE_KEYS,
  'TOKEN',
  'TAGS',
  'VERSION',
  'SHARED_WITH',
  'INCLUDE',
  'NODE',
  'SQL',
  'TYPE',
  'DATASOURCE',
  'TARGET_DATASOURCE',
  'COPY_SCHEDULE',
  'COPY_MODE',
  'MODE',
  ...EXPORT_KEYS.map((k) => `EXPORT_${k.toUpperCase()}`),
  ...KAFKA_KEYS,
  ...IMPORT_KEYS,
  'SCOPE',
  'RESOURCE',
  'FILTER',
  'SETTINGS',
  ...FORWARD_ONLY,
]);

export function kindOf(file: string): DatafileKind | undefined {
  const m = /\.(datasource|pipe|token|incl)$/i.exec(file);
  return m ? (m[1].toLowerCase() as DatafileKind) : undefined;
}

/** Splits arguments like a shell: whitespace separates, "..." (with \" and \\) and '...' quote. */
export function splitArgs(text: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && /\s/.test(text[i])) i++;
    if (i >= text.length) break;
    let word = '';
    while (i < text.length && !/\s/.test(text[i])) {
      const c = text[i];
      if (c === '"' || c === "'") {
        const end = findClose(text, i);
        if (end < 0) throw new Error(`Unclosed ${c} quote`);
        word += unquoteBody(text.slice(i + 1, end), c);
        i = end + 1;
      } else {
        word += c;
        i++;
      }
    }
    out.push(word);
  }
  return out;
}

function findClose(text: string, start: number): number {
  const q = text[start];
  for (let i = start + 1; i < text.length; i++) {
    if (q === '"' && text[i] === '\\') {
      i++;
      continue;
    }
    if (text[i] === q) return i;
  }
  return -1;
}

function unquoteBody(body: string, q: string): string {
  return q === '"' ? body.replace(/\\([\\"$])/g, '$1') : body;
}

/** A single value: one quoted string is unquoted; anything else is taken as written. */
function singleValue(rest: string): string {
  const t = rest.trim();
  if ((t.startsWith('"') || t.startsWith("'")) && findClose(t, 0) === t.length - 1) return unquoteBody(t.slice(1, -1), t[0]);
  return t;
}

/** `$name` / `${name}` replaced where `vars` has the name; the rest is left as written. */
export function substitute(text: string, vars: Record<string, string | undefined> | undefined): string {
  if (!vars || !text.includes('$')) return text;
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (m, a: string | undefined, b: string | undefined) => {
    const v = vars[(a ?? b)!];
    return v === undefined ? m : v;
  });
}

function dedent(lines: string[]): string {
  while (lines.length && !lines[0].trim()) lines.shift();
  while (lines.length && !lines[lines.length - 1].trim()) lines.pop();
  // Unindented lines continue a block as written (SQL the author did not indent); the rest lose
  // their common indentation.
  const widths = lines
    .filter((l) => l.trim())
    .map((l) => /^[ \t]*/.exec(l)![0].length)
    .filter((w) => w > 0);
  const cut = widths.length ? Math.min(...widths) : 0;
  return lines.map((l) => (l.trim() ? l.slice(Math.min(cut, /^[ \t]*/.exec(l)![0].length)).replace(/\s+$/, '') : '')).join('\n');
}

const MAX_INCLUDE_DEPTH = 16;

function expandIncludes(text: string, file: string, opts: ParseOptions, vars: Record<string, string> | undefined, stack: string[]): SrcLine[] {
  const out: SrcLine[] = [];
  const raw = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  raw.forEach((t, idx) => {
    const lineText = substitute(t, vars);
    const m = /^INCLUDE\b\s*(.*)$/i.exec(lineText);
    if (!m) {
      out.push({ text: lineText, file, line: idx + 1 });
      return;
    }
    let args: string[];
    try {
      args = splitArgs(m[1]);
    } catch (e) {
      throw new DatafileError((e as Error).message, file, idx + 1);
    }
    if (!args.length) throw new DatafileError('INCLUDE needs a file name, e.g. INCLUDE "includes/common.incl" key=value', file, idx + 1);
    const params: Record<string, string> = { ...(vars ?? {}) };
    for (const a of args.slice(1)) {
      const eq = a.indexOf('=');
      if (eq <= 0) throw new DatafileError(`Invalid INCLUDE variable "${a}": use key=value`, file, idx + 1);
      params[a.slice(0, eq)] = a.slice(eq + 1);
    }
    if (!opts.readInclude) throw new DatafileError(`Can not read the included file "${args[0]}"`, file, idx + 1);
    let inc: { file: string; text: string };
    try {
      inc = opts.readInclude(args[0], file);
    } catch (e) {
      throw new DatafileError(`Can not read the included file "${args[0]}": ${(e as Error).message}`, file, idx + 1);
    }
    if (stack.includes(inc.file) || stack.length >= MAX_INCLUDE_DEPTH) throw new DatafileError(`INCLUDE "${args[0]}" includes itself`, file, idx + 1);
    out.push(...expandIncludes(inc.text, inc.file, opts, params, [...stack, inc.file]));
  });
  return out;
}

/** One instruction with its value: a block (`>`) or the rest of its line. */
interface Instr {
  name: string;
  rest: string;
  value: string;
  block: boolean;
  at: SrcLine;
  /** Where the value starts (the first line of a block). */
  valueLine: number;
}

function instructions(lines: SrcLine[]): Instr[] {
  const out: Instr[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    const t = l.text;
    if (!t.trim() || t.trim().startsWith('#')) continue;
    if (/^\s/.test(t)) throw new DatafileError('Unexpected indented line: a multi-line value starts with "INSTRUCTION >" on the line before', l.file, l.line);
    const m = /^(\S+)\s*(.*)$/.exec(t)!;
    const name = m[1].toUpperCase();
    const rest = m[2].trim();
    if (rest === '>') {
      const block: string[] = [];
      let j = i + 1;
      for (; j < lines.length; j++) {
        const b = lines[j].text;
        if (b.trim() && !/^\s/.test(b)) {
          if (b.startsWith('#')) continue;
          // A known instruction ends the block; so does a word shaped like one (`ENGINE_FOO`), to be
          // reported as unknown rather than read as SQL.
          const word = /^(\S+)/.exec(b)![1];
          if (KNOWN.has(word.toUpperCase()) || /^[A-Z][A-Z0-9]*_[A-Z0-9_]+$/.test(word)) break;
        }
        block.push(b);
      }
      const first = lines.slice(i + 1, j).find((x) => x.text.trim());
      out.push({ name, rest, value: dedent(block), block: true, at: l, valueLine: first?.line ?? l.line });
      i = j - 1;
    } else {
      out.push({ name, rest, value: singleValue(rest), block: false, at: l, valueLine: l.line });
    }
  }
  return out;
}

export function parseDatafile(text: string, opts: ParseOptions = {}): ParseResult {
  const file = opts.file ?? '<datafile>';
  const kind = opts.kind ?? kindOf(file);
  if (!kind) throw new DatafileError('Unknown datafile kind: the name must end in .datasource, .pipe, .token or .incl', file, 0);
  const warnings: DatafileWarning[] = [];
  const lines = expandIncludes(text, file, opts, undefined, [file]);
  const list = instructions(lines);
  const env = (v: string) => substitute(v, opts.env);
  const ctx = { warnings, env, file };
  switch (kind) {
    case 'datasource':
      return { value: datasource(list, ctx), warnings };
    case 'pipe':
      return { value: pipe(list, ctx, false) as PipeFile, warnings };
    case 'incl':
      return { value: pipe(list, ctx, true) as IncludeFile, warnings };
    case 'token':
      return { value: token(list, ctx), warnings };
  }
}

export const parseDatasource = (text: string, opts: ParseOptions = {}) => parseDatafile(text, { ...opts, kind: 'datasource' }) as ParseResult<DatasourceFile>;
export const parsePipe = (text: string, opts: ParseOptions = {}) => parseDatafile(text, { ...opts, kind: 'pipe' }) as ParseResult<PipeFile>;
export const parseToken = (text: string, opts: ParseOptions = {}) => parseDatafile(text, { ...opts, kind: 'token' }) as ParseResult<TokenFile>;
export const parseInclude = (text: string, opts: ParseOptions = {}) => parseDatafile(text, { ...opts, kind: 'incl' }) as ParseResult<IncludeFile>;

interface Ctx {
  file: string;
  warnings: DatafileWarning[];
  env: (v: string) => string;
}

const fail = (i: Instr, message: string): never => {
  throw new DatafileError(message, i.at.file, i.at.line);
};
const invalid = (i: Instr): never => fail(i, `${i.name} is not a valid option`);

function forwardOnly(i: Instr, ctx: Ctx): boolean {
  if (!FORWARD_ONLY.has(i.name)) return false;
  ctx.warnings.push({ file: i.at.file, line: i.at.line, message: `${i.name} is a Tinybird Forward option; ignored` });
  return true;
}

function versionOf(i: Instr): number {
  if (!/^\d+$/.test(i.value)) fail(i, `VERSION must be a non-negative integer, got "${i.value}"`);
  return Number(i.value);
}

function tokenRef(i: Instr): { name: string; permission: string; line: number } {
  let args: string[] = [];
  try {
    args = splitArgs(i.rest);
  } catch {
    /* reported below */
  }
  if (args.length !== 2) fail(i, 'TOKEN gets two params, token name and permissions e.g TOKEN "read api token" READ');
  return { name: args[0], permission: args[1].toUpperCase(), line: i.at.line };
}

function engineKey(name: string): string | undefined {
  if (name.startsWith('ENGINE_')) {
    const k = name.slice('ENGINE_'.length).toLowerCase();
    return ENGINE_KEYS.includes(k) ? k : undefined;
  }
  return LEGACY_ENGINE_KEYS.includes(name) ? name.toLowerCase() : undefined;
}

/**
 * DESCRIPTION, TAGS, TOKEN and VERSION: the instructions about a resource as a whole (a data source,
 * or a pipe before its first NODE), applied to `r`; false for any other instruction.
 */
function resourceInstr(r: DatasourceFile | PipeFile, i: Instr, v: string): boolean {
  switch (i.name) {
    case 'DESCRIPTION':
      r.description = v;
      return true;
    case 'TAGS':
      r.tags = v;
      return true;
    case 'TOKEN':
      r.tokens.push(tokenRef(i));
      return true;
    case 'VERSION':
      r.version = versionOf(i);
      return true;
    default:
      return false;
  }
}

function datasource(list: Instr[], ctx: Ctx): DatasourceFile {
  const ds: DatasourceFile = { kind: 'datasource', engineParams: {}, tokens: [], connector: {} };
  for (const i of list) {
    if (forwardOnly(i, ctx)) continue;
    const v = ctx.env(i.value);
    const ek = engineKey(i.name);
    if (ek) {
      ds.engineParams[ek] = v;
      continue;
    }
    if (KAFKA_KEYS.includes(i.name) || IMPORT_KEYS.includes(i.name)) {
      ds.connector[i.name.toLowerCase()] = v;
      continue;
    }
    if (resourceInstr(ds, i, v)) continue;
    switch (i.name) {
      case 'SCHEMA':
        ds.schema = v;
        ds.schemaLine = i.valueLine;
        break;
      case 'INDEXES':
        ds.indexes = v;
        break;
      case 'ENGINE':
        if (!v) fail(i, 'ENGINE needs a value, e.g. ENGINE "MergeTree"');
        ds.engine = v;
        break;
      case 'SHARED_WITH':
        ds.sharedWith = v.split(/[\s,]+/).filter(Boolean);
        break;
      default:
        invalid(i);
    }
  }
  if (ds.schema === undefined) {
    // A datasource filled by a connector may take its schema from it; anything else needs one.
    if (!Object.keys(ds.connector).length) throw new DatafileError('SCHEMA is required in a .datasource file', ctx.file, 0);
  }
  return ds;
}

function newNode(i: Instr): PipeNode {
  let args: string[] = [];
  try {
    args = splitArgs(i.rest);
  } catch (e) {
    fail(i, (e as Error).message);
  }
  if (!args.length) fail(i, 'Missing node name for pipe creation after the NODE label');
  return { name: args[0], sql: '', engineParams: {}, export: {}, line: i.at.line };
}

function pipe(list: Instr[], ctx: Ctx, fragment: boolean): PipeFile | IncludeFile {
  const p: PipeFile = { kind: 'pipe', tokens: [], nodes: [] };
  const settings: Record<string, string> = {};
  let node: PipeNode | null = null;
  const typeLines = new Map<PipeNode, Instr>();
  for (const i of list) {
    if (forwardOnly(i, ctx)) continue;
    const v = ctx.env(i.value);
    if (i.name === 'NODE') {
      node = newNode(i);
      node.name = ctx.env(node.name);
      if (p.nodes.some((n) => n.name === node!.name)) fail(i, `Node name "${node.name}" is duplicated: node names must be unique within a pipe`);
      p.nodes.push(node);
      continue;
    }
    if (fragment && !node && (KAFKA_KEYS.includes(i.name) || IMPORT_KEYS.includes(i.name) || i.name.startsWith('EXPORT_'))) {
      settings[i.name.toLowerCase()] = v;
      continue;
    }
    if (!node) {
      if (resourceInstr(p, i, v)) continue;
      if (i.name === 'SQL') fail(i, 'SQL must be called after a NODE command');
      if (i.name === 'SETTINGS') invalid(i);
      if (KNOWN.has(i.name) && i.name !== 'SCHEMA') fail(i, `${i.name} must be called after a NODE command`);
      invalid(i);
    }
    const n = node!;
    const ek = engineKey(i.name);
    if (ek && i.name.startsWith('ENGINE_')) {
      n.engineParams[ek] = v;
      continue;
    }
    if (i.name.startsWith('EXPORT_')) {
      const k = i.name.slice('EXPORT_'.length).toLowerCase();
      if (!EXPORT_KEYS.includes(k)) invalid(i);
      n.export[k] = v;
      continue;
    }
    switch (i.name) {
      case 'DESCRIPTION':
        n.description = v;
        break;
      case 'SQL':
        if (!v.trim()) fail(i, 'Missing sql query for pipe creation after the SQL label');
        n.sql = v;
        n.sqlLine = i.valueLine;
        break;
      case 'TYPE': {
        const t = v.toLowerCase();
        if (t === 'default') break;
        if (!NODE_TYPES.includes(t as NodeType)) fail(i, `Invalid node type "${v}": use endpoint, materialized, copy or sink`);
        n.type = t as NodeType;
        typeLines.set(n, i);
        break;
      }
      case 'DATASOURCE':
        n.datasource = v;
        break;
      case 'ENGINE':
        n.engine = v;
        break;
      case 'TARGET_DATASOURCE':
        n.targetDatasource = v;
        break;
      case 'COPY_SCHEDULE':
        n.copySchedule = v;
        break;
      case 'COPY_MODE':
      case 'MODE': {
        const mode = v.toLowerCase();
        if (mode !== 'append' && mode !== 'replace') fail(i, `Invalid ${i.name} "${v}": use append or replace`);
        n.copyMode = mode;
        break;
      }
      case 'TAGS':
        n.tags = v;
        break;
      case 'TOKEN':
        // A TOKEN after the nodes still belongs to the pipe (tb prints them anywhere).
        p.tokens.push(tokenRef(i));
        break;
      default:
        invalid(i);
    }
  }
  const outputs: PipeNode[] = [];
  for (const n of p.nodes) {
    if (!n.sql.trim()) throw new DatafileError(`Missing sql query for node "${n.name}": add a SQL > block after the NODE label`, ctx.file, n.line ?? 0);
    const t = typeLines.get(n);
    if (n.type && n.type !== 'standard') outputs.push(n);
    if (n.type === 'materialized' && !n.datasource) fail(t!, `The materialized node "${n.name}" needs DATASOURCE <target data source>`);
    if (n.type === 'copy' && !n.targetDatasource) fail(t!, `The copy node "${n.name}" needs TARGET_DATASOURCE <target data source>`);
  }
  if (!fragment && outputs.length > 1) {
    fail(typeLines.get(outputs[1])!, `A pipe has one output node (endpoint, materialized, copy or sink); "${outputs[0].name}" is already ${outputs[0].type}`);
  }
  if (fragment) return { kind: 'incl', nodes: p.nodes, settings };
  return p;
}

function token(list: Instr[], ctx: Ctx): TokenFile {
  const t: TokenFile = { kind: 'token', scopes: [] };
  for (const i of list) {
    const v = ctx.env(i.value);
    const last = t.scopes[t.scopes.length - 1];
    switch (i.name) {
      case 'DESCRIPTION':
        t.description = v;
        break;
      case 'SCOPE':
        if (!v) fail(i, "SCOPE needs a value, e.g. SCOPE 'PIPES:READ'");
        t.scopes.push({ type: v });
        break;
      case 'RESOURCE':
        if (!last) fail(i, 'RESOURCE must follow a SCOPE');
        last.resource = v;
        break;
      case 'FILTER':
        if (!last) fail(i, 'FILTER must follow a SCOPE');
        last.filter = v;
        break;
      default:
        invalid(i);
    }
  }
  return t;
}
