/** Python operators and conversions over template values. */
import type { BinOpName, UnaryOpName } from './ast.js';
import { PyError, pyErr, typeError, valueError } from './errors.js';
import { checkInt, checkItems, checkString } from './limits.js';
import { pyLen, reprStr } from './pyfmt.js';
import {
  isIntLike,
  isNumber,
  isStr,
  Placeholder,
  PyDict,
  PyRange,
  PySet,
  PyTuple,
  type CallArgs,
  type PyValue,
  reprValue,
  strOf,
  strValue,
  toBig,
  toNum,
  truthy,
  typeName,
  TypedFloat,
  PyFunc,
} from './values.js';

const OP_SYMBOL: Record<BinOpName, string> = {
  Add: '+',
  Sub: '-',
  Mult: '*',
  Div: '/',
  FloorDiv: '//',
  Mod: '%',
  Pow: '** or pow()',
  LShift: '<<',
  RShift: '>>',
  BitOr: '|',
  BitXor: '^',
  BitAnd: '&',
  MatMult: '@',
};

const unsupported = (op: BinOpName, a: PyValue, b: PyValue) =>
  typeError(`unsupported operand type(s) for ${OP_SYMBOL[op]}: '${typeName(a)}' and '${typeName(b)}'`);

const isFloatLike = (v: PyValue): v is number | TypedFloat => typeof v === 'number' || v instanceof TypedFloat;

function floorDivBig(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}
function modBig(a: bigint, b: bigint): bigint {
  const r = a % b;
  return r !== 0n && r < 0n !== b < 0n ? r + b : r;
}

function repeatSeq(seq: PyValue, n: bigint): PyValue {
  const count = n < 0n ? 0 : Number(n);
  if (isStr(seq)) {
    const s = strOf(seq);
    checkString(BigInt(s.length) * BigInt(count));
    return s.repeat(count);
  }
  const items = Array.isArray(seq) ? seq : (seq as PyTuple).items;
  checkItems(BigInt(items.length) * BigInt(count));
  const out: PyValue[] = [];
  for (let i = 0; i < count; i++) out.push(...items);
  return Array.isArray(seq) ? out : new PyTuple(out);
}

