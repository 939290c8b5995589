/**
 * The evaluator: a tree-walking interpreter over the template's own AST. No JavaScript is ever
 * generated or evaluated; names resolve only to request parameters, template locals, Tinybird's
 * functions and a fixed set of safe builtins.
 */
import type { Comprehension, Node } from './ast.js';
import { BUILTINS, getattr, matchesException } from './builtins.js';
import type { Exec } from './compile.js';
import { LimitError, PyError, PyException, pyErr, typeError, valueError } from './errors.js';
import { expressionWrapper, sqlText } from './functions.js';
import { MAX_DEPTH, MAX_OUTPUT, step } from './limits.js';
import { binop, callValue, formatHook, getitem, iterate, setitem, toList, unary, type SliceValue } from './ops.js';
import { reprFloat } from './pyfmt.js';
import {
  compare,
  isIntLike,
  isNumber,
  isStr,
  Placeholder,
  PyDict,
  PySet,
  PyTuple,
  reprValue,
  strOf,
  strValue,
  toBig,
  toNum,
  truthy,
  type CallArgs,
  type PyValue,
  TypedFloat,
  TypedInt,
  typeName,
} from './values.js';

export interface Scope {
  testMode: boolean;
  /** Tinybird functions that win over request parameters. */
  strong: Record<string, PyValue>;
  /** Namespace entries that request parameters override (symbol, print, open...). */
  weak: Record<string, PyValue>;
  params: Map<string, PyValue>;
  /** Template variables (name → line of its last occurrence). */
  templateVars: Map<string, number>;
  localNames: Set<string>;
}

const BREAK = 1;
const CONTINUE = 2;

export class Interpreter {
  private locals = new Map<string, PyValue>();
  private placeholders = new Map<string, Placeholder>();
  private compScopes: Map<string, PyValue>[] = [];
  private out: string[] = [];
  private outLen = 0;
  private depth = 0;

  constructor(private scope: Scope) {}

  run(exec: Exec[]): string {
    this.execList(exec);
    return this.out.join('');
  }

  private write(s: string): void {
    this.outLen += s.length;
    if (this.outLen > MAX_OUTPUT) throw new LimitError('Template Syntax Error: the rendered SQL is larger than 10 MB');
    this.out.push(s);
  }

  /* ------------------------------------------------------------ statements */

  private execList(list: Exec[]): number {
    for (const e of list) {
      const sig = this.exec(e);
      if (sig) return sig;
    }
    return 0;
  }

  private exec(e: Exec): number {
    switch (e.t) {
      case 'text':
        this.write(e.s);
        return 0;
      case 'expr': {
        const v = this.eval(e.node);
        this.write(sqlText(expressionWrapper(v, e.src)));
        return 0;
      }
      case 'if':
        for (const b of e.branches) if (b.test === null || truthy(this.eval(b.test))) return this.execList(b.body);
        return 0;
      case 'for':
        return this.loop(iterate(this.eval(e.iter)), (x) => this.assign(e.target, x), e.body, e.orelse);
      case 'while':
        return this.loop(this.whileTrue(e.test), () => undefined, e.body, e.orelse);
      case 'try':
        return this.execTry(e);
      case 'set': {
        const s = e.stmt;
        if (s.k === 'Assign') {
          const v = this.eval(s.value);
          for (const t of s.targets) this.assign(t, v);
        } else if (s.k === 'AugAssign') {
          const t = s.target;
          if (t.k === 'Name') this.assign(t, binop(s.op, this.lookup(t.id), this.eval(s.value)));
          else if (t.k === 'Subscript') {
            const obj = this.eval(t.value);
            const key = this.eval(t.slice);
            setitem(obj, key, binop(s.op, getitem(obj, key, false), this.eval(s.value)));
          } else throw pyErr('AttributeError', 'attribute assignment is not supported');
        } else if (s.k === 'Expr') this.eval(s.value);
        return 0;
      }
      case 'break':
        return BREAK;
      case 'continue':
        return CONTINUE;
    }
  }

  /** Python's `for`/`while ... else`: `body` once per item (bound first), then `orelse` unless a break ended it. */
  private loop<T>(items: Iterable<T>, bind: (x: T) => void, body: Exec[], orelse: Exec[] | null | undefined): number {
    for (const x of items) {
      step();
      bind(x);
      if (this.execList(body) === BREAK) return 0;
    }
    return orelse ? this.execList(orelse) : 0;
  }

  /** One item per time `test` holds, evaluated before each. */
  private *whileTrue(test: Node): Generator<void> {
    while (truthy(this.eval(test))) yield;
  }

