/**
 * Tinybird's template functions (reference §6.3–6.4): type functions with validation, column/
 * columns/symbol/table, sql_and, split_to_array, dates, JSON, error/custom_error, max_threads,
 * cache_ttl, tb_secret... Each mirrors Tinybird's behaviour; where Tinybird would let a request value
 * reach the SQL unescaped (aliases in columns(fn=...), sql_unescape of quotes, table names, comment
 * arguments) the value is validated or neutralised instead.
 */
import { LimitError, PyError, sqlTemplateError, typeError, valueError } from './errors.js';
import { escapeIdentifier, escapeStringExpression, isSafeLiteralBody } from './escape.js';
import { checkItems, step } from './limits.js';
import { bindArgs, len, parseFloatStr, pyInt, iterate, type ParamSpec } from './ops.js';
import { JSONDecodeError, loads } from './pyjson.js';
import { reprStr } from './pyfmt.js';
import { strptime } from './strptime.js';
import {
  Comment,
  isIntLike,
  isStr,
  Placeholder,
  PyFunc,
  PyTuple,
  SqlExpr,
  Sym,
  TypedFloat,
  TypedInt,
  sqlStrValue,
  strOf,
  strValue,
  toBig,
  toJS,
  truthy,
  typeName,
  type CallArgs,
  type PyValue,
  isNumber,
  toNum,
} from './values.js';

export const REQUIRED_PARAM_NOT_DEFINED = 'Required parameter is not defined';

/* ------------------------------------------------------------------ testers (tinybird.datatypes) */

const DATETIME64_RE = [/^\d\d\d\d[^\n]\d\d[^\n]\d\d(T|\s)\d\d:\d\d:\d\d[^\n]\d\d\d/, /^\d\d[^\n]\d\d[^\n]\d\d\d\d[^\n]\d{1,2}:\d{1,2}:\d{1,2}[^\n]\d{1,3}/];
const DATETIME_RE = [/^\d\d\d\d[^\n]\d\d[^\n]\d\d(T|\s)\d\d:\d\d:\d\d/, /^\d\d[^\n]\d\d[^\n]\d\d\d\d[^\n]\d{1,2}:\d{1,2}:\d{1,2}/];
// Python's `$` also matches before a trailing newline
const DATE_RE = /^\d\d\d\d-\d\d-\d\d\n?$/;
const INTX_RE = /^[+-]?\d+\n?$/;
const UINTX_RE = /^\d+\n?$/;

function intRange(signed: boolean, bits: number, re: RegExp) {
  const lo = signed ? -(2n ** BigInt(bits - 1)) : 0n;
  const hi = signed ? 2n ** BigInt(bits - 1) : 2n ** BigInt(bits);
  return (x: string) => re.test(x) && ((v) => lo <= v && v < hi)(BigInt(x.trim()));
}

const floatTest = (x: string) => !x.includes('_') && parseFloatStr(x) !== null;

export const TESTERS: Record<string, (x: string) => boolean> = {
  DateTime64: (x) => DATETIME64_RE.some((r) => r.test(x)),
  DateTime: (x) => DATETIME_RE.some((r) => r.test(x)),
  Date: (x) => DATE_RE.test(x),
  Int8: intRange(true, 8, INTX_RE),
  UInt8: intRange(false, 8, UINTX_RE),
  Int16: intRange(true, 16, INTX_RE),
  UInt16: intRange(false, 16, UINTX_RE),
  Int32: intRange(true, 32, INTX_RE),
  UInt32: intRange(false, 32, UINTX_RE),
  Int64: intRange(true, 64, INTX_RE),
  UInt64: intRange(false, 64, UINTX_RE),
  Int128: intRange(true, 128, INTX_RE),
  UInt128: intRange(false, 128, INTX_RE),
  Int256: intRange(true, 256, INTX_RE),
  UInt256: intRange(false, 256, INTX_RE),
  Float32: floatTest,
  Float64: floatTest,
  Bool: (x) =>
    ['true', 'false', 'True', 'False', 'T', 'F', 'Y', 'N', 'Yes', 'No', 'On', 'Off', 'Enable', 'Disable', 'Enabled', 'Disabled', '1', '0'].includes(x),
};

