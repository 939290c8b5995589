/**
 * Runtime values of the template interpreter, modelled on the Python objects Tinybird's engine
 * produces: None=null, bool=boolean, int=bigint, float=number, str=string, list=JS array, and the
 * classes below (tuple, dict, set, range, and Tinybird's Placeholder/Expression/Symbol/Integer/Float/Comment).
 */
import { PyError, PyException, LimitError, typeError } from './errors.js';
import { escapeStringExpression } from './escape.js';
import { reprFloat, reprStr } from './pyfmt.js';

export class PyTuple {
  constructor(readonly items: PyValue[]) {}
}

export class PyDict {
  readonly m = new Map<string, { k: PyValue; v: PyValue }>();
  get size(): number {
    return this.m.size;
  }
  get(k: PyValue): PyValue | undefined {
    return this.m.get(hashKey(k))?.v;
  }
  has(k: PyValue): boolean {
    return this.m.has(hashKey(k));
  }
  set(k: PyValue, v: PyValue): void {
    const h = hashKey(k);
    const cur = this.m.get(h);
    if (cur) cur.v = v;
    else this.m.set(h, { k, v });
  }
  delete(k: PyValue): boolean {
    return this.m.delete(hashKey(k));
  }
  keys(): PyValue[] {
    return [...this.m.values()].map((e) => e.k);
  }
  values(): PyValue[] {
    return [...this.m.values()].map((e) => e.v);
  }
  entries(): [PyValue, PyValue][] {
    return [...this.m.values()].map((e) => [e.k, e.v]);
  }
}

export class PySet {
  readonly m = new Map<string, PyValue>();
  constructor(items: PyValue[] = []) {
    for (const x of items) this.add(x);
  }
  add(x: PyValue): void {
    const h = hashKey(x);
    if (!this.m.has(h)) this.m.set(h, x);
  }
  has(x: PyValue): boolean {
    return this.m.has(hashKey(x));
  }
  items(): PyValue[] {
    return [...this.m.values()];
  }
}

export class PyRange {
  constructor(
    readonly start: bigint,
    readonly stop: bigint,
    readonly step: bigint,
  ) {}
  get length(): bigint {
    const { start, stop, step } = this;
    if (step > 0n) return stop > start ? (stop - start + step - 1n) / step : 0n;
    return start > stop ? (start - stop - step - 1n) / -step : 0n;
  }
  at(i: bigint): bigint {
    return this.start + i * this.step;
  }
}

/** Tinybird's Placeholder: the value of a missing parameter in test mode. */
export class Placeholder {
  constructor(
    readonly name = '__no_value__',
    readonly line: number | string = 'unknown',
  ) {}
}

/** Tinybird's Expression: a str subclass inserted into the SQL verbatim (built only by trusted functions). */
export class SqlExpr {
  constructor(readonly s: string) {}
}

/** Tinybird's Symbol: an identifier (already quoted/escaped) inserted verbatim. */
export class Sym {
  constructor(readonly x: string) {}
}

/** Tinybird's Integer: an int that renders as to<Type>('<value>'). */
export class TypedInt {
  constructor(
    readonly v: bigint,
    readonly type: string,
  ) {}
}

/** Tinybird's Float: a float that renders as to<Type>('<value>'). */
export class TypedFloat {
  constructor(
    readonly v: number,
    readonly type: string,
  ) {}
}

/** What error()/custom_error() return in test mode. */
export class Comment {
  constructor(readonly text: string) {}
}

export interface CallArgs {
  args: PyValue[];
  kwargs: [string, PyValue][];
}

export class PyFunc {
  constructor(
    readonly name: string,
    readonly fn: (a: CallArgs) => PyValue,
    readonly kind: 'builtin' | 'class' | 'function' = 'function',
  ) {}
}

/** A Python exception class (for `except ValueError as e`). */
export class PyExcClass {
  constructor(readonly name: string) {}
}

export type PyValue =
  | null
  | boolean
  | bigint
  | number
  | string
  | PyValue[]
  | PyTuple
  | PyDict
  | PySet
  | PyRange
  | Placeholder
  | SqlExpr
  | Sym
  | TypedInt
  | TypedFloat
  | Comment
  | PyFunc
  | PyExcClass
  | PyException;