export function binop(op: BinOpName, a: PyValue, b: PyValue): PyValue {
  if (a instanceof Placeholder && op === 'Add') return new Placeholder();
  // numbers
  if (isNumber(a) && isNumber(b)) {
    if (isIntLike(a) && isIntLike(b)) {
      const x = toBig(a);
      const y = toBig(b);
      switch (op) {
        case 'Add':
          return checkInt(x + y);
        case 'Sub':
          return checkInt(x - y);
        case 'Mult':
          return checkInt(x * y);
        case 'Div':
          if (y === 0n) throw pyErr('ZeroDivisionError', 'division by zero');
          return Number(x) / Number(y);
        case 'FloorDiv':
          if (y === 0n) throw pyErr('ZeroDivisionError', 'integer division or modulo by zero');
          return floorDivBig(x, y);
        case 'Mod':
          if (y === 0n) throw pyErr('ZeroDivisionError', 'integer modulo by zero');
          return modBig(x, y);
        case 'Pow':
          if (y < 0n) {
            if (x === 0n) throw pyErr('ZeroDivisionError', '0.0 cannot be raised to a negative power');
            return Number(x) ** Number(y);
          }
          if (x !== 0n && x !== 1n && x !== -1n) {
            const bits = BigInt((x < 0n ? -x : x).toString(2).length - 1);
            if (y > 4096n || (bits > 0n && bits * y > 4096n)) checkInt(1n << 4097n);
          }
          return checkInt(x ** y);
        case 'LShift':
          if (y < 0n) throw valueError('negative shift count');
          if (y > 4096n) checkInt(1n << 4097n);
          return checkInt(x << y);
        case 'RShift':
          if (y < 0n) throw valueError('negative shift count');
          return x >> y;
        case 'BitOr':
          return typeof a === 'boolean' && typeof b === 'boolean' ? a || b : x | y;
        case 'BitAnd':
          return typeof a === 'boolean' && typeof b === 'boolean' ? a && b : x & y;
        case 'BitXor':
          return typeof a === 'boolean' && typeof b === 'boolean' ? a !== b : x ^ y;
        default:
          throw unsupported(op, a, b);
      }
    }
    const x = toNum(a);
    const y = toNum(b);
    switch (op) {
      case 'Add':
        return x + y;
      case 'Sub':
        return x - y;
      case 'Mult':
        return x * y;
      case 'Div':
        if (y === 0) throw pyErr('ZeroDivisionError', 'float division by zero');
        return x / y;
      case 'FloorDiv':
        if (y === 0) throw pyErr('ZeroDivisionError', 'float floor division by zero');
        return Math.floor(x / y);
      case 'Mod': {
        if (y === 0) throw pyErr('ZeroDivisionError', 'float modulo');
        const r = x % y;
        return r !== 0 && r < 0 !== y < 0 ? r + y : r;
      }
      case 'Pow': {
        if (x === 0 && y < 0) throw pyErr('ZeroDivisionError', '0.0 cannot be raised to a negative power');
        const r = x ** y;
        if (Number.isNaN(r) && x < 0) throw valueError('math domain error');
        if (!Number.isFinite(r) && Number.isFinite(x) && Number.isFinite(y)) throw pyErr('OverflowError', "(34, 'Numerical result out of range')");
        return r;
      }
      default:
        throw unsupported(op, a, b);
    }
  }
  switch (op) {
    case 'Add':
      if (isStr(a) && isStr(b)) {
        const s = strOf(a) + strOf(b);
        checkString(s.length);
        return s;
      }
      if (Array.isArray(a) && Array.isArray(b)) {
        checkItems(a.length + b.length);
        return [...a, ...b];
      }
      if (a instanceof PyTuple && b instanceof PyTuple) {
        checkItems(a.items.length + b.items.length);
        return new PyTuple([...a.items, ...b.items]);
      }
      if (isStr(a)) throw typeError(`can only concatenate str (not "${typeName(b)}") to str`);
      if (Array.isArray(a)) throw typeError(`can only concatenate list (not "${typeName(b)}") to list`);
      if (a instanceof PyTuple) throw typeError(`can only concatenate tuple (not "${typeName(b)}") to tuple`);
      throw unsupported(op, a, b);
    case 'Mult':
      if ((isStr(a) || Array.isArray(a) || a instanceof PyTuple) && isIntLike(b)) return repeatSeq(a, toBig(b));
      if ((isStr(b) || Array.isArray(b) || b instanceof PyTuple) && isIntLike(a)) return repeatSeq(b, toBig(a));
      if (isStr(a) || Array.isArray(a) || a instanceof PyTuple) throw typeError(`can't multiply sequence by non-int of type '${typeName(b)}'`);
      throw unsupported(op, a, b);
    case 'Sub':
      if (a instanceof PySet && b instanceof PySet) return new PySet(a.items().filter((x) => !b.has(x)));
      throw unsupported(op, a, b);
    case 'BitOr':
      if (a instanceof PySet && b instanceof PySet) return new PySet([...a.items(), ...b.items()]);
      if (a instanceof PyDict && b instanceof PyDict) {
        const d = new PyDict();
        for (const [k, v] of a.entries()) d.set(k, v);
        for (const [k, v] of b.entries()) d.set(k, v);
        return d;
      }
      throw unsupported(op, a, b);
    case 'BitAnd':
      if (a instanceof PySet && b instanceof PySet) return new PySet(a.items().filter((x) => b.has(x)));
      throw unsupported(op, a, b);
    case 'Mod':
      if (isStr(a)) return percentFormat(strOf(a), b);
      throw unsupported(op, a, b);
    default:
      throw unsupported(op, a, b);
  }
}