export const INT_TYPES = ['Int8', 'Int16', 'Int32', 'Int64', 'Int128', 'Int256', 'UInt8', 'UInt16', 'UInt32', 'UInt64', 'UInt128', 'UInt256'];

/** Test-mode placeholders of the type functions (type_fns_check). */
const TEST_PLACEHOLDERS: Record<string, PyValue> = {
  DateTime64: '2019-01-01 00:00:00.000',
  DateTime: '2019-01-01 00:00:00',
  Date: '2019-01-01',
  Float32: 0,
  Float64: 0,
  Int: 0n,
  Integer: 0n,
  ...Object.fromEntries(INT_TYPES.map((t) => [t, 0n])),
};

/* ------------------------------------------------------------------ helpers */

const fn = (name: string, f: (a: CallArgs) => PyValue) => new PyFunc(name, f, 'function');

const TYPE_SPEC: ParamSpec = {
  names: ['x', 'default', 'defined', 'required', 'description', 'enum', 'example', 'format'],
  defaults: { default: null, defined: true, required: null, description: null, enum: null, example: null, format: null },
};

const ARRAY_SPEC: ParamSpec = {
  names: ['x', '_type', 'default', 'defined', 'required', 'description', 'enum', 'example', 'format'],
  defaults: { _type: null, default: null, defined: true, required: null, description: null, enum: null, example: null, format: null },
};

const requiredError = () => sqlTemplateError(REQUIRED_PARAM_NOT_DEFINED);

/** Tinybird's expression_wrapper: how a value becomes SQL text. */
export function expressionWrapper(x: PyValue, name: string): PyValue {
  if (typeof x === 'string') return "'" + escapeStringExpression(x) + "'";
  if (x instanceof Placeholder) return "'__no_value__'";
  if (x instanceof Comment) return '-- {x} \n';
  if (x === null) {
    const truncated = name.length > 20 ? name.slice(0, 20) + '...' : name;
    throw sqlTemplateError(`expression "${truncated}" evaluated to null`);
  }
  return x;
}

/** The text a wrapped value contributes to the SQL. */
export const sqlText = (x: PyValue): string => (typeof x === 'string' ? x : sqlStrValue(x));

const IDENT_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const TABLE_RE = /^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/;

function checkedList<T>(xs: T[]): T[] {
  checkItems(xs.length);
  return xs;
}

function splitPy(s: string, sep: string): string[] {
  if (sep === '') throw valueError('empty separator');
  return s.split(sep);
}

/* ------------------------------------------------------------------ render state */

export interface FunctionHost {
  testMode: boolean;
  variables: Record<string, string>;
  maxThreads?: number;
  cacheTtl?: number;
  tables: string[];
  /** Engine query parameters (secret values), name → value: sent apart from the SQL text. */
  queryParams: Record<string, string>;
}

type Transform = (x: PyValue) => PyValue;