/* ------------------------------------------------------------------ type tests */

export const isStr = (v: PyValue): v is string | SqlExpr => typeof v === 'string' || v instanceof SqlExpr;
export const strOf = (v: string | SqlExpr): string => (typeof v === 'string' ? v : v.s);
/** int-like: bool, int, Integer. */
export const isIntLike = (v: PyValue): v is boolean | bigint | TypedInt => typeof v === 'boolean' || typeof v === 'bigint' || v instanceof TypedInt;
export const isNumber = (v: PyValue): boolean => isIntLike(v) || typeof v === 'number' || v instanceof TypedFloat;
export function toBig(v: boolean | bigint | TypedInt): bigint {
  return typeof v === 'boolean' ? (v ? 1n : 0n) : typeof v === 'bigint' ? v : v.v;
}
export function toNum(v: PyValue): number {
  if (typeof v === 'number') return v;
  if (v instanceof TypedFloat) return v.v;
  if (isIntLike(v)) {
    const b = toBig(v);
    const n = Number(b);
    if (!Number.isFinite(n)) throw new PyError('OverflowError', 'int too large to convert to float');
    return n;
  }
  throw typeError(`must be real number, not ${typeName(v)}`);
}

export function typeName(v: PyValue): string {
  if (v === null) return 'NoneType';
  switch (typeof v) {
    case 'boolean':
      return 'bool';
    case 'bigint':
      return 'int';
    case 'number':
      return 'float';
    case 'string':
      return 'str';
  }
  if (Array.isArray(v)) return 'list';
  if (v instanceof PyTuple) return 'tuple';
  if (v instanceof PyDict) return 'dict';
  if (v instanceof PySet) return 'set';
  if (v instanceof PyRange) return 'range';
  if (v instanceof Placeholder) return 'Placeholder';
  if (v instanceof SqlExpr) return 'Expression';
  if (v instanceof Sym) return 'Symbol';
  if (v instanceof TypedInt) return 'Integer';
  if (v instanceof TypedFloat) return 'Float';
  if (v instanceof Comment) return 'Comment';
  if (v instanceof PyFunc) return v.kind === 'class' ? 'type' : v.kind === 'builtin' ? 'builtin_function_or_method' : 'function';
  if (v instanceof PyExcClass) return 'type';
  if (v instanceof PyException) return v.err.pyType;
  return 'object';
}

/* ------------------------------------------------------------------ hashing */

const ids = new WeakMap<object, number>();
let nextId = 1;
function objId(o: object): number {
  let id = ids.get(o);
  if (id === undefined) {
    id = nextId++;
    ids.set(o, id);
  }
  return id;
}

export function hashKey(v: PyValue): string {
  if (v === null) return 'n';
  switch (typeof v) {
    case 'boolean':
      return v ? 'i:1' : 'i:0';
    case 'bigint':
      return 'i:' + v;
    case 'number':
      return Number.isInteger(v) ? 'i:' + BigInt(v) : 'f:' + v;
    case 'string':
      return 's:' + v;
  }
  if (v instanceof SqlExpr) return 's:' + v.s;
  if (v instanceof TypedInt) return 'i:' + v.v;
  if (v instanceof TypedFloat) return Number.isInteger(v.v) ? 'i:' + BigInt(v.v) : 'f:' + v.v;
  if (v instanceof PyTuple) return 't:(' + v.items.map(hashKey).join(',') + ')';
  if (Array.isArray(v) || v instanceof PyDict || v instanceof PySet) throw typeError(`unhashable type: '${typeName(v)}'`);
  return 'o:' + objId(v as object);
}

/* ------------------------------------------------------------------ truthiness, equality, ordering */

export function truthy(v: PyValue): boolean {
  if (v === null) return false;
  switch (typeof v) {
    case 'boolean':
      return v;
    case 'bigint':
      return v !== 0n;
    case 'number':
      return v !== 0;
    case 'string':
      return v.length > 0;
  }
  if (Array.isArray(v)) return v.length > 0;
  if (v instanceof PyTuple) return v.items.length > 0;
  if (v instanceof PyDict) return v.size > 0;
  if (v instanceof PySet) return v.m.size > 0;
  if (v instanceof PyRange) return v.length > 0n;
  if (v instanceof SqlExpr) return v.s.length > 0;
  if (v instanceof TypedInt) return v.v !== 0n;
  if (v instanceof TypedFloat) return v.v !== 0;
  return true;
}

