/**
 * Tokenizer and recursive-descent parser for the Python expression subset used by templates
 * (Python 3 precedence and syntax), producing the AST of ./ast.ts. Never evaluates anything.
 */
import type { BinOpName, CmpOpName, Comprehension, Keyword, Node, Stmt } from './ast.js';

export class PySyntaxError extends Error {}

const MAX_DEPTH = 100;

const KEYWORDS = new Set([
  'False',
  'None',
  'True',
  'and',
  'as',
  'assert',
  'async',
  'await',
  'break',
  'class',
  'continue',
  'def',
  'del',
  'elif',
  'else',
  'except',
  'finally',
  'for',
  'from',
  'global',
  'if',
  'import',
  'in',
  'is',
  'lambda',
  'nonlocal',
  'not',
  'or',
  'pass',
  'raise',
  'return',
  'try',
  'while',
  'with',
  'yield',
]);

type Tok =
  | { t: 'name'; v: string }
  | { t: 'num'; v: string; value: bigint | number }
  | { t: 'str'; v: string; value: string; f: boolean; bytes: boolean; raw: boolean }
  | { t: 'op'; v: string }
  | { t: 'eof'; v: '' };

const OPS3 = ['**=', '//=', '>>=', '<<=', '...'];
const OPS2 = ['**', '//', '<<', '>>', '<=', '>=', '==', '!=', '+=', '-=', '*=', '/=', '%=', '&=', '|=', '^=', '@=', '->', ':='];
const OPS1 = '+-*/%@&|^~<>()[]{},:.;=';

function isIdStart(c: string): boolean {
  return /[\p{L}\p{Nl}_]/u.test(c);
}
function isIdChar(c: string): boolean {
  return /[\p{L}\p{Nl}\p{Mn}\p{Mc}\p{Nd}\p{Pc}_]/u.test(c);
}

function syntax(msg = 'invalid syntax'): PySyntaxError {
  return new PySyntaxError(msg);
}

function decodeEscapes(body: string, bytes: boolean): string {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c !== '\\') {
      out += c;
      continue;
    }
    const n = body[++i];
    if (n === undefined) {
      out += '\\';
      break;
    }
    switch (n) {
      case '\n':
        break;
      case '\\':
        out += '\\';
        break;
      case "'":
        out += "'";
        break;
      case '"':
        out += '"';
        break;
      case 'a':
        out += '\x07';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'v':
        out += '\v';
        break;
      case 'x': {
        const h = body.slice(i + 1, i + 3);
        if (!/^[0-9a-fA-F]{2}$/.test(h)) throw syntax('(unicode error) truncated \\xXX escape');
        out += String.fromCodePoint(parseInt(h, 16));
        i += 2;
        break;
      }
      case 'u':
      case 'U': {
        if (bytes) {
          out += '\\' + n;
          break;
        }
        const len = n === 'u' ? 4 : 8;
        const h = body.slice(i + 1, i + 1 + len);
        if (h.length !== len || !/^[0-9a-fA-F]+$/.test(h)) throw syntax(`(unicode error) truncated \\${n}${'X'.repeat(len)} escape`);
        const cp = parseInt(h, 16);
        if (cp > 0x10ffff) throw syntax('(unicode error) illegal Unicode character');
        out += String.fromCodePoint(cp);
        i += len;
        break;
      }
      case 'N':
        throw syntax('(unicode error) \\N escapes are not supported');
      default:
        if (n >= '0' && n <= '7') {
          let j = i;
          let oct = '';
          while (j < body.length && oct.length < 3 && body[j] >= '0' && body[j] <= '7') oct += body[j++];
          out += String.fromCodePoint(parseInt(oct, 8));
          i = j - 1;
        } else out += '\\' + n;
    }
  }
  return out;
}

function parseNumber(src: string): bigint | number {
  const s = src.replace(/_/g, '');
  if (/^0[xX]/.test(s)) return BigInt(s);
  if (/^0[oO]/.test(s)) return BigInt('0o' + s.slice(2));
  if (/^0[bB]/.test(s)) return BigInt('0b' + s.slice(2));
  if (/[.eE]/.test(s)) return Number(s);
  if (/^0+[1-9]/.test(s)) throw syntax('leading zeros in decimal integer literals are not permitted; use an 0o prefix for octal integers');
  return BigInt(s);
}

