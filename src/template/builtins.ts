/**
 * The Python builtins and methods available to templates. Control blocks ({% %}) can use the
 * builtins below; {{ }} expressions only reach len/list/min/max/int/float and the methods
 * split/get/join/replace (enforced by the whitelist at parse time).
 */
import { excIsSubclass, PY_EXCEPTIONS, pyErr, typeError, valueError } from './errors.js';
import { checkItems, checkString, step } from './limits.js';
import { binop, bindArgs, callValue, chars, iterate, len, pyFloat, pyInt, toList } from './ops.js';
import {
  compare,
  isIntLike,
  isNumber,
  isStr,
  Placeholder,
  PyDict,
  PyExcClass,
  PyFunc,
  PyRange,
  PySet,
  PyTuple,
  pyEq,
  reprValue,
  strOf,
  strValue,
  toBig,
  toNum,
  truthy,
  typeName,
  type CallArgs,
  type PyValue,
} from './values.js';

const fn = (name: string, f: (a: CallArgs) => PyValue, kind: 'builtin' | 'class' = 'builtin') => new PyFunc(name, f, kind);

function noKw(name: string, a: CallArgs): void {
  if (a.kwargs.length) throw typeError(`${name}() takes no keyword arguments`);
}

function oneArg(name: string, a: CallArgs): PyValue {
  noKw(name, a);
  if (a.args.length !== 1) throw typeError(`${name}() takes exactly one argument (${a.args.length} given)`);
  return a.args[0];
}

function sortValues(xs: PyValue[], key: PyValue, reverse: boolean): PyValue[] {
  const keyed = xs.map((x) => ({ x, k: key === null || key === undefined ? x : callValue(key, { args: [x], kwargs: [] }) }));
  keyed.sort((p, q) => (compare('Lt', p.k, q.k) ? -1 : compare('Lt', q.k, p.k) ? 1 : 0));
  if (reverse) {
    // Python keeps stability with reverse=True: reverse, stable sort, reverse
    keyed.reverse();
    keyed.sort((p, q) => (compare('Lt', q.k, p.k) ? -1 : compare('Lt', p.k, q.k) ? 1 : 0));
  }
  return keyed.map((p) => p.x);
}

function minmax(name: 'min' | 'max', a: CallArgs): PyValue {
  let key: PyValue = null;
  let dflt: PyValue | undefined;
  for (const [k, v] of a.kwargs) {
    if (k === 'key') key = v;
    else if (k === 'default') dflt = v;
    else throw typeError(`'${k}' is an invalid keyword argument for ${name}()`);
  }
  let items: PyValue[];
  if (a.args.length === 0) throw typeError(`${name} expected at least 1 argument, got 0`);
  if (a.args.length === 1) items = toList(a.args[0]);
  else {
    if (dflt !== undefined) throw typeError(`Cannot specify a default for ${name}() with multiple positional arguments`);
    items = a.args;
  }
  if (!items.length) {
    if (dflt !== undefined) return dflt;
    throw valueError(`${name}() arg is an empty sequence`);
  }
  let best = items[0];
  let bestKey = key ? callValue(key, { args: [best], kwargs: [] }) : best;
  for (const x of items.slice(1)) {
    const k = key ? callValue(key, { args: [x], kwargs: [] }) : x;
    if (name === 'min' ? compare('Lt', k, bestKey) : compare('Gt', k, bestKey)) {
      best = x;
      bestKey = k;
    }
  }
  return best;
}