export function pyEq(a: PyValue, b: PyValue, depth = 0): boolean {
  if (depth > 200) throw new LimitError('Template Syntax Error: maximum recursion depth exceeded in comparison');
  if (a === b) return true;
  if (a === null || b === null) return false;
  if (isNumber(a) && isNumber(b)) {
    if (isIntLike(a) && isIntLike(b)) return toBig(a) === toBig(b);
    const x = isIntLike(a) ? toBig(a) : (a as number | TypedFloat);
    const y = isIntLike(b) ? toBig(b) : (b as number | TypedFloat);
    const xn = x instanceof TypedFloat ? x.v : x;
    const yn = y instanceof TypedFloat ? y.v : y;
    if (typeof xn === 'bigint' && typeof yn === 'number') return Number.isInteger(yn) && BigInt(yn) === xn;
    if (typeof xn === 'number' && typeof yn === 'bigint') return Number.isInteger(xn) && BigInt(xn) === yn;
    return xn === yn;
  }
  if (isStr(a) && isStr(b)) return strOf(a) === strOf(b);
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => pyEq(x, b[i], depth + 1));
  if (a instanceof PyTuple && b instanceof PyTuple) return a.items.length === b.items.length && a.items.every((x, i) => pyEq(x, b.items[i], depth + 1));
  if (a instanceof PyDict && b instanceof PyDict) {
    if (a.size !== b.size) return false;
    for (const [h, e] of a.m) {
      const o = b.m.get(h);
      if (!o || !pyEq(e.v, o.v, depth + 1)) return false;
    }
    return true;
  }
  if (a instanceof PySet && b instanceof PySet) return a.m.size === b.m.size && [...a.m.keys()].every((h) => b.m.has(h));
  if (a instanceof PyRange && b instanceof PyRange) return a.start === b.start && a.stop === b.stop && a.step === b.step;
  if (a instanceof PyException && b instanceof PyException) return a === b;
  if (a instanceof PyExcClass && b instanceof PyExcClass) return a.name === b.name;
  return false;
}

const OP_SYM: Record<string, string> = { Lt: '<', LtE: '<=', Gt: '>', GtE: '>=' };

