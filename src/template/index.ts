/**
 * Tinybird's template language (reference §6): a node's SQL that starts with '%' is a template —
 * a locked-down Tornado template whose expressions are a whitelisted Python subset. This module
 * reads, checks, analyses (params) and renders templates with an interpreter of its own; nothing
 * from a template or a request is ever evaluated as JavaScript.
 */
import { compileChunks, localNames, referencedNames, templateVariables, type Exec, type TemplateVar } from './compile.js';
import { CustomTemplateError, DOCS_BASE, LimitError, ParseFailure, PyError, SYNTAX_PREFIX, TEMPLATE_DOCS, TemplateError } from './errors.js';
import { buildFunctions, elementValue, REQUIRED_PARAM_NOT_DEFINED, TESTERS, type FunctionHost } from './functions.js';
import { Interpreter, type Scope } from './interp.js';
import { resetBudget } from './limits.js';
import { entryToJSON, ParamsError, varNamesAndTypes } from './params.js';
import { parseTemplate, type Chunk } from './tornado.js';
import { fromJS, isStr, strOf, strValue, type PyValue } from './values.js';

export { TemplateError, CustomTemplateError } from './errors.js';
export { FUNCTION_LIST, PARAMETER_TYPES } from './functions.js';

export type ParamValue = string | string[] | number | boolean | null | unknown[] | Record<string, unknown>;

export interface RenderOptions {
  /** Test mode (§6.6): placeholders for missing params, defined() false, error()/custom_error() don't abort. */
  testMode?: boolean;
  /** Workspace variables for tb_secret/tb_var (name → value). */
  variables?: Record<string, string>;
}

export interface RenderResult {
  /** Rendered SQL, without the leading '%'. */
  sql: string;
  /** From max_threads(n). */
  maxThreads?: number;
  /** Seconds, from cache_ttl('5s'|'1m'|'5m'|'30m'|'1h'). */
  cacheTtl?: number;
  /** Names passed to table()/TABLE(), in order, unique. */
  tables: string[];
  /** The reserved-parameter-name warnings of §4.2. */
  warnings: string[];
  /**
   * Engine query parameters the SQL refers to as `{name:String}` (tb_secret/tb_var values):
   * bound by the engine, never part of the SQL text.
   */
  queryParams: Record<string, string>;
  /** The SQL holds the time of rendering (`job_timestamp` defaulted to now): rendering again gives other SQL. */
  timeDependent?: true;
}

export interface TemplateParam {
  name: string;
  type: string;
  default: unknown;
  [k: string]: unknown;
}

/** Parameter names a template may not use (they are the Query API's own). */
const FORBIDDEN_PARAM_NAMES = ['format', 'q'];

/** Names that only warn (§4.2). */
export const RESERVED_PARAM_NAMES = [
  '__tb__semver',
  'debug_source_tables',
  'debug',
  'explain',
  'finalize_aggregations',
  'output_format_json_quote_64bit_integers',
  'output_format_json_quote_denormals',
  'output_format_parquet_string_as_string',
  'pipeline',
  'playground',
  'q',
  'query_id',
  'release_replacements',
  'tag',
  'template_parameters',
  'token',
  'job_timestamp',
];

const JOB_TIMESTAMP_PARAM = 'job_timestamp';

export function reservedParamWarning(name: string): string {
  return `The parameter name "${name}" is a reserved word. Please, choose another name or the pipe will not work as expected.`;
}

/** True when the SQL is a template: it starts with '%' once trimmed. */
export function isTemplate(sql: string): boolean {
  return sql.trimStart().startsWith('%');
}

/** The template text: the SQL without leading whitespace and the '%'. */
function templateBody(sql: string): string {
  return sql.trimStart().slice(1);
}

/* ------------------------------------------------------------------ compilation (cached) */