function pyRound(x: PyValue, nd: PyValue): PyValue {
  if (isIntLike(x)) {
    if (nd === null) return toBig(x);
    const n = Number(toBig(nd as bigint));
    if (n >= 0) return toBig(x);
    const p = 10n ** BigInt(-n);
    const v = toBig(x);
    const q = v / p;
    const r = v - q * p;
    const half = p / 2n;
    let res = q;
    if (r > half || (r === half && q % 2n !== 0n)) res = q + 1n;
    if (-r > half || (-r === half && q % 2n !== 0n)) res = q - 1n;
    return res * p;
  }
  const v = toNum(x);
  if (nd === null) {
    if (!Number.isFinite(v))
      throw pyErr(
        Number.isNaN(v) ? 'ValueError' : 'OverflowError',
        Number.isNaN(v) ? 'cannot convert float NaN to integer' : 'cannot convert float infinity to integer',
      );
    const f = Math.floor(v);
    const diff = v - f;
    if (diff > 0.5) return BigInt(f + 1);
    if (diff < 0.5) return BigInt(f);
    return BigInt(f % 2 === 0 ? f : f + 1);
  }
  const n = Number(toBig(nd as bigint));
  if (!Number.isFinite(v)) return v;
  const m = 10 ** n;
  const y = v * m;
  const f = Math.floor(y);
  const diff = y - f;
  const r = diff > 0.5 ? f + 1 : diff < 0.5 ? f : f % 2 === 0 ? f : f + 1;
  return Number((r / m).toPrecision(15));
}

function makeRange(a: CallArgs): PyRange {
  noKw('range', a);
  const ints = a.args.map((v) => {
    if (!isIntLike(v)) throw typeError(`'${typeName(v)}' object cannot be interpreted as an integer`);
    return toBig(v);
  });
  if (ints.length === 1) return new PyRange(0n, ints[0], 1n);
  if (ints.length === 2) return new PyRange(ints[0], ints[1], 1n);
  if (ints.length === 3) {
    if (ints[2] === 0n) throw valueError('range() arg 3 must not be zero');
    return new PyRange(ints[0], ints[1], ints[2]);
  }
  throw typeError(`range expected at most 3 arguments, got ${ints.length}`);
}

function dictFrom(a: CallArgs): PyDict {
  const d = new PyDict();
  if (a.args.length > 1) throw typeError(`dict expected at most 1 argument, got ${a.args.length}`);
  if (a.args.length === 1) {
    const src = a.args[0];
    if (src instanceof PyDict) for (const [k, v] of src.entries()) d.set(k, v);
    else
      for (const item of iterate(src)) {
        step();
        const pair = toList(item);
        if (pair.length !== 2) throw valueError(`dictionary update sequence element has length ${pair.length}; 2 is required`);
        d.set(pair[0], pair[1]);
      }
  }
  for (const [k, v] of a.kwargs) d.set(k, v);
  return d;
}

function excClasses(): Record<string, PyValue> {
  const out: Record<string, PyValue> = {};
  for (const n of PY_EXCEPTIONS) out[n] = new PyExcClass(n);
  return out;
}