/** a <op> b for ordering comparisons; returns negative/0/positive like a comparator. */
function cmpOrder(a: PyValue, b: PyValue, op: string, depth = 0): number {
  if (isNumber(a) && isNumber(b)) {
    if (isIntLike(a) && isIntLike(b)) {
      const x = toBig(a);
      const y = toBig(b);
      return x < y ? -1 : x > y ? 1 : 0;
    }
    const x = toNum(a);
    const y = toNum(b);
    if (Number.isNaN(x) || Number.isNaN(y)) return NaN;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (isStr(a) && isStr(b)) {
    const x = strOf(a);
    const y = strOf(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  const seq = (v: PyValue) => (Array.isArray(v) ? v : v instanceof PyTuple ? v.items : null);
  const sa = seq(a);
  const sb = seq(b);
  if (sa && sb && Array.isArray(a) === Array.isArray(b)) {
    for (let i = 0; i < Math.min(sa.length, sb.length); i++) {
      if (!pyEq(sa[i], sb[i], depth + 1)) return cmpOrder(sa[i], sb[i], op, depth + 1);
    }
    return sa.length - sb.length;
  }
  let msg = `'${OP_SYM[op]}' not supported between instances of '${typeName(a)}' and '${typeName(b)}'`;
  if (a instanceof Placeholder || b instanceof Placeholder)
    msg += '. If you are using a dynamic parameter, you need to wrap it around a valid Data Type (e.g. Int8(placeholder))';
  throw typeError(msg);
}

export function compare(op: string, a: PyValue, b: PyValue): boolean {
  switch (op) {
    case 'Eq':
      return pyEq(a, b);
    case 'NotEq':
      return !pyEq(a, b);
    case 'Is':
      return pyIs(a, b);
    case 'IsNot':
      return !pyIs(a, b);
    case 'In':
      return contains(b, a);
    case 'NotIn':
      return !contains(b, a);
  }
  if (a instanceof PySet && b instanceof PySet) {
    const sub = (x: PySet, y: PySet) => [...x.m.keys()].every((h) => y.m.has(h));
    if (op === 'LtE') return sub(a, b);
    if (op === 'GtE') return sub(b, a);
    if (op === 'Lt') return sub(a, b) && a.m.size < b.m.size;
    return sub(b, a) && b.m.size < a.m.size;
  }
  const c = cmpOrder(a, b, op);
  switch (op) {
    case 'Lt':
      return c < 0;
    case 'LtE':
      return c <= 0;
    case 'Gt':
      return c > 0;
    default:
      return c >= 0;
  }
}

function pyIs(a: PyValue, b: PyValue): boolean {
  if (a === b) return true;
  if (typeof a === 'bigint' && typeof b === 'bigint') return a === b && a >= -5n && a <= 256n;
  return false;
}

export function contains(container: PyValue, item: PyValue): boolean {
  if (isStr(container)) {
    if (!isStr(item)) throw typeError(`'in <string>' requires string as left operand, not ${typeName(item)}`);
    return strOf(container).includes(strOf(item));
  }
  if (Array.isArray(container)) return container.some((x) => x === item || pyEq(x, item));
  if (container instanceof PyTuple) return container.items.some((x) => x === item || pyEq(x, item));
  if (container instanceof PyDict) return container.has(item);
  if (container instanceof PySet) return container.has(item);
  if (container instanceof PyRange) {
    if (!isIntLike(item) && !(typeof item === 'number' && Number.isInteger(item))) return false;
    const i = typeof item === 'number' ? BigInt(item) : toBig(item as bigint);
    const { start, stop, step } = container;
    if (step > 0n ? i < start || i >= stop : i > start || i <= stop) return false;
    return (i - start) % step === 0n;
  }
  if (container instanceof Placeholder) {
    // iteration through __getitem__: three Placeholders, compared by identity
    return false;
  }
  throw typeError(`argument of type '${typeName(container)}' is not iterable`);
}

/* ------------------------------------------------------------------ str() and repr() */

const BUILTIN_CLASSES = new Set([
  'int',
  'float',
  'str',
  'list',
  'dict',
  'tuple',
  'set',
  'range',
  'enumerate',
  'zip',
  'map',
  'filter',
  'reversed',
  'type',
  'object',
  'frozenset',
]);

function funcText(f: PyFunc): string {
  if (f.kind === 'class' || BUILTIN_CLASSES.has(f.name)) return `<class '${f.name}'>`;
  if (f.kind === 'builtin') return `<built-in function ${f.name}>`;
  return `<function ${f.name}>`;
}

export interface ReprMode {
  /** Strings inside containers: Python repr (messages) or SQL-escaped single-quoted literals (SQL output). */
  sql: boolean;
}
const PY: ReprMode = { sql: false };
const SQL: ReprMode = { sql: true };

function checkSize(s: string): string {
  if (s.length > 10_000_000) throw new LimitError('Template Syntax Error: the template output is too large (over 10 MB)');
  return s;
}

export function reprValue(v: PyValue, mode: ReprMode = PY, depth = 0): string {
  if (depth > 100) throw new LimitError('Template Syntax Error: maximum recursion depth exceeded while getting the repr of an object');
  if (v === null) return 'None';
  switch (typeof v) {
    case 'boolean':
      return v ? 'True' : 'False';
    case 'bigint':
      return v.toString();
    case 'number':
      return reprFloat(v);
    case 'string':
      return mode.sql ? "'" + escapeStringExpression(v) + "'" : reprStr(v);
  }
  if (v instanceof SqlExpr) return mode.sql ? "'" + escapeStringExpression(v.s) + "'" : reprStr(v.s);
  if (v instanceof TypedInt) return v.v.toString();
  if (v instanceof TypedFloat) return reprFloat(v.v);
  if (Array.isArray(v)) return checkSize('[' + v.map((x) => reprValue(x, mode, depth + 1)).join(', ') + ']');
  if (v instanceof PyTuple)
    return checkSize(
      v.items.length === 1 ? '(' + reprValue(v.items[0], mode, depth + 1) + ',)' : '(' + v.items.map((x) => reprValue(x, mode, depth + 1)).join(', ') + ')',
    );
  if (v instanceof PyDict)
    return checkSize(
      '{' +
        v
          .entries()
          .map(([k, x]) => reprValue(k, mode, depth + 1) + ': ' + reprValue(x, mode, depth + 1))
          .join(', ') +
        '}',
    );
  if (v instanceof PySet)
    return v.m.size === 0
      ? 'set()'
      : checkSize(
          '{' +
            v
              .items()
              .map((x) => reprValue(x, mode, depth + 1))
              .join(', ') +
            '}',
        );
  if (v instanceof PyRange) return v.step === 1n ? `range(${v.start}, ${v.stop})` : `range(${v.start}, ${v.stop}, ${v.step})`;
  if (v instanceof Placeholder) return mode.sql ? "'__no_value__'" : '<Placeholder object>';
  if (v instanceof Sym) return mode.sql ? v.x : '<Symbol object>';
  if (v instanceof Comment) return mode.sql ? "'" + escapeStringExpression(v.text) + "'" : '<Comment object>';
  if (v instanceof PyFunc) return funcText(v);
  if (v instanceof PyExcClass) return `<class '${v.name}'>`;
  if (v instanceof PyException) {
    const r = `${v.err.pyType}(${reprStr(v.err.msg)})`;
    return mode.sql ? "'" + escapeStringExpression(r) + "'" : r;
  }
  return '<object>';
}

/** Python's str(). */
export function strValue(v: PyValue, mode: ReprMode = PY): string {
  if (typeof v === 'string') return v;
  if (v instanceof SqlExpr) return v.s;
  if (v instanceof Placeholder) return '__no_value__';
  if (v instanceof Sym) return v.x;
  if (v instanceof TypedInt) return `to${v.type}('${v.v}')`;
  if (v instanceof TypedFloat) return `to${v.type}('${reprFloat(v.v)}')`;
  if (v instanceof Comment) return v.text;
  if (v instanceof PyException) {
    const text = v.err.pyType === 'SQLTemplateException' ? 'Template Syntax Error: ' + v.err.msg : v.err.msg;
    return mode.sql ? "'" + escapeStringExpression(text) + "'" : text;
  }
  return reprValue(v, mode);
}

/** str() used when a non-string value is written into the SQL: strings nested in containers are SQL literals. */
export const sqlStrValue = (v: PyValue): string => strValue(v, SQL);

/* ------------------------------------------------------------------ conversion from/to JS */

/** Converts a request parameter (JSON-ish) into a template value. */
export function fromJS(v: unknown, depth = 0): PyValue {
  if (depth > 100) throw new LimitError('Template Syntax Error: parameter value nested too deeply');
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case 'string':
      return v;
    case 'boolean':
      return v;
    case 'number':
      return Number.isInteger(v) && Number.isSafeInteger(v) ? BigInt(v) : v;
    case 'bigint':
      return v;
  }
  if (Array.isArray(v)) return v.map((x) => fromJS(x, depth + 1));
  if (typeof v === 'object') {
    const d = new PyDict();
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) d.set(k, fromJS(x, depth + 1));
    return d;
  }
  return String(v);
}

/** Converts a template value to plain JSON-compatible JS (custom_error bodies, params metadata). */
export function toJS(v: PyValue, depth = 0): unknown {
  if (depth > 100) return null;
  if (v === null || typeof v === 'boolean' || typeof v === 'string' || typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (v instanceof SqlExpr) return v.s;
  if (v instanceof TypedInt) return toJS(v.v);
  if (v instanceof TypedFloat) return v.v;
  if (Array.isArray(v)) return v.map((x) => toJS(x, depth + 1));
  if (v instanceof PyTuple) return v.items.map((x) => toJS(x, depth + 1));
  if (v instanceof PySet) return v.items().map((x) => toJS(x, depth + 1));
  if (v instanceof PyDict) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of v.entries())
      Object.defineProperty(o, strValue(k), { value: toJS(x, depth + 1), enumerable: true, writable: true, configurable: true });
    return o;
  }
  return strValue(v);
}
