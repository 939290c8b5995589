/**
 * A ClickHouse-compatible SQL lexer. It follows the token rules of ClickHouse's own Lexer
 * (src/Parsers/Lexer.cpp) closely enough that every token boundary it finds is the boundary the
 * engine finds: string and quoted-identifier escapes, heredocs, nested block comments, the
 * "dot after an identifier is an operator, not a number" rule, `#` comments only before a space
 * or `!`. Anything it does not recognise (stray characters, non-ASCII outside literals, query
 * parameters) is an error rather than a guess: the safety layer must never disagree with the
 * engine about what is code and what is data.
 *
 * Comments are dropped and runs of whitespace are recorded as a flag on the next token, so the
 * statement handed to the engine is re-serialised from exactly the tokens that were checked.
 */

export type TokenType = 'word' | 'qident' | 'string' | 'number' | 'op' | 'param' | 'eof';

export interface Token {
  type: TokenType;
  /** Source text of the token, verbatim. */
  text: string;
  /** Offset in the source. */
  pos: number;
  /** Whitespace or a comment separated this token from the previous one. */
  spaced: boolean;
  /** Upper-cased text for words (keyword comparison). */
  upper: string;
}

export class SqlSyntaxError extends Error {
  constructor(
    message: string,
    readonly pos: number,
  ) {
    super(message);
    this.name = 'SqlSyntaxError';
  }
}

const OPERATORS = [
  '<=>',
  '::',
  '->',
  '==',
  '!=',
  '<>',
  '<=',
  '>=',
  '||',
  '(',
  ')',
  '[',
  ']',
  ',',
  ';',
  '.',
  '*',
  '+',
  '-',
  '/',
  '%',
  '?',
  ':',
  '=',
  '<',
  '>',
  '^',
];

const isDigit = (c: string) => c >= '0' && c <= '9';
const isWordStart = (c: string) => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_';
const isWordChar = (c: string) => isWordStart(c) || isDigit(c);
/**
 * ASCII whitespace, and the Unicode spaces SQL pasted from documents carries (no-break, en/em,
 * thin, ideographic...), which ClickHouse skips too. They only ever separate tokens: the
 * re-serialised statement has plain spaces. Line/paragraph separators and zero-width characters
 * stay errors.
 */
const isSpace = (c: string) =>
  c === ' ' ||
  c === '\t' ||
  c === '\n' ||
  c === '\r' ||
  c === '\f' ||
  c === '\v' ||
  c === '\u00a0' ||
  (c >= '\u2000' && c <= '\u200a') ||
  c === '\u202f' ||
  c === '\u205f' ||
  c === '\u3000';