/** printf-style formatting: 'a=%s b=%d' % (x, y), '%(k)s' % {'k': v}. */
function percentFormat(fmt: string, args: PyValue): string {
  const positional = args instanceof PyTuple ? args.items : [args];
  const mapping = args instanceof PyDict ? args : null;
  let idx = 0;
  const next = (): PyValue => {
    if (idx >= positional.length) throw typeError('not enough arguments for format string');
    return positional[idx++];
  };
  const out = fmt.replace(/%(?:\(([^)]*)\))?([-+ #0]*)(\*|\d+)?(?:\.(\*|\d+))?([diouxXeEfFgGcrsa%])/g, (_m, key, flags, width, prec, conv) => {
    if (conv === '%') return '%';
    const value =
      key !== undefined
        ? (() => {
            if (!mapping) throw typeError('format requires a mapping');
            const v = mapping.get(key);
            if (v === undefined) throw pyErr('KeyError', reprStr(key));
            return v;
          })()
        : next();
    const w = width === '*' ? Number(toBig(next() as bigint)) : width;
    const p = prec === '*' ? Number(toBig(next() as bigint)) : prec;
    let spec = '';
    if (flags.includes('-')) spec += '<';
    else if (conv !== 's' && conv !== 'r' && conv !== 'a') spec += '>';
    if (flags.includes('+')) spec += '+';
    else if (flags.includes(' ')) spec += ' ';
    if (flags.includes('#')) spec += '#';
    if (flags.includes('0') && !flags.includes('-')) spec = spec.replace(/^[<>]/, '') + '0';
    if (w !== undefined) spec += String(w);
    let v: PyValue = value;
    let type = conv;
    if (conv === 's') v = strValue(value);
    else if (conv === 'r' || conv === 'a') {
      v = reprValue(value);
      type = 's';
    } else if ('diu'.includes(conv)) {
      if (!isNumber(value)) throw typeError(`%${conv} format: a real number is required, not ${typeName(value)}`);
      v = isIntLike(value) ? toBig(value) : BigInt(Math.trunc(toNum(value)));
      type = 'd';
    } else if ('oxX'.includes(conv)) {
      if (!isIntLike(value)) throw typeError(`%${conv} format: an integer is required, not ${typeName(value)}`);
    } else if ('eEfFgG'.includes(conv)) {
      if (!isNumber(value)) throw typeError('must be real number, not ' + typeName(value));
      v = toNum(value);
      if (p === undefined) spec += '.6';
    } else if (conv === 'c') {
      type = 's';
      v = isIntLike(value) ? String.fromCodePoint(Number(toBig(value))) : strValue(value);
    }
    if (p !== undefined) spec += '.' + p;
    if (type !== 's') spec += type;
    return formatHook.format(v, spec);
  });
  if (idx < positional.length && !mapping && !(positional.length === 1 && positional[0] instanceof PyDict))
    throw typeError('not all arguments converted during string formatting');
  checkString(out.length);
  return out;
}

/** format() lives with the interpreter; set there to avoid an import cycle. */
export const formatHook: { format: (v: PyValue, spec: string) => string } = { format: (v) => strValue(v) };

export function unary(op: UnaryOpName, v: PyValue): PyValue {
  if (op === 'Not') return !truthy(v);
  if (isIntLike(v)) {
    const x = toBig(v);
    if (op === 'USub') return -x;
    if (op === 'UAdd') return x;
    return -x - 1n;
  }
  if (isFloatLike(v) && op !== 'Invert') {
    const x = toNum(v);
    return op === 'USub' ? -x : x;
  }
  const sym = op === 'USub' ? '-' : op === 'UAdd' ? '+' : '~';
  throw typeError(`bad operand type for unary ${sym}: '${typeName(v)}'`);
}

/* ------------------------------------------------------------------ sequences */

export function chars(s: string): string[] {
  return Array.from(s);
}

export function len(v: PyValue): number {
  if (isStr(v)) return pyLen(strOf(v));
  if (Array.isArray(v)) return v.length;
  if (v instanceof PyTuple) return v.items.length;
  if (v instanceof PyDict) return v.size;
  if (v instanceof PySet) return v.m.size;
  if (v instanceof PyRange) return Number(v.length);
  throw typeError(`object of type '${typeName(v)}' has no len()`);
}