  private execTry(e: Extract<Exec, { t: 'try' }>): number {
    let sig = 0;
    let pending: PyError | null = null;
    let raised = false;
    try {
      sig = this.execList(e.body);
    } catch (err) {
      if (!(err instanceof PyError)) throw err;
      raised = true;
      try {
        let handled = false;
        for (const h of e.handlers) {
          if (h.type !== null && !matchesException(err.pyType, this.eval(h.type))) continue;
          handled = true;
          if (h.name) this.locals.set(h.name, new PyException(err));
          try {
            sig = this.execList(h.body);
          } finally {
            if (h.name) this.locals.delete(h.name);
          }
          break;
        }
        if (!handled) pending = err;
      } catch (inner) {
        if (!(inner instanceof PyError)) throw inner;
        pending = inner;
      }
    }
    if (!raised && !sig && e.orelse) {
      try {
        sig = this.execList(e.orelse);
      } catch (err) {
        if (!(err instanceof PyError)) throw err;
        pending = err;
      }
    }
    if (e.finalbody) {
      const fsig = this.execList(e.finalbody);
      if (fsig) return fsig;
    }
    if (pending) throw pending;
    return sig;
  }

  /* ------------------------------------------------------------ names */

  lookup(name: string): PyValue {
    for (let i = this.compScopes.length - 1; i >= 0; i--) {
      const s = this.compScopes[i];
      if (s.has(name)) return s.get(name)!;
    }
    const sc = this.scope;
    if (sc.localNames.has(name)) {
      if (this.locals.has(name)) return this.locals.get(name)!;
      throw pyErr('UnboundLocalError', `cannot access local variable '${name}' where it is not associated with a value`);
    }
    if (Object.hasOwn(sc.strong, name)) return sc.strong[name];
    if (sc.params.has(name)) return sc.params.get(name)!;
    if (Object.hasOwn(sc.weak, name)) return sc.weak[name];
    const line = sc.templateVars.get(name);
    if (line !== undefined) {
      if (!sc.testMode) return null;
      let p = this.placeholders.get(name);
      if (!p) {
        p = new Placeholder(name, line);
        this.placeholders.set(name, p);
      }
      return p;
    }
    if (Object.hasOwn(BUILTINS, name)) return BUILTINS[name];
    throw pyErr('NameError', `name '${name}' is not defined`);
  }

  private assign(t: Node, v: PyValue): void {
    switch (t.k) {
      case 'Name': {
        const top = this.compScopes[this.compScopes.length - 1];
        if (top?.has(t.id)) top.set(t.id, v);
        else this.locals.set(t.id, v);
        return;
      }
      case 'Tuple':
      case 'List': {
        const items = toList(v);
        const starAt = t.elts.findIndex((x) => x.k === 'Starred');
        if (starAt === -1) {
          if (items.length > t.elts.length) throw valueError(`too many values to unpack (expected ${t.elts.length})`);
          if (items.length < t.elts.length) throw valueError(`not enough values to unpack (expected ${t.elts.length}, got ${items.length})`);
          t.elts.forEach((el, i) => this.assign(el, items[i]));
          return;
        }
        const after = t.elts.length - starAt - 1;
        if (items.length < t.elts.length - 1) throw valueError(`not enough values to unpack (expected at least ${t.elts.length - 1}, got ${items.length})`);
        t.elts.forEach((el, i) => {
          if (i < starAt) this.assign(el, items[i]);
          else if (i === starAt) this.assign((el as Extract<Node, { k: 'Starred' }>).value, items.slice(starAt, items.length - after));
          else this.assign(el, items[items.length - (t.elts.length - i)]);
        });
        return;
      }
      case 'Subscript':
        setitem(this.eval(t.value), this.eval(t.slice), v);
        return;
      case 'Starred':
        this.assign(t.value, v);
        return;
      default:
        throw pyErr('AttributeError', `cannot assign to ${t.k}`);
    }
  }

  /* ------------------------------------------------------------ expressions */

  eval(n: Node): PyValue {
    if (++this.depth > MAX_DEPTH) {
      this.depth = 0;
      throw new LimitError('Template Syntax Error: maximum recursion depth exceeded');
    }
    try {
      return this.evalInner(n);
    } finally {
      this.depth--;
    }
  }