interface Compiled {
  chunks: Chunk[];
  exec: Exec[];
  templateVars: TemplateVar[];
  varLines: Map<string, number>;
  localNames: Set<string>;
  /** Every name the code references (usesSecrets). */
  names: Set<string>;
  warnings: string[];
  /** The first forbidden parameter name (format/q), reported at render time. */
  forbidden?: TemplateError;
  /** Params as seen at render time ({{ }} wrapped), computed on first need. */
  renderParams?: ReturnType<typeof varNamesAndTypes> | ParamsError;
  /** Params as exposed by the API (§6.8), computed on first need. */
  apiParams?: TemplateParam[];
}

const CACHE_LIMIT = 1000;
const cache = new Map<string, Compiled | TemplateError>();

function syntaxError(msg: string): TemplateError {
  return new TemplateError(SYNTAX_PREFIX + msg, TEMPLATE_DOCS);
}

function compile(text: string): Compiled {
  const hit = cache.get(text);
  if (hit) {
    // refresh LRU position
    cache.delete(text);
    cache.set(text, hit);
    if (hit instanceof TemplateError) throw hit;
    return hit;
  }
  let result: Compiled | TemplateError;
  try {
    const chunks = parseTemplate(text);
    const { exec, stmts } = compileChunks(chunks);
    const templateVars = templateVariables(chunks, stmts);
    const varLines = new Map<string, number>();
    for (const v of templateVars) varLines.set(v.name, v.line);
    const warnings: string[] = [];
    let forbidden: TemplateError | undefined;
    for (const v of templateVars) {
      if (!forbidden && FORBIDDEN_PARAM_NAMES.includes(v.name)) forbidden = new TemplateError(`"${v.name}" can not be used as a variable name, line ${v.line}`);
      if (RESERVED_PARAM_NAMES.includes(v.name)) {
        const w = reservedParamWarning(v.name);
        if (!warnings.includes(w)) warnings.push(w);
      }
    }
    result = { chunks, exec, templateVars, varLines, localNames: localNames(exec), names: referencedNames(chunks, stmts), warnings, forbidden };
  } catch (e) {
    if (e instanceof ParseFailure) result = syntaxError(e.message);
    else if (e instanceof LimitError) result = new TemplateError(e.message);
    else throw e;
  }
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
  cache.set(text, result);
  if (result instanceof TemplateError) throw result;
  return result;
}

function renderParams(c: Compiled): ReturnType<typeof varNamesAndTypes> {
  if (!c.renderParams) {
    try {
      c.renderParams = varNamesAndTypes(c.chunks, true);
    } catch (e) {
      if (!(e instanceof ParamsError)) throw e;
      c.renderParams = e;
    }
  }
  if (c.renderParams instanceof ParamsError) throw new TemplateError(c.renderParams.message);
  return c.renderParams;
}

/* ------------------------------------------------------------------ templateParams */

/** The `params` of a node (§6.8): one entry per parameter use, in Tinybird's order and key order. */
export function templateParams(sql: string): TemplateParam[] {
  if (!isTemplate(sql)) return [];
  const c = compile(templateBody(sql));
  if (!c.apiParams) {
    try {
      c.apiParams = varNamesAndTypes(c.chunks, false).map((e) => entryToJSON(e) as TemplateParam);
    } catch (e) {
      if (e instanceof ParamsError) throw new TemplateError(e.message);
      throw e;
    }
  }
  return c.apiParams.map((p) => ({ ...p }));
}

/* ------------------------------------------------------------------ render */

function joinNames(items: string[]): string {
  if (items.length <= 1) return items.join('');
  return items.slice(0, -1).join(', ') + ' and ' + items[items.length - 1];
}

/** Array-typed parameters arrive as lists of typed values (Tinybird's preprocess_variables). */
function preprocessArrays(params: Map<string, PyValue>, typed: ReturnType<typeof varNamesAndTypes>): void {
  for (const [name, value] of params) {
    if (value === null) continue;
    const first = typed.find((t) => t.name === name);
    if (!first || typeof first.type !== 'string') continue;
    const m = /^Array\((\w+)\)/.exec(first.type);
    if (!m) continue;
    const type = m[1];
    if (type === 'Symbol' || type === 'Column') continue;
    let items: PyValue[];
    if (Array.isArray(value)) items = value;
    else if (isStr(value)) items = strOf(value).split(',');
    else continue;
    try {
      const tester = TESTERS[type];
      if (tester && !items.every((t) => tester(strValue(t)))) continue;
      params.set(
        name,
        items.map((t) => elementValue(type, t)),
      );
    } catch {}
  }
}