/** Iterates a value the way a Python for loop does. */
export function* iterate(v: PyValue): Generator<PyValue> {
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) yield v[i];
    return;
  }
  if (isStr(v)) {
    yield* chars(strOf(v));
    return;
  }
  if (v instanceof PyTuple) {
    yield* v.items;
    return;
  }
  if (v instanceof PyDict) {
    yield* v.keys();
    return;
  }
  if (v instanceof PySet) {
    yield* v.items();
    return;
  }
  if (v instanceof PyRange) {
    const n = v.length;
    for (let i = 0n; i < n; i++) yield v.at(i);
    return;
  }
  if (v instanceof Placeholder) {
    // Placeholder.__getitem__ answers for 0, 1 and 2, then raises IndexError
    for (let i = 0; i < 3; i++) yield new Placeholder();
    return;
  }
  throw typeError(`'${typeName(v)}' object is not iterable`);
}

/** list(iterable), bounded. */
export function toList(v: PyValue): PyValue[] {
  if (v instanceof PyRange) checkItems(v.length);
  const out: PyValue[] = [];
  for (const x of iterate(v)) {
    out.push(x);
    if (out.length > 1_000_000) checkItems(out.length);
  }
  return out;
}

function indexOf(v: PyValue, what: string): bigint {
  if (isIntLike(v)) return toBig(v);
  throw typeError(`${what} indices must be integers or slices, not ${typeName(v)}`);
}

function normIndex(i: bigint, n: number, what: string): number {
  const j = i < 0n ? i + BigInt(n) : i;
  if (j < 0n || j >= BigInt(n)) throw pyErr('IndexError', `${what} index out of range`);
  return Number(j);
}

function sliceIndices(lower: PyValue, upper: PyValue, stepV: PyValue, n: number): number[] {
  const toIdx = (v: PyValue): bigint | null => {
    if (v === null) return null;
    if (isIntLike(v)) return toBig(v);
    throw typeError('slice indices must be integers or None or have an __index__ method');
  };
  const st = toIdx(stepV) ?? 1n;
  if (st === 0n) throw valueError('slice step cannot be zero');
  const N = BigInt(n);
  const clamp = (v: bigint | null, def: bigint, lo: bigint, hi: bigint) => {
    if (v === null) return def;
    let x = v < 0n ? v + N : v;
    if (x < lo) x = lo;
    if (x > hi) x = hi;
    return x;
  };
  const out: number[] = [];
  if (st > 0n) {
    const s = clamp(toIdx(lower), 0n, 0n, N);
    const e = clamp(toIdx(upper), N, 0n, N);
    for (let i = s; i < e; i += st) out.push(Number(i));
  } else {
    const s = clamp(toIdx(lower), N - 1n, -1n, N - 1n);
    const e = clamp(toIdx(upper), -1n, -1n, N - 1n);
    for (let i = s; i > e; i += st) out.push(Number(i));
  }
  return out;
}

export interface SliceValue {
  lower: PyValue;
  upper: PyValue;
  step: PyValue;
}