  private evalInner(n: Node): PyValue {
    switch (n.k) {
      case 'Constant':
        return n.value;
      case 'Name':
        return this.lookup(n.id);
      case 'Attribute':
        return getattr(this.eval(n.value), n.attr);
      case 'Call': {
        const f = n.func.k === 'Attribute' ? getattr(this.eval(n.func.value), n.func.attr) : this.eval(n.func);
        return callValue(f, this.callArgs(n));
      }
      case 'BinOp':
        return binop(n.op, this.eval(n.left), this.eval(n.right));
      case 'UnaryOp':
        return unary(n.op, this.eval(n.operand));
      case 'BoolOp': {
        let v: PyValue = null;
        for (const x of n.values) {
          v = this.eval(x);
          if (n.op === 'And' ? !truthy(v) : truthy(v)) return v;
        }
        return v;
      }
      case 'Compare': {
        let left = this.eval(n.left);
        for (let i = 0; i < n.ops.length; i++) {
          const right = this.eval(n.comparators[i]);
          if (!compare(n.ops[i], left, right)) return false;
          left = right;
        }
        return true;
      }
      case 'IfExp':
        return truthy(this.eval(n.test)) ? this.eval(n.body) : this.eval(n.orelse);
      case 'Subscript': {
        const obj = this.eval(n.value);
        if (n.slice.k === 'Slice') {
          const s: SliceValue = {
            lower: n.slice.lower ? this.eval(n.slice.lower) : null,
            upper: n.slice.upper ? this.eval(n.slice.upper) : null,
            step: n.slice.step ? this.eval(n.slice.step) : null,
          };
          return getitem(obj, s, true);
        }
        return getitem(obj, this.eval(n.slice), false);
      }
      case 'Slice':
        throw typeError('slice outside of a subscript');
      case 'List':
        return this.evalElts(n.elts);
      case 'Tuple':
        return new PyTuple(this.evalElts(n.elts));
      case 'Set':
        return new PySet(this.evalElts(n.elts));
      case 'Dict': {
        const d = new PyDict();
        n.keys.forEach((k, i) => {
          if (k === null) {
            const src = this.eval(n.values[i]);
            if (!(src instanceof PyDict)) throw typeError(`'${typeName(src)}' object is not a mapping`);
            for (const [kk, vv] of src.entries()) d.set(kk, vv);
          } else {
            const key = this.eval(k);
            d.set(key, this.eval(n.values[i]));
          }
        });
        return d;
      }
      case 'JoinedStr':
        return n.values.map((v) => (v.k === 'Constant' ? String(v.value) : strOf(this.eval(v) as string))).join('');
      case 'FormattedValue': {
        const v = this.eval(n.value);
        const conv = n.conversion;
        const cv = conv === 114 ? reprValue(v) : conv === 115 ? strValue(v) : conv === 97 ? reprValue(v) : v;
        const spec = n.format_spec ? strOf(this.eval(n.format_spec) as string) : '';
        return formatValue(cv, spec);
      }
      case 'ListComp':
        return this.comprehension(n.generators, () => [this.eval(n.elt)]);
      case 'GeneratorExp':
        return this.comprehension(n.generators, () => [this.eval(n.elt)]);
      case 'SetComp':
        return new PySet(this.comprehension(n.generators, () => [this.eval(n.elt)]));
      case 'DictComp': {
        const d = new PyDict();
        this.comprehension(n.generators, () => {
          d.set(this.eval(n.key), this.eval(n.value));
          return [];
        });
        return d;
      }
      case 'Starred':
        throw typeError("can't use starred expression here");
    }
  }

  private evalElts(elts: Node[]): PyValue[] {
    const out: PyValue[] = [];
    for (const e of elts) {
      if (e.k === 'Starred') out.push(...toList(this.eval(e.value)));
      else out.push(this.eval(e));
    }
    return out;
  }

  private callArgs(n: Extract<Node, { k: 'Call' }>): CallArgs {
    const args = this.evalElts(n.args);
    const kwargs: [string, PyValue][] = [];
    for (const k of n.keywords) {
      if (k.arg !== null) kwargs.push([k.arg, this.eval(k.value)]);
      else {
        const src = this.eval(k.value);
        if (!(src instanceof PyDict)) throw typeError(`argument after ** must be a mapping, not ${typeName(src)}`);
        for (const [kk, vv] of src.entries()) {
          if (!isStr(kk)) throw typeError('keywords must be strings');
          if (kwargs.some(([x]) => x === strOf(kk))) throw typeError(`got multiple values for keyword argument '${strOf(kk)}'`);
          kwargs.push([strOf(kk), vv]);
        }
      }
    }
    return { args, kwargs };
  }

  private comprehension(gens: Comprehension[], emit: () => PyValue[]): PyValue[] {
    const out: PyValue[] = [];
    const scope = new Map<string, PyValue>();
    const bindNames = (t: Node) => {
      if (t.k === 'Name') scope.set(t.id, null);
      else if (t.k === 'Tuple' || t.k === 'List') t.elts.forEach(bindNames);
      else if (t.k === 'Starred') bindNames(t.value);
    };
    // the first iterable is evaluated in the enclosing scope
    const firstIter = this.eval(gens[0].iter);
    gens.forEach((g) => bindNames(g.target));
    this.compScopes.push(scope);
    try {
      const loop = (i: number, iterable: PyValue): void => {
        const g = gens[i];
        for (const x of iterate(iterable)) {
          step();
          this.assign(g.target, x);
          if (!g.ifs.every((c) => truthy(this.eval(c)))) continue;
          if (i + 1 < gens.length) loop(i + 1, this.eval(gens[i + 1].iter));
          else {
            out.push(...emit());
            if (out.length > 1_000_000) throw new LimitError('Template Syntax Error: the template built a sequence of more than 1000000 items');
          }
        }
      };
      loop(0, firstIter);
    } finally {
      this.compScopes.pop();
    }
    return out;
  }
}