export function buildFunctions(host: FunctionHost): Record<string, PyValue> {
  const test = host.testMode;
  const ph = (t: string): PyValue => (test ? (TEST_PLACEHOLDERS[t] ?? null) : null);

  const toStr: Transform = (x) => strValue(x);
  const toIntTyped =
    (type: string): Transform =>
    (x) =>
      new TypedInt(pyInt(x), type);
  const toFloatTyped =
    (type: string): Transform =>
    (x) =>
      new TypedFloat(toFloat(x), type);
  const toPlainInt: Transform = (x) => pyInt(x);
  const toPlainFloat: Transform = (x) => toFloat(x);

  function toFloat(x: PyValue): number {
    if (isNumber(x)) return toNum(x);
    const v = parseFloatStr(strValue(x));
    if (v === null) throw valueError(`could not convert string to float: ${reprStr(strValue(x))}`);
    return v;
  }

  /** transform_type(tester, transform, placeholder) */
  function typeFn(name: string, tester: string, transform: Transform, placeholder: PyValue): PyFunc {
    const call = (x: PyValue, dflt: PyValue, defined: PyValue): PyValue => {
      if (x instanceof Placeholder) x = truthy(dflt) ? dflt : placeholder;
      else if (x === null) {
        x = dflt;
        if (x === null) {
          if (truthy(defined)) throw requiredError();
          return null;
        }
      }
      if (tester === 'String') {
        if (x !== null) return transform(x);
      } else if (TESTERS[tester](strValue(x))) return transform(x);
      throw sqlTemplateError(`Error validating '${strValue(x)}' to type ${tester}`);
    };
    const f = fn(name, (a) => {
      const b = bindArgs(name, TYPE_SPEC, a);
      return call(b.x, b.default, b.defined);
    });
    (f as PyFunc & { raw?: typeof call }).raw = call;
    return f;
  }

  /** boolean(x, default=None) */
  function boolean(x: PyValue, dflt: PyValue): bigint {
    if (x === null) return dflt === null ? 0n : boolean(dflt, null);
    if (x instanceof Placeholder) return boolean(dflt, null);
    if (isStr(x)) {
      const s = strOf(x);
      if (s === '0' || s.toLowerCase() === 'false') return 0n;
    }
    return truthy(x) ? 1n : 0n;
  }
  const booleanFn = (name: string) =>
    fn(name, (a) => {
      const b = bindArgs(name, { names: ['x', 'default'], defaults: { default: null }, extraKw: true }, a);
      return boolean(b.x, b.default);
    });

  function symbol(x: PyValue, quote: PyValue = '`'): PyValue {
    if (x instanceof Placeholder) return new Sym('`placeholder`');
    const q = quote === null ? '' : strValue(quote);
    if (q !== '`' && q !== '"') throw sqlTemplateError(`symbol() quote must be '\`' or '"', got ${reprStr(q)}`);
    if (!isStr(x)) throw new PyError('AttributeError', `'${typeName(x)}' object has no attribute 'translate'`);
    return new Sym(q + escapeIdentifier(strOf(x)) + q);
  }
  const symbolFn = (name: string) =>
    fn(name, (a) => {
      const b = bindArgs(name, { names: ['x', 'quote'], defaults: { quote: '`' } }, a);
      return symbol(b.x, b.quote);
    });

  function column(x: PyValue, dflt: PyValue): PyValue {
    if (x === null || x instanceof Placeholder) {
      if (dflt === null)
        throw sqlTemplateError("Missing column() default value, use `column(column_name, 'default_column_name')`", '/cli/advanced-templates.html#column');
      x = dflt;
    }
    if (!isStr(x)) throw new PyError('AttributeError', `'${typeName(x)}' object has no attribute 'translate'`);
    return new Sym(
      strOf(x)
        .split('.')
        .map((s) => '`' + escapeIdentifier(s) + '`')
        .join('.'),
    );
  }

  function columns(x: PyValue, dflt: PyValue, f: PyValue): PyValue {
    if (x === null || x instanceof Placeholder) {
      if (dflt === null)
        throw sqlTemplateError("Missing columns() default value, use `columns(column_names, 'default_column_name')`", '/cli/advanced-templates.html#columns');
      x = dflt;
    }
    if (!isStr(x)) throw sqlTemplateError("The 'columns' function expects a String not an Array", '/cli/advanced-templates.html#columns');
    const cols = strOf(x)
      .split(',')
      .map((c) => c.trim());
    if (truthy(f)) {
      const fname = strValue(f);
      if (!IDENT_RE.test(fname)) throw sqlTemplateError(`Invalid function name in columns(): ${reprStr(fname)}`, '/cli/advanced-templates.html#columns');
      return new SqlExpr(cols.map((c) => `${fname}(${strValue(column(c, c))}) as ${IDENT_RE.test(c) ? c : '`' + escapeIdentifier(c) + '`'}`).join(','));
    }
    return new SqlExpr(cols.map((c) => strValue(column(c, c))).join(','));
  }

  function table(x: PyValue): PyValue {
    if (x instanceof Placeholder) return new Sym('placeholder');
    if (!isStr(x)) throw new PyError('AttributeError', `'${typeName(x)}' object has no attribute 'translate'`);
    const name = escapeIdentifier(strOf(x));
    if (!TABLE_RE.test(name)) throw sqlTemplateError(`Invalid table name: ${reprStr(strOf(x))}`);
    if (!host.tables.includes(name)) host.tables.push(name);
    return new Sym(name);
  }

  const types: Record<string, PyFunc> = {
    DateTime64: typeFn('DateTime64', 'DateTime64', toStr, ph('DateTime64')),
    DateTime: typeFn('DateTime', 'DateTime', toStr, ph('DateTime')),
    Date: typeFn('Date', 'Date', toStr, ph('Date')),
    Float32: typeFn('Float32', 'Float32', toFloatTyped('Float32'), ph('Float32')),
    Float64: typeFn('Float64', 'Float64', toFloatTyped('Float64'), ph('Float64')),
    Int: typeFn('Int', 'Int32', toPlainInt, ph('Int')),
    Integer: typeFn('Integer', 'Int32', toPlainInt, ph('Int32')),
    String: typeFn('String', 'String', toStr, '__no_value__'),
  };
  for (const t of INT_TYPES) types[t] = typeFn(t, t, toIntTyped(t), ph(t));

  /** Element transforms of Array(x, 'Type'): plain values, not to<Type>() casts. */
  const elemTypes: Record<string, Transform> = {
    bool: (x) => boolean(x, null),
    Boolean: (x) => boolean(x, null),
    Symbol: (x) => symbol(x),
    Column: (x) => symbol(x),
  };
  const rawOf = (f: PyFunc) => (f as PyFunc & { raw: (x: PyValue, d: PyValue, def: PyValue) => PyValue }).raw;
  const plainTypes: [string, string, Transform, PyValue][] = [
    ['DateTime', 'DateTime', toStr, ph('DateTime')],
    ['DateTime64', 'DateTime64', toStr, ph('DateTime64')],
    ['Date', 'Date', toStr, ph('Date')],
    ['Float32', 'Float32', toPlainFloat, ph('Float32')],
    ['Float64', 'Float64', toPlainFloat, ph('Float64')],
    ['Int', 'Int32', toPlainInt, ph('Int')],
    ['Integer', 'Int32', toPlainInt, ph('Int32')],
    ...INT_TYPES.map((t): [string, string, Transform, PyValue] => [t, t, toPlainInt, ph(t)]),
    ['String', 'String', toStr, '__no_value__'],
  ];
  for (const [n, tester, tr, p] of plainTypes) {
    const raw = rawOf(typeFn(n, tester, tr, p));
    elemTypes[n] = (x) => raw(x, null, true);
  }

  function arrayFn(x: PyValue, type: PyValue, dflt: PyValue, defined: PyValue): PyValue {
    const t = type === null ? null : strValue(type);
    if (x instanceof Placeholder) {
      if (truthy(dflt)) x = dflt;
      else if (t !== null && elemTypes[t]) {
        if (t === 'String') x = '';
        else x = [0, 1].map(() => strValue(elemTypes[t](x))).join(',');
      } else x = '';
    } else if (x === null) {
      x = dflt;
      if (x === null) {
        if (truthy(defined)) throw requiredError();
        return null;
      }
    }
    let list: PyValue[];
    if (Array.isArray(x)) list = x;
    else if (isStr(x)) list = strOf(x).split(',');
    else throw sqlTemplateError('transform type function Array is not well defined');
    const values: string[] = [];
    list.forEach((el, i) => {
      step();
      const s = strValue(el);
      if (t !== null && TESTERS[t]) {
        if (!TESTERS[t](s)) throw sqlTemplateError(`Error validating [${strValue(x)}][${i}] (${s === '' ? 'empty string' : s}) to type ${t}`);
        values.push(sqlText(expressionWrapper((elemTypes[t] ?? ((v: PyValue) => v))(el), s)));
      } else values.push(sqlText(expressionWrapper((t !== null && elemTypes[t] ? elemTypes[t] : (v: PyValue) => v)(el), s)));
    });
    return new SqlExpr(`[${values.join(',')}]`);
  }

  function jsonFn(x: PyValue, dflt: PyValue): PyValue {
    if (x instanceof Placeholder) x = truthy(dflt) ? dflt : '__no_value__';
    if (x === null) x = isStr(dflt) ? dflt : '{}';
    if (isStr(x)) {
      const s = strOf(x);
      const value = [...s].length > 16 ? [...s].slice(0, 16).join('') + '...' : s;
      try {
        return loads(s);
      } catch (e) {
        if (e instanceof JSONDecodeError) throw sqlTemplateError(`Error parsing JSON: '${value}' - ${e.message}`);
        throw e;
      }
    }
    return x;
  }

  function dateDiff(unit: 'days' | 'hours' | 'minutes' | 'seconds', defaultFormat: string, message: string, anchor: string) {
    return (a: CallArgs) => {
      const b = bindArgs(
        `date_diff_in_${unit}`,
        {
          names: ['d0', 'd1', 'date_format', 'default', 'backup_date_format', 'none_if_error'],
          defaults: { date_format: defaultFormat, default: null, backup_date_format: null, none_if_error: false },
        },
        a,
      );
      if (b.d0 instanceof Placeholder || b.d1 instanceof Placeholder) return truthy(b.default) ? b.default : 0n;
      try {
        const formats = [strValue(b.date_format)];
        if (truthy(b.backup_date_format)) formats.push(strValue(b.backup_date_format));
        const parse = (d: PyValue) => {
          if (!isStr(d)) throw typeError(`strptime() argument 1 must be str, not ${typeName(d)}`);
          for (const f of formats) {
            try {
              return strptime(strOf(d), f);
            } catch {}
          }
          throw new Error('no format matched');
        };
        let diff: bigint;
        try {
          const p0 = parse(b.d0);
          const p1 = parse(b.d1);
          if (p0.aware !== p1.aware) throw new Error("can't subtract offset-naive and offset-aware datetimes");
          diff = p1.us > p0.us ? p1.us - p0.us : p0.us - p1.us;
        } catch (e) {
          if (e instanceof LimitError) throw e;
          if (truthy(b.none_if_error)) return null;
          throw e;
        }
        const div = unit === 'days' ? 86400n : unit === 'hours' ? 3600n : unit === 'minutes' ? 60n : 1n;
        return diff / (div * 1_000_000n);
      } catch (e) {
        if (e instanceof LimitError) throw e;
        throw sqlTemplateError(message, `/cli/advanced-templates.html#${anchor}`);
      }
    };
  }

  const dateTimeMsg = (fname: string) =>
    `invalid date_format in function \`${fname}\`, defaults to YYYY-MM-DD hh:mm:ss. Or %Y-%m-%d %H:%M:%S [.ssssss]Z, e.g. ms: 2022-12-19T18:42:22.591Z s:2022-12-19T18:42:22Z`;
  const diffDays = dateDiff(
    'days',
    '%Y-%m-%d',
    'invalid date format in function `date_diff_in_days`, it must be ISO format date YYYY-MM-DD, e.g. 2018-09-26',
    'date_diff_in_days',
  );

  const comment = (text: string) => new SqlExpr(text);
  const oneLine = (s: string) => s.replace(/[\r\n]+/g, ' ');

  const fns: Record<string, PyValue> = {
    ...types,
    bool: booleanFn('bool'),
    Boolean: booleanFn('Boolean'),
    Symbol: symbolFn('Symbol'),
    Column: symbolFn('Column'),
    symbol: symbolFn('symbol'),
    Array: fn('Array', (a) => {
      const b = bindArgs('Array', ARRAY_SPEC, a);
      return arrayFn(b.x, b._type, b.default, b.defined);
    }),
    JSON: fn('JSON', (a) => {
      const b = bindArgs('JSON', { names: ['x', 'default'], defaults: { default: null } }, a);
      return jsonFn(b.x, b.default);
    }),
    column: fn('column', (a) => {
      const b = bindArgs('column', { names: ['x', 'default'], defaults: { default: null } }, a);
      return column(b.x, b.default);
    }),
    columns: fn('columns', (a) => {
      const b = bindArgs('columns', { names: ['x', 'default', 'fn'], defaults: { default: null, fn: null } }, a);
      return columns(b.x, b.default, b.fn);
    }),
    table: fn('table', (a) => table(bindArgs('table', { names: ['x', 'quote'], defaults: { quote: '`' } }, a).x)),
    TABLE: fn('TABLE', (a) => table(bindArgs('TABLE', { names: ['x', 'quote'], defaults: { quote: '`' } }, a).x)),
    defined: fn('defined', (a) => {
      const b = bindArgs('defined', { names: ['x'], defaults: { x: null } }, a);
      return !(b.x instanceof Placeholder || b.x === null);
    }),
    sql_and: fn('sql_and', (a) => {
      const operands: Record<string, string> = { in: 'in', not_in: 'not in', gt: '>', lt: '<', gte: '>=', lte: '<=' };
      const parts: string[] = [];
      for (const [k, v] of a.kwargs) {
        if (v === null) continue;
        const cut = k.lastIndexOf('__');
        const name = cut === -1 ? k : k.slice(0, cut);
        let op = '=';
        if (cut !== -1) {
          const suffix = k.slice(cut + 2);
          if (!(suffix in operands)) throw sqlTemplateError(`operand ${suffix} not supported`, '/cli/advanced-templates.html#sql_and');
          op = operands[suffix];
        }
        if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(name))
          throw sqlTemplateError(`Invalid column name in sql_and(): ${reprStr(name)}`, '/cli/advanced-templates.html#sql_and');
        parts.push(`${name} ${op} ${sqlText(expressionWrapper(v, k))}`);
      }
      return new SqlExpr(parts.join(' and '));
    }),
    split_to_array: fn('split_to_array', (a) => {
      const b = bindArgs('split_to_array', { names: ['x', 'default', 'separator'], defaults: { default: '', separator: ',' } }, a);
      let x = b.x;
      if (x instanceof Placeholder || x === null) x = b.default;
      const sep = isStr(b.separator) ? strOf(b.separator) : strValue(b.separator);
      if (Array.isArray(x)) return checkedList(x.flatMap((el) => (isStr(el) ? splitPy(strOf(el), sep) : [strValue(el)])).map((s) => s.trim()));
      if (!isStr(x))
        throw sqlTemplateError(
          'First argument of split_to_array has to be a value that can be split to a list of elements, but found a PlaceHolder with no value instead',
          '/cli/advanced-templates.html#split_to_array',
        );
      return checkedList(splitPy(strOf(x), sep).map((s) => s.trim()));
    }),
    enumerate_with_last: fn('enumerate_with_last', (a) => {
      const b = bindArgs('enumerate_with_last', { names: ['arr'] }, a);
      const n = len(b.arr);
      const out: PyValue[] = [];
      let i = 0;
      for (const x of iterate(b.arr)) {
        step();
        out.push(new PyTuple([n === i + 1, x]));
        i++;
      }
      return out;
    }),
    day_diff: fn('day_diff', (a) => {
      const b = bindArgs('day_diff', { names: ['d0', 'd1', 'default'], defaults: { default: null } }, a);
      try {
        return diffDays({ args: [b.d0, b.d1, '%Y-%m-%d'], kwargs: [] });
      } catch (e) {
        if (e instanceof PyError)
          throw sqlTemplateError(
            'invalid date format in function `day_diff`, it must be ISO format date YYYY-MM-DD, e.g. 2018-09-26. For other fotmats, try `date_diff_in_days`',
            '/cli/advanced-templates.html#date_diff_in_days',
          );
        throw e;
      }
    }),
    date_diff_in_days: fn('date_diff_in_days', diffDays),
    date_diff_in_hours: fn('date_diff_in_hours', dateDiff('hours', '%Y-%m-%d %H:%M:%S', dateTimeMsg('date_diff_in_hours'), 'date_diff_in_hours')),
    date_diff_in_minutes: fn('date_diff_in_minutes', dateDiff('minutes', '%Y-%m-%d %H:%M:%S', dateTimeMsg('date_diff_in_seconds'), 'date_diff_in_minutes')),
    date_diff_in_seconds: fn('date_diff_in_seconds', dateDiff('seconds', '%Y-%m-%d %H:%M:%S', dateTimeMsg('date_diff_in_seconds'), 'date_diff_in_seconds')),
    sql_unescape: fn('sql_unescape', (a) => {
      const b = bindArgs('sql_unescape', { names: ['x', 'what'], defaults: { what: '' } }, a);
      if (!isStr(b.x)) throw new PyError('AttributeError', `'${typeName(b.x)}' object has no attribute 'translate'`);
      const what = strValue(b.what);
      const body = escapeStringExpression(strOf(b.x))
        .split('\\' + what)
        .join(what);
      if (!isSafeLiteralBody(body)) throw sqlTemplateError(`sql_unescape() cannot unescape ${reprStr(what)}: the value would break out of its string literal`);
      return new SqlExpr("'" + body + "'");
    }),
    error: fn('error', (a) => {
      if (test) return new Comment('error launched');
      const b = bindArgs('error', { names: ['s', 'code'], defaults: { code: 400n } }, a);
      const e = new PyError('ValueError', strValue(b.s));
      e.fromErrorFn = true;
      throw e;
    }),
    custom_error: fn('custom_error', (a) => {
      if (test) return new Comment('error launched');
      const b = bindArgs('custom_error', { names: ['s', 'code'], defaults: { code: 400n } }, a);
      const e = new PyError('SQLTemplateCustomError', strValue(b.s));
      const code = isIntLike(b.code) ? Number(toBig(b.code)) : Number(strValue(b.code));
      e.status = Number.isInteger(code) && code >= 100 && code <= 599 ? code : 400;
      e.body = toJS(b.s);
      throw e;
    }),
    max_threads: fn('max_threads', (a) => {
      const b = bindArgs('max_threads', { names: ['x'] }, a);
      try {
        const n = pyInt(b.x);
        host.maxThreads = Number(n);
        return comment(`-- max_threads ${isStr(b.x) ? n : strValue(b.x)}\n`);
      } catch (e) {
        if (!(e instanceof PyError)) throw e;
        return comment(`-- max_threads: wrong argument ${oneLine(strValue(b.x))}\n`);
      }
    }),
    backend_hint: fn('backend_hint', (a) => {
      const b = bindArgs('backend_hint', { names: ['hint'] }, a);
      return comment(`-- backend_hint ${oneLine(strValue(b.hint))}\n`);
    }),
    cache_ttl: fn('cache_ttl', (a) => {
      const b = bindArgs('cache_ttl', { names: ['ttl_expression'] }, a);
      const valid: Record<string, number> = { '5s': 5, '1m': 60, '5m': 300, '30m': 1800, '1h': 3600 };
      const ttl = b.ttl_expression;
      if (!isStr(ttl) || !(strOf(ttl) in valid)) throw sqlTemplateError("Invalid TTL cache expression, valid expressions are ('5s', '1m', '5m', '30m', '1h')");
      host.cacheTtl = valid[strOf(ttl)];
      return comment(`-- cache_ttl ${strOf(ttl)}\n`);
    }),
    activate: fn('activate', (a) => {
      const b = bindArgs('activate', { names: ['feature'] }, a);
      const f = b.feature;
      if (!isStr(f) || !['analyzer', 'parallel_replicas'].includes(strOf(f))) throw sqlTemplateError(`'${strValue(f)}' is not a valid 'activate' argument`);
      return comment(`-- activate ${strOf(f)}\n`);
    }),
    disable: fn('disable', (a) => {
      const b = bindArgs('disable', { names: ['feature'] }, a);
      const f = b.feature;
      if (!isStr(f) || !'analyzer'.includes(strOf(f))) throw sqlTemplateError(`'${strValue(f)}' is not a valid 'disable' argument`);
      return comment(`-- disable ${strOf(f)}\n`);
    }),
  };

  const secret = (name: string) =>
    fn(name, (a) => {
      const b = bindArgs(name, { names: ['x', 'default'], defaults: { default: null } }, a);
      const key = strValue(b.x);
      if (Object.hasOwn(host.variables, key)) {
        // The value travels as an engine query parameter, so it is in no SQL text (logs, explain).
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw sqlTemplateError(`Invalid secret name '${key}'`);
        const param = `tb_secret_${key}`;
        host.queryParams[param] = host.variables[key];
        return new SqlExpr(`{${param}:String}`);
      }
      if (b.default !== null) return b.default;
      if (test) return '';
      throw sqlTemplateError(`Cannot access secret '${key}'. Check the secret exists in the Workspace and the token has the required scope.`);
    });
  fns.tb_secret = secret('tb_secret');
  fns.tb_var = secret('tb_var');
  return fns;
}