interface FunctionTable {
  host: FunctionHost;
  strong: Record<string, PyValue>;
  weak: Record<string, PyValue>;
}
const tables: Partial<Record<'test' | 'real', FunctionTable>> = {};

/**
 * The function namespace, built once per mode. Rendering is synchronous and never re-entrant, so the
 * functions share one host object that render() resets before each run.
 */
function functionTable(testMode: boolean): FunctionTable {
  const key = testMode ? 'test' : 'real';
  let t = tables[key];
  if (!t) {
    const host: FunctionHost = { testMode, variables: {}, tables: [], queryParams: {} };
    const strong = buildFunctions(host);
    const weak: Record<string, PyValue> = { symbol: strong.symbol, print: null, open: null, close: null, input: null };
    delete strong.symbol;
    t = { host, strong, weak };
    tables[key] = t;
  }
  return t;
}

function nowTimestamp(): string {
  return new Date().toISOString().slice(0, 19).replace('T', ' ');
}

function convertError(e: unknown, c: Compiled, params: Map<string, PyValue>): Error {
  if (e instanceof LimitError) return new TemplateError(e.message);
  // an allocation or stack limit of the JS engine: still the template's fault
  if (e instanceof RangeError) return new TemplateError(`${SYNTAX_PREFIX}the template needs too much memory or recursion`);
  if (!(e instanceof PyError)) return e as Error;
  const msg = e.msg;
  const doc = (path: string) => DOCS_BASE + path;
  switch (e.pyType) {
    case 'SQLTemplateCustomError':
      return new CustomTemplateError(e.status ?? 400, e.body ?? msg);
    case 'SQLTemplateException': {
      const documentation = doc(e.documentation ?? '/cli/advanced-templates.html');
      if (msg.includes(REQUIRED_PARAM_NOT_DEFINED)) {
        let names: string[] = [];
        try {
          for (const item of renderParams(c)) {
            const name = item.name as string;
            if ((item.default === null || item.default === undefined) && item.used_in === undefined && !names.includes(name) && name !== JOB_TIMESTAMP_PARAM)
              names.push(name);
          }
        } catch {
          names = [];
        }
        if (names.length)
          return new TemplateError(
            `${SYNTAX_PREFIX}${REQUIRED_PARAM_NOT_DEFINED}. Check the parameters ${joinNames(names)}. Please provide a value or set a default value in the pipe code.`,
            documentation,
          );
      }
      return new TemplateError(SYNTAX_PREFIX + msg, documentation);
    }
    case 'ValueError':
      if (e.fromErrorFn) return new CustomTemplateError(400, { error: msg });
      break;
    case 'NameError':
      return new TemplateError(SYNTAX_PREFIX + msg, doc('/cli/advanced-templates.html#defined'));
    case 'UnboundLocalError':
      return new TemplateError(SYNTAX_PREFIX + msg);
    case 'AttributeError':
      if (msg.includes("'str' object has no attribute 'get'"))
        return new TemplateError(`${SYNTAX_PREFIX}'str' object has no attribute 'get'. Make sure you're using an object/dictionary where trying to use .get()`);
      return new TemplateError(SYNTAX_PREFIX + msg);
    case 'IndexError':
      if (msg.includes('string index out of range'))
        return new TemplateError(
          `${SYNTAX_PREFIX}String index out of range. Check that string parameters have values before accessing specific characters (e.g., param[0]). Provide default values or add length checks in your template.`,
        );
      return new TemplateError(SYNTAX_PREFIX + msg);
  }
  if (c.varLines.has('length') && !params.get('length'))
    return new TemplateError(`${SYNTAX_PREFIX}length cannot be used as a variable name or as a function inside of a template`);
  if (msg.includes('missing 1 required positional argument'))
    return new TemplateError(
      `${SYNTAX_PREFIX}one of the transform type functions is missing an argument`,
      doc('/cli/advanced-templates.html#transform-types-functions'),
    );
  if (msg.includes('not callable') || msg.includes('unhashable type'))
    return new TemplateError(`${SYNTAX_PREFIX}wrong syntax, you might be using a not valid function inside a control block`);
  return new TemplateError(SYNTAX_PREFIX + msg);
}