/** End offset (exclusive) of a quoted token starting at `start` with quote char `q`. */
function quotedEnd(src: string, start: number, q: string, what: string): number {
  let i = start + 1;
  for (;;) {
    if (i >= src.length) throw new SqlSyntaxError(`unterminated ${what} starting at position ${start + 1}`, start);
    const c = src[i];
    if (c === '\\') {
      i += 2;
      continue;
    }
    if (c === q) {
      if (src[i + 1] === q) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i++;
  }
}

export interface LexOptions {
  /**
   * Engine query parameters the server itself binds (template secrets): `{name:String}` is a
   * token only for these names; any other `{` is an error.
   */
  params?: ReadonlySet<string>;
}

/** Splits SQL into tokens; throws SqlSyntaxError on anything it cannot classify. */
export function tokenize(src: string, opts: LexOptions = {}): Token[] {
  const out: Token[] = [];
  let i = 0;
  let spaced = false;
  const push = (type: TokenType, end: number) => {
    const text = src.slice(i, end);
    out.push({ type, text, pos: i, spaced, upper: type === 'word' ? text.toUpperCase() : text });
    spaced = false;
    i = end;
  };
  const prevType = () => (out.length ? out[out.length - 1] : undefined);

  while (i < src.length) {
    const c = src[i];
    const n = src[i + 1];
    if (isSpace(c)) {
      spaced = true;
      i++;
      continue;
    }
    if (c === '-' && n === '-') {
      const e = src.indexOf('\n', i);
      i = e < 0 ? src.length : e + 1;
      spaced = true;
      continue;
    }
    if (c === '#') {
      if (n !== ' ' && n !== '!') throw new SqlSyntaxError(`unexpected character '#' at position ${i + 1}`, i);
      const e = src.indexOf('\n', i);
      i = e < 0 ? src.length : e + 1;
      spaced = true;
      continue;
    }
    if (c === '/' && n === '*') {
      let depth = 1;
      let j = i + 2;
      while (depth > 0) {
        if (j >= src.length) throw new SqlSyntaxError(`unterminated comment starting at position ${i + 1}`, i);
        if (src[j] === '/' && src[j + 1] === '*') {
          depth++;
          j += 2;
        } else if (src[j] === '*' && src[j + 1] === '/') {
          depth--;
          j += 2;
        } else j++;
      }
      i = j;
      spaced = true;
      continue;
    }
    if (c === "'") {
      push('string', quotedEnd(src, i, "'", 'string literal'));
      continue;
    }
    if (c === '`' || c === '"') {
      push('qident', quotedEnd(src, i, c, 'quoted identifier'));
      continue;
    }
    if (c === '$') {
      // Heredoc: $tag$ ... $tag$ (tag may be empty).
      let j = i + 1;
      while (j < src.length && isWordChar(src[j])) j++;
      if (src[j] !== '$') throw new SqlSyntaxError(`unexpected character '$' at position ${i + 1}`, i);
      const tag = src.slice(i, j + 1);
      const e = src.indexOf(tag, j + 1);
      if (e < 0) throw new SqlSyntaxError(`unterminated heredoc starting at position ${i + 1}`, i);
      push('string', e + tag.length);
      continue;
    }
    const prev = prevType();
    const dotIsOperator =
      c === '.' &&
      (!isDigit(n ?? '') ||
        (prev !== undefined && (prev.type === 'word' || prev.type === 'qident' || prev.type === 'number' || prev.text === ')' || prev.text === ']')));
    if (isDigit(c) || (c === '.' && !dotIsOperator)) {
      const m =
        /^(?:0[xX][0-9a-fA-F_]+(?:\.[0-9a-fA-F_]*)?(?:[pP][+-]?[0-9_]+)?|0[bB][01_]+|(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9_]+)?)/.exec(
          src.slice(i, i + 400),
        );
      if (!m) throw new SqlSyntaxError(`malformed number at position ${i + 1}`, i);
      const end = i + m[0].length;
      if (end < src.length && isWordChar(src[end])) {
        // ClickHouse reads `1e`/`123abc` as an error, except `inf`/`nan` handled as words.
        throw new SqlSyntaxError(`malformed number at position ${i + 1}`, i);
      }
      push('number', end);
      continue;
    }
    if (isWordStart(c)) {
      let j = i + 1;
      while (j < src.length && (isWordChar(src[j]) || src[j] === '$')) j++;
      push('word', j);
      continue;
    }
    const op = OPERATORS.find((o) => src.startsWith(o, i));
    if (op) {
      push('op', i + op.length);
      continue;
    }
    if (c === '{' && opts.params?.size) {
      const m = /^\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*String\s*\}/.exec(src.slice(i, i + 200));
      if (m && opts.params.has(m[1])) {
        out.push({ type: 'param', text: `{${m[1]}:String}`, pos: i, spaced, upper: '' });
        spaced = false;
        i += m[0].length;
        continue;
      }
    }
    if (c === '{' || c === '}') {
      throw new SqlSyntaxError(`query parameters ({name:Type}) are not supported at position ${i + 1}; use a template (a query starting with %) instead`, i);
    }
    const code = c.codePointAt(0) ?? 0;
    const shown = code < 32 || code > 126 ? `U+${code.toString(16).toUpperCase().padStart(4, '0')}` : `'${c}'`;
    throw new SqlSyntaxError(`unexpected character ${shown} at position ${i + 1}`, i);
  }
  out.push({ type: 'eof', text: '', pos: src.length, spaced, upper: '' });
  return out;
}

/** The name a word or quoted identifier denotes. Escapes other than quote/backslash are refused. */
export function identName(t: Token): string {
  if (t.type === 'word') return t.text;
  if (t.type !== 'qident') throw new SqlSyntaxError(`expected an identifier at position ${t.pos + 1}`, t.pos);
  return unquote(t.text, t.pos);
}

/** Value of a string literal token (quoted or heredoc). */
export function stringValue(t: Token): string {
  if (t.text.startsWith('$')) {
    const tagEnd = t.text.indexOf('$', 1);
    return t.text.slice(tagEnd + 1, t.text.length - tagEnd - 1);
  }
  return unquote(t.text, t.pos);
}

const SIMPLE_ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '0': '\0', b: '\b', f: '\f', '\\': '\\', "'": "'", '"': '"', '`': '`' };

function unquote(text: string, pos: number): string {
  const q = text[0];
  let out = '';
  for (let i = 1; i < text.length - 1; i++) {
    const c = text[i];
    if (c === '\\') {
      const e = text[++i];
      const v = SIMPLE_ESCAPES[e];
      if (v === undefined) throw new SqlSyntaxError(`unsupported escape sequence '\\${e}' at position ${pos + i}`, pos + i);
      out += v;
    } else if (c === q && text[i + 1] === q) {
      out += q;
      i++;
    } else out += c;
  }
  return out;
}

/** Quotes a name as a ClickHouse identifier (always backticks, so keywords are safe too). */
export function quoteName(name: string): string {
  return '`' + name.replace(/\\/g, '\\\\').replace(/`/g, '\\`') + '`';
}

/** Quotes a string as a ClickHouse string literal. */
export function quoteLiteral(value: string): string {
  return "'" + value.replace(/\\/g, '\\\\').replace(/'/g, "\\'") + "'";
}