export function getitem(obj: PyValue, key: PyValue | SliceValue, isSlice: boolean): PyValue {
  if (isSlice) {
    const s = key as SliceValue;
    if (isStr(obj)) {
      const cs = chars(strOf(obj));
      return sliceIndices(s.lower, s.upper, s.step, cs.length)
        .map((i) => cs[i])
        .join('');
    }
    if (Array.isArray(obj)) return sliceIndices(s.lower, s.upper, s.step, obj.length).map((i) => obj[i]);
    if (obj instanceof PyTuple) return new PyTuple(sliceIndices(s.lower, s.upper, s.step, obj.items.length).map((i) => obj.items[i]));
    if (obj instanceof Placeholder) throw typeError("'>' not supported between instances of 'slice' and 'int'");
    throw typeError(`'${typeName(obj)}' object is not subscriptable`);
  }
  const k = key as PyValue;
  if (obj instanceof PyDict) {
    const v = obj.get(k);
    if (v === undefined) throw pyErr('KeyError', reprValue(k));
    return v;
  }
  if (isStr(obj)) {
    const cs = chars(strOf(obj));
    const i = indexOf(k, 'string');
    const j = i < 0n ? i + BigInt(cs.length) : i;
    if (j < 0n || j >= BigInt(cs.length)) throw pyErr('IndexError', 'string index out of range');
    return cs[Number(j)];
  }
  if (Array.isArray(obj)) return obj[normIndex(indexOf(k, 'list'), obj.length, 'list')];
  if (obj instanceof PyTuple) return obj.items[normIndex(indexOf(k, 'tuple'), obj.items.length, 'tuple')];
  if (obj instanceof PyRange) {
    const n = obj.length;
    const i = indexOf(k, 'range');
    const j = i < 0n ? i + n : i;
    if (j < 0n || j >= n) throw pyErr('IndexError', 'range object index out of range');
    return obj.at(j);
  }
  if (obj instanceof Placeholder) {
    if (isNumber(k)) {
      if (toNum(k) > 2) throw pyErr('IndexError', '');
      return new Placeholder();
    }
    throw typeError(`'>' not supported between instances of '${typeName(k)}' and 'int'`);
  }
  if (obj === null) throw typeError("'NoneType' object is not subscriptable");
  throw typeError(`'${typeName(obj)}' object is not subscriptable`);
}

export function setitem(obj: PyValue, key: PyValue, value: PyValue): void {
  if (obj instanceof PyDict) {
    obj.set(key, value);
    checkItems(obj.size);
    return;
  }
  if (Array.isArray(obj)) {
    obj[normIndex(indexOf(key, 'list'), obj.length, 'list assignment')] = value;
    return;
  }
  throw typeError(`'${typeName(obj)}' object does not support item assignment`);
}

/* ------------------------------------------------------------------ conversions */

const INT_RE = /^[+-]?(?:\d(?:_?\d)*)$/;

/** Python int(x). */
export function pyInt(x: PyValue, base?: PyValue): bigint {
  if (base !== undefined && base !== null) {
    if (!isStr(x)) throw typeError("int() can't convert non-string with explicit base");
    const b = Number(toBig(base as bigint));
    return parseIntBase(strOf(x), b);
  }
  if (isIntLike(x)) return toBig(x);
  if (isFloatLike(x)) {
    const n = toNum(x);
    if (Number.isNaN(n)) throw valueError('cannot convert float NaN to integer');
    if (!Number.isFinite(n)) throw pyErr('OverflowError', 'cannot convert float infinity to integer');
    return BigInt(Math.trunc(n));
  }
  if (isStr(x)) return parseIntBase(strOf(x), 10);
  throw typeError(`int() argument must be a string, a bytes-like object or a real number, not '${typeName(x)}'`);
}

function parseIntBase(raw: string, base: number): bigint {
  const s = raw.trim();
  const bad = () => valueError(`invalid literal for int() with base ${base}: ${reprStr(raw)}`);
  if (base === 10) {
    if (!INT_RE.test(s)) throw bad();
    const v = BigInt(s.replace(/_/g, ''));
    return checkInt(v);
  }
  let t = s;
  let neg = false;
  if (t[0] === '+' || t[0] === '-') {
    neg = t[0] === '-';
    t = t.slice(1);
  }
  const prefixes: Record<number, RegExp> = { 16: /^0[xX]/, 8: /^0[oO]/, 2: /^0[bB]/ };
  if (base === 0) {
    if (/^0[xX]/.test(t)) base = 16;
    else if (/^0[oO]/.test(t)) base = 8;
    else if (/^0[bB]/.test(t)) base = 2;
    else base = 10;
  }
  if (prefixes[base]?.test(t)) t = t.slice(2).replace(/^_/, '');
  if (base < 2 || base > 36) throw valueError('int() base must be >= 2 and <= 36, or 0');
  const digits = '0123456789abcdefghijklmnopqrstuvwxyz'.slice(0, base);
  if (!t || !new RegExp(`^[${digits}](?:_?[${digits}])*$`, 'i').test(t)) throw bad();
  let v = 0n;
  for (const c of t.replace(/_/g, '').toLowerCase()) v = v * BigInt(base) + BigInt(digits.indexOf(c));
  return checkInt(neg ? -v : v);
}