/** Names in Tinybird's internal namespace (filtered out of template variables). */
export const NAMESPACE_NAMES = new Set([
  'column',
  'symbol',
  'error',
  'custom_error',
  '_tt_utf8',
  '_tt_string_types',
  'xhtml_escape',
  'expression_wrapper',
  '__buildins__',
  '__import__',
  '__debug__',
  '__doc__',
  '__name__',
  '__package__',
  'open',
  'close',
  'print',
  'input',
]);

/** Tinybird's function_list (never parameters). */
export const FUNCTION_LIST = new Set([
  'columns',
  'table',
  'TABLE',
  'error',
  'custom_error',
  'sql_and',
  'defined',
  'column',
  'enumerate_with_last',
  'split_to_array',
  'day_diff',
  'date_diff_in_days',
  'date_diff_in_hours',
  'date_diff_in_minutes',
  'date_diff_in_seconds',
  'sql_unescape',
  'JSON',
]);

export const PARAMETER_TYPES = ['String', 'Boolean', 'DateTime64', 'DateTime', 'Date', 'Float32', 'Float64', ...INT_TYPES, 'Array', 'JSON'];

/** Values of the element types used when preprocessing Array-typed request parameters. */
export function elementValue(type: string, v: PyValue): PyValue {
  if (type === 'Boolean' || type === 'bool') {
    if (isStr(v) && (strOf(v) === '0' || strOf(v).toLowerCase() === 'false')) return 0n;
    return truthy(v) ? 1n : 0n;
  }
  if (type === 'Int' || type === 'Integer' || INT_TYPES.includes(type)) return pyInt(v);
  if (type === 'Float32' || type === 'Float64') {
    if (isNumber(v)) return toNum(v);
    return parseFloatStr(strValue(v)) ?? 0;
  }
  if (type === 'String' || type === 'Date' || type === 'DateTime' || type === 'DateTime64') return strValue(v);
  return v;
}