/* ------------------------------------------------------------------ format() */

const SPEC_RE = /^(?:(.)?([<>=^]))?([+\- ])?(#)?(0)?(\d+)?([,_])?(?:\.(\d+))?([bcdeEfFgGnosxX%])?$/s;

/** Python's format(value, spec) for the common cases of the format mini-language. */
export function formatValue(v: PyValue, spec: string): string {
  if (!spec) return strValue(v);
  const m = SPEC_RE.exec(spec);
  if (!m) throw valueError(`Invalid format specifier '${spec}' for object of type '${typeName(v)}'`);
  let [, fill, align, sign, alt, zero, widthS, group, precS, type] = m;
  const width = widthS ? Number(widthS) : 0;
  if (width > 10_000) throw valueError('Too many decimal digits in format string');
  const prec = precS !== undefined ? Number(precS) : undefined;
  if (prec !== undefined && prec > 1000) throw valueError('precision too big');
  if (zero && !align) {
    fill = '0';
    align = '=';
  }
  fill = fill ?? ' ';
  let body: string;
  let neg = false;
  const numeric = isNumber(v);
  if (numeric) {
    const intLike = isIntLike(v) || v instanceof TypedInt;
    if (!type) type = intLike ? 'd' : prec !== undefined ? 'g' : '';
    if ('bcdoxXn'.includes(type)) {
      if (!intLike) throw valueError(`Unknown format code '${type}' for object of type 'float'`);
      let n = toBig(v as bigint);
      neg = n < 0n;
      if (neg) n = -n;
      const base = type === 'b' ? 2 : type === 'o' ? 8 : type === 'x' || type === 'X' ? 16 : 10;
      if (type === 'c') body = String.fromCodePoint(Number(n));
      else body = n.toString(base);
      if (type === 'X') body = body.toUpperCase();
      if (alt && base !== 10) body = '0' + (type === 'X' ? 'X' : type) + body;
    } else {
      let x = toNum(v instanceof TypedFloat ? v.v : v);
      neg = x < 0 || Object.is(x, -0);
      x = Math.abs(x);
      const p = prec ?? 6;
      if (!Number.isFinite(x)) body = Number.isNaN(x) ? 'nan' : 'inf';
      else if (type === 'f' || type === 'F') body = x.toFixed(p);
      else if (type === '%') body = (x * 100).toFixed(p) + '%';
      else if (type === 'e' || type === 'E') body = x.toExponential(p).replace(/e([+-])(\d)$/, 'e$10$2');
      else if (type === 'g' || type === 'G') {
        const pp = p === 0 ? 1 : p;
        const exp = x === 0 ? 0 : Math.floor(Math.log10(x));
        body = exp < -4 || exp >= pp ? x.toExponential(pp - 1).replace(/e([+-])(\d)$/, 'e$10$2') : x.toPrecision(pp);
        if (!alt) body = body.replace(/\.?0+(e|$)/, '$1');
      } else body = reprFloat(x);
      if (type === 'E' || type === 'G' || type === 'F') body = body.toUpperCase();
    }
    if (group) {
      const [ip, fp] = body.split('.');
      body = ip.replace(/\B(?=(\d{3})+(?!\d))/g, group) + (fp !== undefined ? '.' + fp : '');
    }
    const signStr = neg ? '-' : sign === '+' ? '+' : sign === ' ' ? ' ' : '';
    align = align ?? '>';
    const total = signStr.length + body.length;
    if (total >= width) return signStr + body;
    const padN = width - total;
    if (align === '=') return signStr + fill.repeat(padN) + body;
    return padStr(signStr + body, fill, align, padN);
  }
  if (type && type !== 's') throw valueError(`Unknown format code '${type}' for object of type '${typeName(v)}'`);
  let s = strValue(v);
  if (prec !== undefined) s = Array.from(s).slice(0, prec).join('');
  const len = Array.from(s).length;
  if (len >= width) return s;
  return padStr(s, fill, align ?? '<', width - len);
}

function padStr(s: string, fill: string, align: string, n: number): string {
  if (align === '<') return s + fill.repeat(n);
  if (align === '>') return fill.repeat(n) + s;
  const left = Math.floor(n / 2);
  return fill.repeat(left) + s + fill.repeat(n - left);
}

formatHook.format = formatValue;

export { PyError, PyException };