const FLOAT_RE = /^[+-]?(?:(?:\d(?:_?\d)*(?:\.(?:\d(?:_?\d)*)?)?|\.\d(?:_?\d)*)(?:[eE][+-]?\d(?:_?\d)*)?|inf(?:inity)?|nan)$/i;

export function parseFloatStr(raw: string): number | null {
  const s = raw.trim();
  if (!FLOAT_RE.test(s)) return null;
  const t = s.replace(/_/g, '').toLowerCase();
  if (t.endsWith('inf') || t.endsWith('infinity')) return t[0] === '-' ? -Infinity : Infinity;
  if (t.endsWith('nan')) return NaN;
  return Number(t);
}

/** Python float(x). */
export function pyFloat(x: PyValue): number {
  if (isNumber(x)) return toNum(x);
  if (isStr(x)) {
    const v = parseFloatStr(strOf(x));
    if (v === null) throw valueError(`could not convert string to float: ${reprStr(strOf(x))}`);
    return v;
  }
  throw typeError(`float() argument must be a string or a real number, not '${typeName(x)}'`);
}

/* ------------------------------------------------------------------ calls */

export interface ParamSpec {
  /** Ordered parameter names. */
  names: string[];
  /** Defaults for optional parameters. */
  defaults?: Record<string, PyValue>;
  /** Accept and ignore unknown keyword arguments. */
  extraKw?: boolean;
  /** Collect extra positional arguments instead of failing. */
  varArgs?: boolean;
}

/** Binds call arguments to parameters with Python's rules and messages. */
export function bindArgs(fname: string, spec: ParamSpec, a: CallArgs): Record<string, PyValue> {
  const out: Record<string, PyValue> = {};
  const defaults = spec.defaults ?? {};
  const names = spec.names;
  if (a.args.length > names.length && !spec.varArgs) {
    const required = names.filter((n) => !(n in defaults)).length;
    const takes = required === names.length ? `${names.length}` : `from ${required} to ${names.length}`;
    const plural = names.length === 1 && required === names.length ? 'argument' : 'arguments';
    throw typeError(`${fname}() takes ${takes} positional ${plural} but ${a.args.length} ${a.args.length === 1 ? 'was' : 'were'} given`);
  }
  names.forEach((n, i) => {
    if (i < a.args.length) out[n] = a.args[i];
  });
  for (const [k, v] of a.kwargs) {
    if (!names.includes(k)) {
      if (spec.extraKw) continue;
      throw typeError(`${fname}() got an unexpected keyword argument '${k}'`);
    }
    if (k in out) throw typeError(`${fname}() got multiple values for argument '${k}'`);
    out[k] = v;
  }
  const missing = names.filter((n) => !(n in out) && !(n in defaults));
  if (missing.length) {
    const list = missing.map((m) => `'${m}'`);
    const joined = list.length === 1 ? list[0] : list.slice(0, -1).join(', ') + ' and ' + list[list.length - 1];
    throw typeError(`${fname}() missing ${missing.length} required positional argument${missing.length > 1 ? 's' : ''}: ${joined}`);
  }
  for (const n of names) if (!(n in out)) out[n] = defaults[n];
  return out;
}

export function callValue(f: PyValue, a: CallArgs): PyValue {
  if (f instanceof PyFunc) return f.fn(a);
  if (f instanceof Placeholder)
    throw Object.assign(new PyError('SQLTemplateException', `'${f.name}' is not a valid function, line ${f.line}`), {
      documentation: '/cli/advanced-templates.html',
    });
  throw typeError(`'${typeName(f)}' object is not callable`);
}