/**
 * Renders a template with request parameters. Non-template SQL is returned untouched.
 * Throws TemplateError (400 with `documentation`) or CustomTemplateError (error()/custom_error()).
 */
export function render(sql: string, params: Record<string, ParamValue>, opts: RenderOptions = {}): RenderResult {
  if (!isTemplate(sql)) return { sql, tables: [], warnings: [], queryParams: {} };
  const c = compile(templateBody(sql));
  if (c.forbidden) throw c.forbidden;
  const testMode = !!opts.testMode;

  const values = new Map<string, PyValue>();
  for (const [k, v] of Object.entries(params ?? {})) {
    if (v === null || v === undefined) continue;
    values.set(k, fromJS(v));
  }
  if (values.size) preprocessArrays(values, renderParams(c));
  const timeDependent =
    !values.has(JOB_TIMESTAMP_PARAM) && (c.varLines.has(JOB_TIMESTAMP_PARAM) || renderParams(c).some((p) => p.name === JOB_TIMESTAMP_PARAM));
  if (timeDependent) values.set(JOB_TIMESTAMP_PARAM, nowTimestamp());

  const { host, strong, weak } = functionTable(testMode);
  host.variables = opts.variables ?? {};
  host.tables = [];
  host.queryParams = {};
  host.maxThreads = undefined;
  host.cacheTtl = undefined;
  const scope: Scope = {
    testMode,
    strong,
    weak,
    params: values,
    templateVars: c.varLines,
    localNames: c.localNames,
  };
  resetBudget();
  let out: string;
  try {
    out = new Interpreter(scope).run(c.exec);
  } catch (e) {
    throw convertError(e, c, values);
  }
  const result: RenderResult = { sql: out, tables: host.tables, warnings: [...c.warnings], queryParams: host.queryParams };
  if (host.maxThreads !== undefined) result.maxThreads = host.maxThreads;
  if (host.cacheTtl !== undefined) result.cacheTtl = host.cacheTtl;
  if (timeDependent) result.timeDependent = true;
  return result;
}

/** The template functions that read workspace variables. */
export const SECRET_FUNCTIONS = ['tb_secret', 'tb_var'];

/**
 * True when a template names tb_secret or tb_var anywhere (any branch, any block, also without
 * calling it): the only way a template reaches a workspace variable is through those names.
 * Non-templates and templates that do not parse are false (rendering them fails anyway).
 */
export function usesSecrets(sql: string): boolean {
  if (!isTemplate(sql)) return false;
  let c: Compiled;
  try {
    c = compile(templateBody(sql));
  } catch {
    return false;
  }
  return SECRET_FUNCTIONS.some((f) => c.names.has(f));
}

/** Tables referenced with table('x')/TABLE('x') with a literal name, in any branch (dependencies). */
export function templateTables(sql: string): string[] {
  if (!isTemplate(sql)) return [];
  const c = compile(templateBody(sql));
  const out: string[] = [];
  const visit = (n: unknown): void => {
    if (!n || typeof n !== 'object') return;
    const node = n as { k?: string; func?: { k: string; id?: string }; args?: { k: string; value?: unknown }[] };
    if (node.k === 'Call' && node.func?.k === 'Name' && (node.func.id === 'table' || node.func.id === 'TABLE')) {
      const a = node.args?.[0];
      if (a && a.k === 'Constant' && typeof a.value === 'string' && !out.includes(a.value)) out.push(a.value);
    }
    for (const v of Object.values(n)) {
      if (Array.isArray(v)) v.forEach(visit);
      else if (v && typeof v === 'object') visit(v);
    }
  };
  const walk = (list: Chunk[]) => {
    for (const ch of list) {
      if (ch.t === 'expr') visit(ch.node);
      else if (ch.t === 'block') walk(ch.body);
    }
  };
  walk(c.chunks);
  return out;
}