/** Python builtins usable from templates (a safe subset; everything else raises NameError). */
export const BUILTINS: Record<string, PyValue> = {
  ...excClasses(),
  len: fn('len', (a) => BigInt(len(oneArg('len', a)))),
  list: fn(
    'list',
    (a) => {
      noKw('list', a);
      return a.args.length ? toList(a.args[0]) : [];
    },
    'class',
  ),
  tuple: fn('tuple', (a) => new PyTuple(a.args.length ? toList(a.args[0]) : []), 'class'),
  set: fn('set', (a) => new PySet(a.args.length ? toList(a.args[0]) : []), 'class'),
  frozenset: fn('frozenset', (a) => new PySet(a.args.length ? toList(a.args[0]) : []), 'class'),
  dict: fn('dict', dictFrom, 'class'),
  str: fn(
    'str',
    (a) => {
      noKw('str', a);
      return a.args.length ? strValue(a.args[0]) : '';
    },
    'class',
  ),
  repr: fn('repr', (a) => reprValue(oneArg('repr', a))),
  ascii: fn('ascii', (a) => reprValue(oneArg('ascii', a)).replace(/[^\x00-\x7f]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'))),
  int: fn(
    'int',
    (a) => {
      const b = bindArgs('int', { names: ['x', 'base'], defaults: { x: 0n, base: null } }, a);
      return pyInt(b.x, b.base === null ? undefined : b.base);
    },
    'class',
  ),
  float: fn(
    'float',
    (a) => {
      noKw('float', a);
      return a.args.length ? pyFloat(a.args[0]) : 0;
    },
    'class',
  ),
  abs: fn('abs', (a) => {
    const v = oneArg('abs', a);
    if (isIntLike(v)) {
      const b = toBig(v);
      return b < 0n ? -b : b;
    }
    if (isNumber(v)) return Math.abs(toNum(v));
    throw typeError(`bad operand type for abs(): '${typeName(v)}'`);
  }),
  round: fn('round', (a) => {
    const b = bindArgs('round', { names: ['number', 'ndigits'], defaults: { ndigits: null } }, a);
    if (!isNumber(b.number)) throw typeError(`type ${typeName(b.number)} doesn't define __round__ method`);
    return pyRound(b.number, b.ndigits);
  }),
  min: fn('min', (a) => minmax('min', a)),
  max: fn('max', (a) => minmax('max', a)),
  sum: fn('sum', (a) => {
    const b = bindArgs('sum', { names: ['iterable', 'start'], defaults: { start: 0n } }, a);
    if (isStr(b.start)) throw typeError("sum() can't sum strings [use ''.join(seq) instead]");
    let acc: PyValue = b.start;
    for (const x of iterate(b.iterable)) {
      step();
      if (isStr(x) && isNumber(acc)) throw typeError(`unsupported operand type(s) for +: '${typeName(acc)}' and 'str'`);
      acc = addValues(acc, x);
    }
    return acc;
  }),
  any: fn('any', (a) => {
    for (const x of iterate(oneArg('any', a))) {
      step();
      if (truthy(x)) return true;
    }
    return false;
  }),
  all: fn('all', (a) => {
    for (const x of iterate(oneArg('all', a))) {
      step();
      if (!truthy(x)) return false;
    }
    return true;
  }),
  sorted: fn('sorted', (a) => {
    const b = bindArgs('sorted', { names: ['iterable', 'key', 'reverse'], defaults: { key: null, reverse: false } }, a);
    return sortValues(toList(b.iterable), b.key, truthy(b.reverse));
  }),
  reversed: fn(
    'reversed',
    (a) => {
      const v = oneArg('reversed', a);
      if (v instanceof PyDict || v instanceof PySet || v === null || isNumber(v)) throw typeError(`'${typeName(v)}' object is not reversible`);
      return toList(v).reverse();
    },
    'class',
  ),
  range: fn('range', makeRange, 'class'),
  enumerate: fn(
    'enumerate',
    (a) => {
      const b = bindArgs('enumerate', { names: ['iterable', 'start'], defaults: { start: 0n } }, a);
      let i = isIntLike(b.start) ? toBig(b.start) : 0n;
      const out: PyValue[] = [];
      for (const x of iterate(b.iterable)) {
        step();
        out.push(new PyTuple([i++, x]));
      }
      return out;
    },
    'class',
  ),
  zip: fn(
    'zip',
    (a) => {
      const lists = a.args.map(toList);
      const n = lists.length ? Math.min(...lists.map((l) => l.length)) : 0;
      const out: PyValue[] = [];
      for (let i = 0; i < n; i++) {
        step();
        out.push(new PyTuple(lists.map((l) => l[i])));
      }
      return out;
    },
    'class',
  ),
  map: fn(
    'map',
    (a) => {
      if (a.args.length < 2) throw typeError('map() must have at least two arguments.');
      const [f, ...its] = a.args;
      const lists = its.map(toList);
      const n = Math.min(...lists.map((l) => l.length));
      const out: PyValue[] = [];
      for (let i = 0; i < n; i++) {
        step();
        out.push(callValue(f, { args: lists.map((l) => l[i]), kwargs: [] }));
      }
      return out;
    },
    'class',
  ),
  filter: fn(
    'filter',
    (a) => {
      noKw('filter', a);
      if (a.args.length !== 2) throw typeError(`filter expected 2 arguments, got ${a.args.length}`);
      const [f, it] = a.args;
      const out: PyValue[] = [];
      for (const x of iterate(it)) {
        step();
        if (truthy(f === null ? x : callValue(f, { args: [x], kwargs: [] }))) out.push(x);
      }
      return out;
    },
    'class',
  ),
  chr: fn('chr', (a) => {
    const v = oneArg('chr', a);
    if (!isIntLike(v)) throw typeError(`'${typeName(v)}' object cannot be interpreted as an integer`);
    const n = toBig(v);
    if (n < 0n || n > 0x10ffffn) throw valueError('chr() arg not in range(0x110000)');
    return String.fromCodePoint(Number(n));
  }),
  ord: fn('ord', (a) => {
    const v = oneArg('ord', a);
    if (!isStr(v)) throw typeError(`ord() expected string of length 1, but ${typeName(v)} found`);
    const cs = chars(strOf(v));
    if (cs.length !== 1) throw typeError(`ord() expected a character, but string of length ${cs.length} found`);
    return BigInt(cs[0].codePointAt(0)!);
  }),
  hex: fn('hex', (a) => fmtBase(oneArg('hex', a), 16, '0x')),
  oct: fn('oct', (a) => fmtBase(oneArg('oct', a), 8, '0o')),
  bin: fn('bin', (a) => fmtBase(oneArg('bin', a), 2, '0b')),
  divmod: fn('divmod', (a) => {
    noKw('divmod', a);
    const [x, y] = a.args;
    return new PyTuple([binop('FloorDiv', x, y), binop('Mod', x, y)]);
  }),
  pow: fn('pow', (a) => {
    noKw('pow', a);
    if (a.args.length !== 2) throw typeError(`pow expected 2 arguments, got ${a.args.length}`);
    return binop('Pow', a.args[0], a.args[1]);
  }),
  callable: fn('callable', (a) => oneArg('callable', a) instanceof PyFunc || oneArg('callable', a) instanceof PyExcClass),
  isinstance: fn('isinstance', (a) => {
    noKw('isinstance', a);
    const [v, cls] = a.args;
    const classes = cls instanceof PyTuple ? cls.items : [cls];
    return classes.some((c) => {
      if (c instanceof PyExcClass) return false;
      if (!(c instanceof PyFunc)) throw typeError('isinstance() arg 2 must be a type, a tuple of types, or a union');
      const t = typeName(v);
      if (c.name === 'int') return t === 'int' || t === 'bool' || t === 'Integer';
      if (c.name === 'float') return t === 'float' || t === 'Float';
      if (c.name === 'str') return t === 'str' || t === 'Expression';
      return c.name === t;
    });
  }),
};

function addValues(a: PyValue, b: PyValue): PyValue {
  return binop('Add', a, b);
}

function fmtBase(v: PyValue, base: number, prefix: string): string {
  if (!isIntLike(v)) throw typeError(`'${typeName(v)}' object cannot be interpreted as an integer`);
  const n = toBig(v);
  return (n < 0n ? '-' : '') + prefix + (n < 0n ? -n : n).toString(base);
}

/* ------------------------------------------------------------------ methods */

function strSplit(s: string, sep: PyValue, maxsplit: bigint): string[] {
  const max = maxsplit < 0n ? Infinity : Number(maxsplit);
  if (sep === null) {
    const out: string[] = [];
    let rest = s.replace(/^\s+/, '');
    while (rest.length) {
      if (out.length >= max) {
        out.push(rest);
        return out;
      }
      const m = /\s+/.exec(rest);
      if (!m) {
        out.push(rest);
        break;
      }
      out.push(rest.slice(0, m.index));
      rest = rest.slice(m.index + m[0].length);
    }
    return out;
  }
  return splitOn(s, sep, max, false);
}

/** `s` split on the separator `sep` (a non-empty str) at most `max` times, counted from the left or the right. */
function splitOn(s: string, sep: PyValue, max: number, fromRight: boolean): string[] {
  if (!isStr(sep)) throw typeError(`must be str or None, not ${typeName(sep)}`);
  const d = strOf(sep);
  if (!d) throw valueError('empty separator');
  const parts = s.split(d);
  if (parts.length - 1 <= max) return parts;
  const at = fromRight ? parts.length - max : max;
  return fromRight ? [parts.slice(0, at).join(d), ...parts.slice(at)] : [...parts.slice(0, at), parts.slice(at).join(d)];
}

function strRsplit(s: string, sep: PyValue, maxsplit: bigint): string[] {
  if (maxsplit < 0n) return strSplit(s, sep, maxsplit);
  const max = Number(maxsplit);
  if (sep === null) {
    const out: string[] = [];
    let rest = s.replace(/\s+$/, '');
    while (rest.length) {
      if (out.length >= max) {
        out.unshift(rest);
        return out;
      }
      const m = /\s+(?=\S*$)/.exec(rest);
      if (!m) {
        out.unshift(rest);
        break;
      }
      out.unshift(rest.slice(m.index + m[0].length));
      rest = rest.slice(0, m.index);
    }
    return out;
  }
  return splitOn(s, sep, max, true);
}

function stripChars(s: string, chars_: PyValue, left: boolean, right: boolean): string {
  if (chars_ === null || chars_ === undefined) {
    let r = s;
    if (left) r = r.replace(/^\s+/, '');
    if (right) r = r.replace(/\s+$/, '');
    return r;
  }
  if (!isStr(chars_)) throw typeError(`strip arg must be None or str`);
  const set = new Set(chars(strOf(chars_)));
  const cs = chars(s);
  let i = 0;
  let j = cs.length;
  if (left) while (i < j && set.has(cs[i])) i++;
  if (right) while (j > i && set.has(cs[j - 1])) j--;
  return cs.slice(i, j).join('');
}

function needStr(v: PyValue, what: string): string {
  if (!isStr(v)) throw typeError(`${what} must be str, not ${typeName(v)}`);
  return strOf(v);
}

function pad(s: string, width: PyValue, fill: PyValue, mode: 'l' | 'r' | 'c'): string {
  const w = Number(isIntLike(width) ? toBig(width) : 0n);
  checkString(w);
  const f = fill === undefined || fill === null ? ' ' : needStr(fill, 'fill character');
  const n = chars(s).length;
  if (w <= n) return s;
  const total = w - n;
  if (mode === 'l') return s + f.repeat(total);
  if (mode === 'r') return f.repeat(total) + s;
  const left = Math.floor(total / 2) + (total & n & 1);
  return f.repeat(left) + s + f.repeat(total - left);
}

type Method = (self: PyValue, a: CallArgs) => PyValue;

const STR_METHODS: Record<string, Method> = {
  split: (s, a) => {
    const b = bindArgs('split', { names: ['sep', 'maxsplit'], defaults: { sep: null, maxsplit: -1n } }, a);
    const out = strSplit(strOf(s as string), b.sep, toBig(b.maxsplit as bigint));
    checkItems(out.length);
    return out;
  },
  rsplit: (s, a) => {
    const b = bindArgs('rsplit', { names: ['sep', 'maxsplit'], defaults: { sep: null, maxsplit: -1n } }, a);
    return strRsplit(strOf(s as string), b.sep, toBig(b.maxsplit as bigint));
  },
  join: (s, a) => {
    const it = oneArg('join', a);
    const parts: string[] = [];
    let total = 0;
    let i = 0;
    for (const x of iterate(it)) {
      step();
      if (!isStr(x)) throw typeError(`sequence item ${i}: expected str instance, ${typeName(x)} found`);
      const p = strOf(x);
      total += p.length;
      checkString(total);
      parts.push(p);
      i++;
    }
    const out = parts.join(strOf(s as string));
    checkString(out.length);
    return out;
  },
  replace: (s, a) => {
    noKw('replace', a);
    if (a.args.length < 2 || a.args.length > 3) throw typeError(`replace expected at least 2 arguments, got ${a.args.length}`);
    const old = needStr(a.args[0], 'replace() argument 1');
    const nw = needStr(a.args[1], 'replace() argument 2');
    const count = a.args.length === 3 ? Number(toBig(a.args[2] as bigint)) : -1;
    const src = strOf(s as string);
    // size of the result before building it
    let occurrences = 0;
    if (old === '') occurrences = chars(src).length + 1;
    else for (let i = src.indexOf(old); i !== -1 && (count < 0 || occurrences < count); i = src.indexOf(old, i + old.length)) occurrences++;
    if (count >= 0) occurrences = Math.min(occurrences, count);
    checkString(src.length + occurrences * (nw.length - old.length));
    let out: string;
    if (old === '') {
      const cs = chars(src);
      const limit = count < 0 ? cs.length + 1 : count;
      out = '';
      let used = 0;
      for (let i = 0; i <= cs.length; i++) {
        if (used < limit) {
          out += nw;
          used++;
        }
        if (i < cs.length) out += cs[i];
      }
    } else if (count < 0) out = src.split(old).join(nw);
    else {
      const parts = src.split(old);
      out = parts.slice(0, count + 1).join(nw) + (parts.length > count + 1 ? old + parts.slice(count + 1).join(old) : '');
    }
    checkString(out.length);
    return out;
  },
  strip: (s, a) => stripChars(strOf(s as string), a.args[0] ?? null, true, true),
  lstrip: (s, a) => stripChars(strOf(s as string), a.args[0] ?? null, true, false),
  rstrip: (s, a) => stripChars(strOf(s as string), a.args[0] ?? null, false, true),
  lower: (s) => strOf(s as string).toLowerCase(),
  upper: (s) => strOf(s as string).toUpperCase(),
  casefold: (s) => strOf(s as string).toLowerCase(),
  swapcase: (s) =>
    chars(strOf(s as string))
      .map((c) => (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase()))
      .join(''),
  capitalize: (s) => {
    const t = strOf(s as string);
    return t ? chars(t)[0].toUpperCase() + chars(t).slice(1).join('').toLowerCase() : t;
  },
  title: (s) =>
    strOf(s as string)
      .toLowerCase()
      .replace(/(^|[^\p{L}\p{N}'])(\p{L})/gu, (_m, p, c) => p + c.toUpperCase()),
  startswith: (s, a) => {
    const p = a.args[0];
    const t = strOf(s as string);
    const opts = p instanceof PyTuple ? p.items : [p];
    return opts.some((o) => t.startsWith(needStr(o, 'startswith first arg')));
  },
  endswith: (s, a) => {
    const p = a.args[0];
    const t = strOf(s as string);
    const opts = p instanceof PyTuple ? p.items : [p];
    return opts.some((o) => t.endsWith(needStr(o, 'endswith first arg')));
  },
  find: (s, a) =>
    BigInt(
      chars(strOf(s as string))
        .join('')
        .indexOf(needStr(a.args[0], 'must be str')),
    ),
  rfind: (s, a) => BigInt(strOf(s as string).lastIndexOf(needStr(a.args[0], 'must be str'))),
  index: (s, a) => {
    const i = strOf(s as string).indexOf(needStr(a.args[0], 'must be str'));
    if (i < 0) throw valueError('substring not found');
    return BigInt(i);
  },
  rindex: (s, a) => {
    const i = strOf(s as string).lastIndexOf(needStr(a.args[0], 'must be str'));
    if (i < 0) throw valueError('substring not found');
    return BigInt(i);
  },
  count: (s, a) => {
    const sub = needStr(a.args[0], 'must be str');
    const t = strOf(s as string);
    return BigInt(sub === '' ? chars(t).length + 1 : t.split(sub).length - 1);
  },
  isdigit: (s) => /^\p{Nd}+$/u.test(strOf(s as string)),
  isdecimal: (s) => /^\p{Nd}+$/u.test(strOf(s as string)),
  isnumeric: (s) => /^\p{N}+$/u.test(strOf(s as string)),
  isalpha: (s) => /^\p{L}+$/u.test(strOf(s as string)),
  isalnum: (s) => /^[\p{L}\p{N}]+$/u.test(strOf(s as string)),
  isspace: (s) => /^\s+$/.test(strOf(s as string)),
  islower: (s) => /\p{Ll}/u.test(strOf(s as string)) && !/\p{Lu}/u.test(strOf(s as string)),
  isupper: (s) => /\p{Lu}/u.test(strOf(s as string)) && !/\p{Ll}/u.test(strOf(s as string)),
  zfill: (s, a) => {
    const t = strOf(s as string);
    const w = Number(toBig(a.args[0] as bigint));
    checkString(w);
    const sign = t[0] === '+' || t[0] === '-' ? t[0] : '';
    const body = sign ? t.slice(1) : t;
    return w <= t.length ? t : sign + '0'.repeat(w - t.length) + body;
  },
  ljust: (s, a) => pad(strOf(s as string), a.args[0], a.args[1], 'l'),
  rjust: (s, a) => pad(strOf(s as string), a.args[0], a.args[1], 'r'),
  center: (s, a) => pad(strOf(s as string), a.args[0], a.args[1], 'c'),
  splitlines: (s) => {
    const t = strOf(s as string);
    if (!t) return [];
    const parts = t.split(/\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]/);
    if (parts[parts.length - 1] === '') parts.pop();
    return parts;
  },
  partition: (s, a) => {
    const t = strOf(s as string);
    const sep = needStr(a.args[0], 'must be str');
    if (!sep) throw valueError('empty separator');
    const i = t.indexOf(sep);
    return i < 0 ? new PyTuple([t, '', '']) : new PyTuple([t.slice(0, i), sep, t.slice(i + sep.length)]);
  },
  rpartition: (s, a) => {
    const t = strOf(s as string);
    const sep = needStr(a.args[0], 'must be str');
    if (!sep) throw valueError('empty separator');
    const i = t.lastIndexOf(sep);
    return i < 0 ? new PyTuple(['', '', t]) : new PyTuple([t.slice(0, i), sep, t.slice(i + sep.length)]);
  },
  removeprefix: (s, a) => {
    const t = strOf(s as string);
    const p = needStr(a.args[0], 'must be str');
    return p && t.startsWith(p) ? t.slice(p.length) : t;
  },
  removesuffix: (s, a) => {
    const t = strOf(s as string);
    const p = needStr(a.args[0], 'must be str');
    return p && t.endsWith(p) ? t.slice(0, -p.length) : t;
  },
};

const LIST_METHODS: Record<string, Method> = {
  append: (l, a) => {
    (l as PyValue[]).push(oneArg('append', a));
    checkItems((l as PyValue[]).length);
    return null;
  },
  extend: (l, a) => {
    const items = toList(oneArg('extend', a));
    (l as PyValue[]).push(...items);
    checkItems((l as PyValue[]).length);
    return null;
  },
  insert: (l, a) => {
    const arr = l as PyValue[];
    let i = Number(toBig(a.args[0] as bigint));
    if (i < 0) i = Math.max(0, arr.length + i);
    arr.splice(Math.min(i, arr.length), 0, a.args[1]);
    checkItems(arr.length);
    return null;
  },
  pop: (l, a) => {
    const arr = l as PyValue[];
    if (!arr.length) throw pyErr('IndexError', 'pop from empty list');
    let i = a.args.length ? Number(toBig(a.args[0] as bigint)) : arr.length - 1;
    if (i < 0) i += arr.length;
    if (i < 0 || i >= arr.length) throw pyErr('IndexError', 'pop index out of range');
    return arr.splice(i, 1)[0];
  },
  remove: (l, a) => {
    const arr = l as PyValue[];
    const i = arr.findIndex((x) => pyEq(x, a.args[0]));
    if (i < 0) throw valueError('list.remove(x): x not in list');
    arr.splice(i, 1);
    return null;
  },
  index: (l, a) => {
    const i = (l as PyValue[]).findIndex((x) => pyEq(x, a.args[0]));
    if (i < 0) throw valueError(`${reprValue(a.args[0])} is not in list`);
    return BigInt(i);
  },
  count: (l, a) => BigInt((l as PyValue[]).filter((x) => pyEq(x, a.args[0])).length),
  reverse: (l) => {
    (l as PyValue[]).reverse();
    return null;
  },
  sort: (l, a) => {
    const b = bindArgs('sort', { names: [], defaults: {} }, { args: a.args, kwargs: [] });
    void b;
    let key: PyValue = null;
    let reverse = false;
    for (const [k, v] of a.kwargs) {
      if (k === 'key') key = v;
      else if (k === 'reverse') reverse = truthy(v);
      else throw typeError(`'${k}' is an invalid keyword argument for sort()`);
    }
    const arr = l as PyValue[];
    const sorted = sortValues(arr, key, reverse);
    arr.splice(0, arr.length, ...sorted);
    return null;
  },
  copy: (l) => [...(l as PyValue[])],
  clear: (l) => {
    (l as PyValue[]).length = 0;
    return null;
  },
};

const TUPLE_METHODS: Record<string, Method> = {
  index: (t, a) => {
    const i = (t as PyTuple).items.findIndex((x) => pyEq(x, a.args[0]));
    if (i < 0) throw valueError('tuple.index(x): x not in tuple');
    return BigInt(i);
  },
  count: (t, a) => BigInt((t as PyTuple).items.filter((x) => pyEq(x, a.args[0])).length),
};

const DICT_METHODS: Record<string, Method> = {
  get: (d, a) => {
    noKw('get', a);
    if (a.args.length < 1 || a.args.length > 2) throw typeError(`get expected at most 2 arguments, got ${a.args.length}`);
    const v = (d as PyDict).get(a.args[0]);
    return v === undefined ? (a.args[1] ?? null) : v;
  },
  keys: (d) => (d as PyDict).keys(),
  values: (d) => (d as PyDict).values(),
  items: (d) => (d as PyDict).entries().map(([k, v]) => new PyTuple([k, v])),
  pop: (d, a) => {
    const dict = d as PyDict;
    const v = dict.get(a.args[0]);
    if (v === undefined) {
      if (a.args.length > 1) return a.args[1];
      throw pyErr('KeyError', reprValue(a.args[0]));
    }
    dict.delete(a.args[0]);
    return v;
  },
  setdefault: (d, a) => {
    const dict = d as PyDict;
    const v = dict.get(a.args[0]);
    if (v !== undefined) return v;
    const dv = a.args[1] ?? null;
    dict.set(a.args[0], dv);
    return dv;
  },
  update: (d, a) => {
    const src = dictFrom(a);
    for (const [k, v] of src.entries()) (d as PyDict).set(k, v);
    checkItems((d as PyDict).size);
    return null;
  },
  copy: (d) => {
    const c = new PyDict();
    for (const [k, v] of (d as PyDict).entries()) c.set(k, v);
    return c;
  },
  clear: (d) => {
    (d as PyDict).m.clear();
    return null;
  },
};

const SET_METHODS: Record<string, Method> = {
  add: (s, a) => {
    (s as PySet).add(oneArg('add', a));
    checkItems((s as PySet).m.size);
    return null;
  },
  discard: (s, a) => {
    (s as PySet).m.delete([...(s as PySet).m.entries()].find(([, v]) => pyEq(v, a.args[0]))?.[0] ?? '');
    return null;
  },
  union: (s, a) => new PySet([...(s as PySet).items(), ...a.args.flatMap((x) => toList(x))]),
  intersection: (s, a) => {
    const other = new PySet(toList(a.args[0]));
    return new PySet((s as PySet).items().filter((x) => other.has(x)));
  },
  difference: (s, a) => {
    const other = new PySet(toList(a.args[0]));
    return new PySet((s as PySet).items().filter((x) => !other.has(x)));
  },
};

/** obj.name for method access; anything that is not a known method raises AttributeError. */
export function getattr(obj: PyValue, name: string): PyValue {
  let table: Record<string, Method> | null = null;
  if (isStr(obj)) table = STR_METHODS;
  else if (Array.isArray(obj)) table = LIST_METHODS;
  else if (obj instanceof PyTuple) table = TUPLE_METHODS;
  else if (obj instanceof PyDict) table = DICT_METHODS;
  else if (obj instanceof PySet) table = SET_METHODS;
  else if (obj instanceof Placeholder) {
    if (name === 'split') return fn('split', () => [new Placeholder(), new Placeholder()]);
    if (name === 'startswith') return fn('startswith', () => false);
  }
  const m = table && Object.hasOwn(table, name) ? table[name] : undefined;
  if (!m) {
    if (obj instanceof PyExcClass || obj instanceof PyFunc) throw pyErr('AttributeError', `type object '${typeName(obj)}' has no attribute '${name}'`);
    throw pyErr('AttributeError', `'${typeName(obj)}' object has no attribute '${name}'`);
  }
  return fn(name, (a) => m(obj, a));
}

export function matchesException(errType: string, cls: PyValue): boolean {
  const classes = cls instanceof PyTuple ? cls.items : [cls];
  return classes.some((c) => {
    if (!(c instanceof PyExcClass)) throw typeError('catching classes that do not inherit from BaseException is not allowed');
    return excIsSubclass(errType, c.name);
  });
}