export function tokenize(src: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  const n = src.length;
  while (i < n) {
    const c = src[i];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') {
      i++;
      continue;
    }
    if (c === '\\' && (src[i + 1] === '\n' || (src[i + 1] === '\r' && src[i + 2] === '\n'))) {
      i += src[i + 1] === '\n' ? 2 : 3;
      continue;
    }
    if (c === '#') {
      while (i < n && src[i] !== '\n') i++;
      continue;
    }
    // String with optional prefix
    const pm = /^([rRbBuUfF]{0,2})(['"])/.exec(src.slice(i, i + 3));
    if (pm && (pm[1] === '' || /^(r|u|b|f|br|rb|fr|rf)$/i.test(pm[1]))) {
      const prefix = pm[1].toLowerCase();
      let j = i + pm[1].length;
      const q = src[j];
      const triple = src.slice(j, j + 3) === q.repeat(3);
      const delim = triple ? q.repeat(3) : q;
      j += delim.length;
      const start = j;
      const raw = prefix.includes('r');
      for (;;) {
        if (j >= n) throw syntax(triple ? 'unterminated triple-quoted string literal' : 'unterminated string literal');
        const d = src[j];
        if (d === '\\') {
          j += 2;
          continue;
        }
        if (!triple && d === '\n') throw syntax('unterminated string literal');
        if (src.startsWith(delim, j)) break;
        j++;
      }
      const body = src.slice(start, j);
      j += delim.length;
      const isF = prefix.includes('f');
      const bytes = prefix.includes('b');
      const value = isF ? body : raw ? body : decodeEscapes(body, bytes);
      toks.push({ t: 'str', v: src.slice(i, j), value, f: isF, bytes, raw });
      i = j;
      continue;
    }
    if (isIdStart(c)) {
      let j = i + 1;
      while (j < n && isIdChar(src[j])) j++;
      toks.push({ t: 'name', v: src.slice(i, j).normalize('NFKC') });
      i = j;
      continue;
    }
    if ((c >= '0' && c <= '9') || (c === '.' && src[i + 1] >= '0' && src[i + 1] <= '9')) {
      const m = /^(0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|(?:\d(?:_?\d)*)?\.?(?:\d(?:_?\d)*)?(?:[eE][+-]?\d(?:_?\d)*)?)/.exec(
        src.slice(i),
      )!;
      let text = m[0];
      if (text === '' || text === '.') throw syntax('invalid decimal literal');
      const after = src[i + text.length];
      if (after === 'j' || after === 'J') throw syntax('complex numbers are not supported');
      if (after !== undefined && isIdChar(after)) throw syntax('invalid decimal literal');
      text = m[0];
      toks.push({ t: 'num', v: text, value: parseNumber(text) });
      i += text.length;
      continue;
    }
    const three = src.slice(i, i + 3);
    if (OPS3.includes(three)) {
      toks.push({ t: 'op', v: three });
      i += 3;
      continue;
    }
    const two = src.slice(i, i + 2);
    if (OPS2.includes(two)) {
      toks.push({ t: 'op', v: two });
      i += 2;
      continue;
    }
    if (OPS1.includes(c)) {
      toks.push({ t: 'op', v: c });
      i++;
      continue;
    }
    throw syntax(c === '!' ? 'invalid syntax' : `invalid character '${c}' (U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')})`);
  }
  toks.push({ t: 'eof', v: '' });
  return toks;
}

const AUG: Record<string, BinOpName> = {
  '+=': 'Add',
  '-=': 'Sub',
  '*=': 'Mult',
  '/=': 'Div',
  '//=': 'FloorDiv',
  '%=': 'Mod',
  '**=': 'Pow',
  '<<=': 'LShift',
  '>>=': 'RShift',
  '|=': 'BitOr',
  '^=': 'BitXor',
  '&=': 'BitAnd',
  '@=': 'MatMult',
};

class Parser {
  private p = 0;
  private depth = 0;
  constructor(private toks: Tok[]) {}

  private get tok(): Tok {
    return this.toks[this.p];
  }
  private peek(k = 1): Tok {
    return this.toks[Math.min(this.p + k, this.toks.length - 1)];
  }
  private isOp(v: string): boolean {
    return this.tok.t === 'op' && this.tok.v === v;
  }
  isKw(v: string): boolean {
    return this.tok.t === 'name' && this.tok.v === v;
  }
  private eatOp(v: string): boolean {
    if (this.isOp(v)) {
      this.p++;
      return true;
    }
    return false;
  }
  eatKw(v: string): boolean {
    if (this.isKw(v)) {
      this.p++;
      return true;
    }
    return false;
  }
  private expectOp(v: string): void {
    if (!this.eatOp(v)) throw syntax();
  }
  /** Parses `body` one nesting level deeper (too deep a nesting is a syntax error). */
  private nested<T>(body: () => T): T {
    if (++this.depth > MAX_DEPTH) throw syntax('too many nested parentheses');
    try {
      return body();
    } finally {
      this.depth--;
    }
  }
  takeName(): string {
    const t = this.tok;
    if (t.t !== 'name' || KEYWORDS.has(t.v)) throw syntax();
    this.p++;
    return t.v;
  }
  atEnd(): boolean {
    return this.tok.t === 'eof';
  }
  expectEnd(): void {
    if (!this.atEnd()) throw syntax();
  }

  // expression := disjunction ['if' disjunction 'else' expression]
  expression(): Node {
    return this.nested(() => {
      if (this.isKw('lambda')) throw syntax('lambda is not supported');
      const body = this.disjunction();
      if (this.isKw('if')) {
        this.p++;
        const test = this.disjunction();
        if (!this.eatKw('else')) throw syntax("expected 'else' after 'if' expression");
        const orelse = this.expression();
        return { k: 'IfExp', test, body, orelse };
      }
      return body;
    });
  }

  /** `next` joined by `or` (or `and`): one BoolOp over every operand, or the single operand. */
  private boolLevel(kw: 'or' | 'and', next: () => Node): Node {
    const first = next();
    if (!this.isKw(kw)) return first;
    const values = [first];
    while (this.eatKw(kw)) values.push(next());
    return { k: 'BoolOp', op: kw === 'or' ? 'Or' : 'And', values };
  }

  private disjunction(): Node {
    return this.boolLevel('or', () => this.conjunction());
  }

  private conjunction(): Node {
    return this.boolLevel('and', () => this.inversion());
  }

  private inversion(): Node {
    if (this.eatKw('not')) {
      return this.nested((): Node => ({ k: 'UnaryOp', op: 'Not', operand: this.inversion() }));
    }
    return this.comparison();
  }

  private compOp(): CmpOpName | null {
    const t = this.tok;
    if (t.t === 'op') {
      const m: Record<string, CmpOpName> = { '==': 'Eq', '!=': 'NotEq', '<': 'Lt', '<=': 'LtE', '>': 'Gt', '>=': 'GtE' };
      if (m[t.v]) {
        this.p++;
        return m[t.v];
      }
      return null;
    }
    if (t.t === 'name') {
      if (t.v === 'in') {
        this.p++;
        return 'In';
      }
      if (t.v === 'not' && this.peek().t === 'name' && this.peek().v === 'in') {
        this.p += 2;
        return 'NotIn';
      }
      if (t.v === 'is') {
        this.p++;
        if (this.eatKw('not')) return 'IsNot';
        return 'Is';
      }
    }
    return null;
  }

  private comparison(): Node {
    const left = this.bitor();
    const ops: CmpOpName[] = [];
    const comparators: Node[] = [];
    for (;;) {
      const op = this.compOp();
      if (!op) break;
      ops.push(op);
      comparators.push(this.bitor());
    }
    return ops.length ? { k: 'Compare', left, ops, comparators } : left;
  }

  private binLevel(next: () => Node, ops: Record<string, BinOpName>): Node {
    let left = next();
    while (this.tok.t === 'op' && ops[this.tok.v]) {
      const op = ops[this.tok.v];
      this.p++;
      left = { k: 'BinOp', left, op, right: next() };
    }
    return left;
  }
  private bitor = (): Node => this.binLevel(this.bitxor, { '|': 'BitOr' });
  private bitxor = (): Node => this.binLevel(this.bitand, { '^': 'BitXor' });
  private bitand = (): Node => this.binLevel(this.shift, { '&': 'BitAnd' });
  private shift = (): Node => this.binLevel(this.sum, { '<<': 'LShift', '>>': 'RShift' });
  private sum = (): Node => this.binLevel(this.term, { '+': 'Add', '-': 'Sub' });
  private term = (): Node => this.binLevel(this.factor, { '*': 'Mult', '/': 'Div', '//': 'FloorDiv', '%': 'Mod', '@': 'MatMult' });

  private factor = (): Node => {
    const t = this.tok;
    if (t.t === 'op' && (t.v === '-' || t.v === '+' || t.v === '~')) {
      this.p++;
      return this.nested((): Node => ({ k: 'UnaryOp', op: t.v === '-' ? 'USub' : t.v === '+' ? 'UAdd' : 'Invert', operand: this.factor() }));
    }
    return this.power();
  };

  private power(): Node {
    const base = this.primary();
    if (this.eatOp('**')) {
      return this.nested((): Node => ({ k: 'BinOp', left: base, op: 'Pow', right: this.factor() }));
    }
    return base;
  }

  private primary(): Node {
    let node = this.atom();
    for (;;) {
      if (this.eatOp('.')) {
        const t = this.tok;
        if (t.t !== 'name' || KEYWORDS.has(t.v)) throw syntax();
        this.p++;
        node = { k: 'Attribute', value: node, attr: t.v, ctx: 'Load' };
      } else if (this.isOp('(')) {
        this.p++;
        node = this.callArgs(node);
      } else if (this.isOp('[')) {
        this.p++;
        node = { k: 'Subscript', value: node, slice: this.slices(), ctx: 'Load' };
        this.expectOp(']');
      } else break;
    }
    return node;
  }

  private callArgs(func: Node): Node {
    return this.nested((): Node => {
      const args: Node[] = [];
      const keywords: Keyword[] = [];
      while (!this.isOp(')')) {
        if (this.eatOp('*')) {
          if (keywords.some((k) => k.arg === null)) throw syntax('iterable argument unpacking follows keyword argument unpacking');
          args.push({ k: 'Starred', value: this.expression(), ctx: 'Load' });
        } else if (this.eatOp('**')) {
          keywords.push({ k: 'keyword', arg: null, value: this.expression() });
        } else if (this.tok.t === 'name' && !KEYWORDS.has(this.tok.v) && this.peek().t === 'op' && this.peek().v === '=') {
          const arg = this.tok.v;
          this.p += 2;
          if (keywords.some((k) => k.arg === arg)) throw syntax(`keyword argument repeated: ${arg}`);
          keywords.push({ k: 'keyword', arg, value: this.expression() });
        } else {
          const e = this.expression();
          if (this.startsComprehension()) {
            const gen: Node = { k: 'GeneratorExp', elt: e, generators: this.comprehensions() };
            if (args.length || keywords.length || !this.isOp(')')) throw syntax('Generator expression must be parenthesized');
            args.push(gen);
            break;
          }
          if (keywords.length)
            throw syntax(
              keywords.some((k) => k.arg === null) ? 'positional argument follows keyword argument unpacking' : 'positional argument follows keyword argument',
            );
          args.push(e);
        }
        if (!this.eatOp(',')) break;
      }
      this.expectOp(')');
      return { k: 'Call', func, args, keywords };
    });
  }

  private slices(): Node {
    const first = this.sliceItem();
    if (!this.isOp(',')) return first;
    const elts = [first];
    while (this.eatOp(',')) {
      if (this.isOp(']')) break;
      elts.push(this.sliceItem());
    }
    return { k: 'Tuple', elts, ctx: 'Load' };
  }

  private sliceItem(): Node {
    let lower: Node | null = null;
    if (!this.isOp(':')) {
      lower = this.expression();
      if (!this.isOp(':')) return lower;
    }
    this.expectOp(':');
    let upper: Node | null = null;
    let step: Node | null = null;
    if (!this.isOp(':') && !this.isOp(']') && !this.isOp(',')) upper = this.expression();
    if (this.eatOp(':')) {
      if (!this.isOp(']') && !this.isOp(',')) step = this.expression();
    }
    return { k: 'Slice', lower, upper, step };
  }

  private comprehensions(): Comprehension[] {
    const gens: Comprehension[] = [];
    while (this.startsComprehension()) {
      if (this.isKw('async')) throw syntax('asynchronous comprehension outside of an asynchronous function');
      this.p++;
      const target = this.targetList();
      if (!this.eatKw('in')) throw syntax();
      const iter = this.disjunction();
      const ifs: Node[] = [];
      while (this.eatKw('if')) ifs.push(this.disjunction());
      gens.push({ k: 'comprehension', target, iter, ifs });
    }
    return gens;
  }

  /** star_targets: a, (b, c) — used by for loops and comprehensions. */
  targetList(): Node {
    const first = this.targetAtom();
    if (!this.isOp(',')) return first;
    const elts = [first];
    while (this.eatOp(',')) {
      if (this.isKw('in') || this.isOp('=') || this.atEnd()) break;
      elts.push(this.targetAtom());
    }
    return { k: 'Tuple', elts, ctx: 'Store' };
  }

  private targetAtom(): Node {
    const e = this.bitor();
    return toStore(e);
  }

  private atom(): Node {
    const t = this.tok;
    switch (t.t) {
      case 'name': {
        if (t.v === 'True' || t.v === 'False') {
          this.p++;
          return { k: 'Constant', value: t.v === 'True' };
        }
        if (t.v === 'None') {
          this.p++;
          return { k: 'Constant', value: null };
        }
        if (KEYWORDS.has(t.v)) throw syntax();
        this.p++;
        return { k: 'Name', id: t.v, ctx: 'Load' };
      }
      case 'num':
        this.p++;
        return { k: 'Constant', value: t.value };
      case 'str':
        return this.strings();
      case 'op':
        if (t.v === '(') return this.parenAtom();
        if (t.v === '[') return this.listAtom();
        if (t.v === '{') return this.dictOrSetAtom();
        if (t.v === '...') throw syntax('Ellipsis is not supported');
        throw syntax();
      default:
        throw syntax();
    }
  }

  private strings(): Node {
    const parts: Extract<Tok, { t: 'str' }>[] = [];
    while (this.tok.t === 'str') {
      parts.push(this.tok);
      this.p++;
    }
    const bytes = parts[0].bytes;
    if (parts.some((x) => x.bytes !== bytes)) throw syntax('cannot mix bytes and nonbytes literals');
    if (!parts.some((x) => x.f)) return { k: 'Constant', value: parts.map((x) => x.value).join(''), ...(bytes ? { bytes } : {}) };
    const values: Node[] = [];
    let lit = '';
    const flush = () => {
      if (lit) values.push({ k: 'Constant', value: lit });
      lit = '';
    };
    for (const part of parts) {
      if (!part.f) {
        lit += part.value;
        continue;
      }
      for (const piece of parseFString(part.value, part.raw, this.depth)) {
        if (typeof piece === 'string') lit += piece;
        else {
          flush();
          values.push(piece);
        }
      }
    }
    flush();
    return { k: 'JoinedStr', values };
  }

  /** `(...)`, `[...]`, `{...}`: `body` parses what follows the opening bracket, one nesting level deeper. */
  private bracketed(body: () => Node): Node {
    this.p++;
    return this.nested(body);
  }

  private startsComprehension(): boolean {
    return this.isKw('for') || this.isKw('async');
  }

  /** The `for ... in ...` clauses of a comprehension, made into a node by `make`, and its closing bracket. */
  private comprehension(close: string, make: (generators: Comprehension[]) => Node): Node {
    const n = make(this.comprehensions());
    this.expectOp(close);
    return n;
  }

  /** The elements of a display after its first, up to its closing bracket (a trailing comma allowed). */
  private elements(first: Node, close: string): Node[] {
    const elts = [first];
    while (this.eatOp(',')) {
      if (this.isOp(close)) break;
      elts.push(this.starOrExpr());
    }
    this.expectOp(close);
    return elts;
  }

  private parenAtom(): Node {
    return this.bracketed(() => {
      if (this.eatOp(')')) return { k: 'Tuple', elts: [], ctx: 'Load' };
      const first = this.starOrExpr();
      if (this.startsComprehension()) return this.comprehension(')', (generators) => ({ k: 'GeneratorExp', elt: first, generators }));
      if (this.eatOp(')')) {
        if (first.k === 'Starred') throw syntax('cannot use starred expression here');
        return first;
      }
      return { k: 'Tuple', elts: this.elements(first, ')'), ctx: 'Load' };
    });
  }

  private starOrExpr(): Node {
    if (this.eatOp('*')) return { k: 'Starred', value: this.bitor(), ctx: 'Load' };
    return this.expression();
  }

  private listAtom(): Node {
    return this.bracketed(() => {
      if (this.eatOp(']')) return { k: 'List', elts: [], ctx: 'Load' };
      const first = this.starOrExpr();
      if (this.startsComprehension()) return this.comprehension(']', (generators) => ({ k: 'ListComp', elt: first, generators }));
      return { k: 'List', elts: this.elements(first, ']'), ctx: 'Load' };
    });
  }

  private dictOrSetAtom(): Node {
    return this.bracketed(() => {
      if (this.eatOp('}')) return { k: 'Dict', keys: [], values: [] };
      if (this.eatOp('**')) return this.dictRest(null, this.bitor());
      const first = this.starOrExpr();
      if (this.eatOp(':')) {
        const value = this.expression();
        if (this.startsComprehension()) return this.comprehension('}', (generators) => ({ k: 'DictComp', key: first, value, generators }));
        return this.dictRest(first, value);
      }
      if (this.startsComprehension()) return this.comprehension('}', (generators) => ({ k: 'SetComp', elt: first, generators }));
      return { k: 'Set', elts: this.elements(first, '}') };
    });
  }

  private dictRest(k0: Node | null, v0: Node): Node {
    const keys: (Node | null)[] = [k0];
    const values: Node[] = [v0];
    while (this.eatOp(',')) {
      if (this.isOp('}')) break;
      if (this.eatOp('**')) {
        keys.push(null);
        values.push(this.bitor());
        continue;
      }
      keys.push(this.expression());
      this.expectOp(':');
      values.push(this.expression());
    }
    this.expectOp('}');
    return { k: 'Dict', keys, values };
  }

  /** star_expressions: a tuple without parentheses, or a single expression. */
  starExpressions(): Node {
    const first = this.starOrExpr();
    if (!this.isOp(',')) return first;
    const elts = [first];
    while (this.eatOp(',')) {
      if (this.atEnd() || this.isOp('=') || (this.tok.t === 'op' && AUG[this.tok.v])) break;
      elts.push(this.starOrExpr());
    }
    return { k: 'Tuple', elts, ctx: 'Load' };
  }

  /** The body of {% set ... %}: an assignment, augmented assignment or expression statement. */
  simpleStatement(): Stmt {
    const first = this.starExpressions();
    if (this.tok.t === 'op' && AUG[this.tok.v]) {
      const op = AUG[this.tok.v];
      this.p++;
      if (first.k !== 'Name' && first.k !== 'Subscript' && first.k !== 'Attribute') throw syntax("'tuple' is an illegal expression for augmented assignment");
      const value = this.starExpressions();
      this.expectEnd();
      return { k: 'AugAssign', target: toStore(first), op, value };
    }
    if (this.isOp('=')) {
      const targets: Node[] = [toStore(first)];
      let value: Node = first;
      while (this.eatOp('=')) {
        value = this.starExpressions();
        if (this.isOp('=')) targets.push(toStore(value));
      }
      this.expectEnd();
      return { k: 'Assign', targets, value };
    }
    this.expectEnd();
    return { k: 'Expr', value: first };
  }
}

function toStore(n: Node): Node {
  switch (n.k) {
    case 'Name':
      return { ...n, ctx: 'Store' };
    case 'Attribute':
    case 'Subscript':
      return { ...n, ctx: 'Store' };
    case 'Tuple':
    case 'List':
      return { ...n, elts: n.elts.map(toStore), ctx: 'Store' };
    case 'Starred':
      return { ...n, value: toStore(n.value), ctx: 'Store' };
    default:
      throw syntax(`cannot assign to ${n.k === 'Call' ? 'function call' : n.k === 'Constant' ? 'literal' : 'expression'}`);
  }
}

/** Splits an f-string body into literal pieces and FormattedValue nodes. */
function parseFString(body: string, raw: boolean, depth: number): (string | Node)[] {
  if (depth > MAX_DEPTH) throw syntax('too many nested parentheses');
  const out: (string | Node)[] = [];
  let lit = '';
  let i = 0;
  const flushLit = () => {
    if (lit) out.push(raw ? lit : decodeEscapes(lit, false));
    lit = '';
  };
  while (i < body.length) {
    const c = body[i];
    if (c === '{') {
      if (body[i + 1] === '{') {
        lit += '{';
        i += 2;
        continue;
      }
      flushLit();
      // find the end of the expression: depth-aware, string-aware
      let j = i + 1;
      let d = 0;
      let quote: string | null = null;
      let exprEnd = -1;
      for (; j < body.length; j++) {
        const ch = body[j];
        if (quote) {
          if (ch === '\\') j++;
          else if (ch === quote) quote = null;
          continue;
        }
        if (ch === "'" || ch === '"') quote = ch;
        else if (ch === '(' || ch === '[' || ch === '{') d++;
        else if (ch === ')' || ch === ']' || (ch === '}' && d > 0)) d--;
        else if (d === 0 && (ch === '}' || ch === ':' || (ch === '!' && body[j + 1] !== '='))) {
          exprEnd = j;
          break;
        }
      }
      if (exprEnd < 0) throw syntax("f-string: expecting '}'");
      let exprSrc = body.slice(i + 1, exprEnd);
      if (!exprSrc.trim()) throw syntax('f-string: valid expression required before }');
      let selfDoc = false;
      if (/=\s*$/.test(exprSrc) && !/[=!<>]=\s*$/.test(exprSrc)) {
        selfDoc = true;
        exprSrc = exprSrc.replace(/=\s*$/, '');
      }
      const value = parseExpression(exprSrc);
      j = exprEnd;
      let conversion = -1;
      if (body[j] === '!') {
        const cv = body[j + 1];
        if (cv !== 's' && cv !== 'r' && cv !== 'a') throw syntax("f-string: invalid conversion character: expected 's', 'r', or 'a'");
        conversion = cv.charCodeAt(0);
        j += 2;
      }
      let format_spec: Node | null = null;
      if (body[j] === ':') {
        // format spec until the matching '}' (may contain nested {expr})
        let k = j + 1;
        let nest = 0;
        for (; k < body.length; k++) {
          if (body[k] === '{') nest++;
          else if (body[k] === '}') {
            if (nest === 0) break;
            nest--;
          }
        }
        if (k >= body.length) throw syntax("f-string: expecting '}'");
        const specParts = parseFString(body.slice(j + 1, k), raw, depth + 1);
        format_spec = { k: 'JoinedStr', values: specParts.map((p) => (typeof p === 'string' ? { k: 'Constant', value: p } : p)) };
        j = k;
      }
      if (body[j] !== '}') throw syntax("f-string: expecting '}'");
      if (selfDoc) {
        out.push(body.slice(i + 1, exprEnd));
        if (conversion === -1 && !format_spec) conversion = 'r'.charCodeAt(0);
      }
      out.push({ k: 'FormattedValue', value, conversion, format_spec });
      i = j + 1;
      continue;
    }
    if (c === '}') {
      if (body[i + 1] === '}') {
        lit += '}';
        i += 2;
        continue;
      }
      throw syntax("f-string: single '}' is not allowed");
    }
    if (c === '\\' && !raw) {
      lit += c + (body[i + 1] ?? '');
      i += 2;
      continue;
    }
    lit += c;
    i++;
  }
  flushLit();
  return out;
}

/** Parses a single expression (the content of {{ }}). */
export function parseExpression(src: string): Node {
  const p = new Parser(tokenize(src));
  if (p.atEnd()) throw syntax();
  const e = p.starExpressions();
  p.expectEnd();
  if (e.k === 'Starred') throw syntax("can't use starred expression here");
  return e;
}

/** Parses a control statement: 'if x', 'elif x', 'while x', 'for a in b', 'except E as e', 'set' bodies. */
export function parseStatement(kind: 'if' | 'elif' | 'while' | 'for' | 'except' | 'set', src: string): Stmt {
  const p = new Parser(tokenize(src));
  if (kind === 'set') {
    if (p.atEnd()) throw syntax();
    return p.simpleStatement();
  }
  if (kind === 'if' || kind === 'elif' || kind === 'while') {
    if (p.atEnd()) throw syntax();
    const test = p.expression();
    p.expectEnd();
    return kind === 'while' ? { k: 'While', test } : { k: 'If', test };
  }
  if (kind === 'for') {
    const target = p.targetList();
    if (!p.eatKw('in')) throw syntax();
    const iter = p.starExpressions();
    p.expectEnd();
    return { k: 'For', target, iter };
  }
  // except [expr [as name]]
  if (p.atEnd()) return { k: 'Except', type: null, name: null };
  const type = p.expression();
  const name = p.eatKw('as') ? p.takeName() : null;
  p.expectEnd();
  return { k: 'Except', type, name };
}
