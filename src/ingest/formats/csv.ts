/**
 * Streaming CSV: text chunks in, records out (RFC 4180 quoting, custom delimiter, newline,
 * quote and escapechar), plus dialect and header guessing from a sample. The constructor
 * throws on unusable options; a line that cannot be parsed becomes a record with
 * `fields: null` and an `error`, and parsing resumes at the next newline.
 */
import { guessColumnType, isNullToken, matchTemporal } from './guess.js';

export interface CsvOptions {
  /** One character; default `,`. */
  delimiter?: string;
  /**
   * One or two characters ending a record. Default (and `\n`): `\n` with an optional `\r`
   * before it, so `\r\n` files work too. Any other value is matched exactly.
   */
  newline?: string;
  /** One character that makes the next character literal, inside or outside quotes. */
  escapechar?: string;
  /** One character; default `"`; `''` disables quoting. */
  quote?: string;
  /**
   * Longest record (in characters) held while waiting for its end; beyond it the record is
   * reported as an error and its first line skipped. Default 16 Mi characters.
   */
  maxRecordLength?: number;
}

/** A parsed record. `line` is the 1-based line where it starts; `raw` its text without the newline. */
export interface CsvRecord {
  fields: string[] | null;
  line: number;
  raw: string;
  error?: string;
}

export interface CsvDialect {
  delimiter: string;
  newline: string;
}

const LF = 10;
const CR = 13;
const DEFAULT_MAX_RECORD = 16 * 1024 * 1024;
const TOO_LONG = 'Record too long';

function oneChar(name: string, v: string | undefined, dflt: string, allowEmpty = false): string {
  const s = v ?? dflt;
  if (s.length === 1 || (allowEmpty && s === '')) return s;
  throw new Error(`The dialect ${name} must be a 1-character string`);
}

/**
 * Incremental CSV parser. Feed text with {@link push} (chunks may split anywhere, even inside
 * a quoted field or a two-character newline) and call {@link end} once at the end of input.
 *
 * Rules: fields are separated by the delimiter; a field starting with the quote character is
 * quoted (doubled quotes are literal, delimiters and newlines inside are data) and must be
 * followed by a delimiter, newline or the end of input; quotes elsewhere in an unquoted field
 * are literal. The escapechar makes the next character literal anywhere. Empty lines are
 * skipped; a leading BOM is dropped.
 *
 * @example
 * const p = new CsvParser({});
 * p.push('a,"b\n'); // []
 * p.push('c"\n1,2'); // [{ fields: ['a', 'b\nc'], line: 1, raw: 'a,"b\nc"' }]
 * p.end();           // [{ fields: ['1', '2'], line: 3, raw: '1,2' }]
 */
export class CsvParser {
  private buf = '';
  /** Line number of the first character of `buf`. */
  private line = 1;
  private started = false;
  private ended = false;
  /** After an over-long record without a newline: drop input up to the next newline. */
  private discarding = false;
  /** `[hintFrom, hintTo)` of `buf` holds no quote or escape char (set while inside a long quoted field). */
  private hintFrom = -1;
  private hintTo = -1;
  private useFrom = -1;
  private useTo = -1;

  private readonly delim: number;
  private readonly quote: number;
  private readonly quoteChar: string;
  private readonly esc: number;
  /** `\n` with optional preceding `\r`. */
  private readonly auto: boolean;
  private readonly nl: string;
  private readonly nl0: number;
  private readonly nl1: number;
  private readonly nlLen: number;
  private readonly maxLen: number;

  constructor(opts: CsvOptions = {}) {
    const delimiter = oneChar('delimiter', opts.delimiter, ',');
    const quote = oneChar('quote', opts.quote, '"', true);
    // biome-ignore lint/suspicious/noShadowRestrictedNames: the dialect's own name for it
    const escape = opts.escapechar === undefined || opts.escapechar === '' ? '' : oneChar('escapechar', opts.escapechar, '');
    const newline = opts.newline ?? '\n';
    if (newline.length < 1 || newline.length > 2) throw new Error('The dialect new_line must be a 1 or 2-character string');
    if (newline.includes(delimiter) || (quote !== '' && newline.includes(quote)) || (escape !== '' && newline.includes(escape)))
      throw new Error('The dialect new_line must not contain the delimiter, quote or escape character');
    if (delimiter === quote || delimiter === escape) throw new Error('The dialect delimiter must differ from the quote and escape characters');
    this.delim = delimiter.charCodeAt(0);
    this.quoteChar = quote;
    this.quote = quote === '' ? -1 : quote.charCodeAt(0);
    // An escapechar equal to the quote is plain RFC 4180 doubling.
    this.esc = escape === '' || escape === quote ? -1 : escape.charCodeAt(0);
    this.auto = newline === '\n';
    this.nl = newline;
    this.nl0 = newline.charCodeAt(0);
    this.nl1 = newline.length === 2 ? newline.charCodeAt(1) : -1;
    this.nlLen = this.auto ? 1 : newline.length;
    this.maxLen = opts.maxRecordLength ?? DEFAULT_MAX_RECORD;
  }

  /** Adds text and returns the records it completed. */
  push(chunk: string): CsvRecord[] {
    if (this.ended) throw new Error('CsvParser.push() after end()');
    if (chunk.length === 0) return [];
    if (!this.started) {
      this.started = true;
      if (chunk.charCodeAt(0) === 0xfeff) chunk = chunk.slice(1);
    }
    this.buf = this.buf.length === 0 ? chunk : this.buf + chunk;
    return this.parse(false);
  }

  /** Ends the input and returns the remaining records (an unterminated quote becomes an error). */
  end(): CsvRecord[] {
    if (this.ended) return [];
    this.ended = true;
    const out = this.parse(true);
    this.buf = '';
    return out;
  }

  private parse(final: boolean): CsvRecord[] {
    const out: CsvRecord[] = [];
    let s = this.buf;
    // The hint describes this buffer as left by the previous call; use it once.
    this.useFrom = this.hintFrom;
    this.useTo = this.hintTo;
    this.hintFrom = this.hintTo = -1;
    if (this.discarding) {
      const e = this.findNewline(s, 0);
      if (e < 0) {
        // Keep a possible first half of a two-character newline.
        this.buf = !final && this.nl1 >= 0 && s.charCodeAt(s.length - 1) === this.nl0 ? s.slice(-1) : '';
        if (final) this.discarding = false;
        return out;
      }
      s = s.slice(e + this.nlLen);
      this.discarding = false;
      this.useFrom = this.useTo = -1;
      this.line++;
    }
    const n = s.length;
    let pos = 0;
    while (pos < n) {
      const next = this.record(s, pos, n, final, out);
      if (next < 0) break;
      pos = next;
      if (this.discarding) break;
    }
    this.buf = pos === 0 ? s : pos < n ? s.slice(pos) : '';
    return out;
  }

  /** Index of the first newline at or after `from` (ignoring quotes), or -1. */
  private findNewline(s: string, from: number): number {
    return this.auto ? s.indexOf('\n', from) : s.indexOf(this.nl, from);
  }

  /** End of a line's content, dropping the `\r` of a `\r\n` in auto mode. */
  private contentEnd(s: string, start: number, nlAt: number): number {
    return this.auto && nlAt > start && s.charCodeAt(nlAt - 1) === CR ? nlAt - 1 : nlAt;
  }

  private emit(out: CsvRecord[], fields: string[], s: string, start: number, end: number, extraLines: number): void {
    if (!(end === start && fields.length === 1 && fields[0] === '')) {
      out.push({ fields, line: this.line, raw: s.slice(start, end) });
    }
    this.line += 1 + extraLines;
  }

  /** Reports the record at `start` as invalid and resumes after the end of its first line. */
  private fail(s: string, start: number, n: number, final: boolean, out: CsvRecord[], error: string): number {
    const e = this.findNewline(s, start);
    if (e < 0) {
      if (!final) {
        if (n - start <= this.maxLen) return -1; // wait for the end of the line
        const msg = error === TOO_LONG ? error : `${error} (${TOO_LONG.toLowerCase()})`;
        out.push({ fields: null, line: this.line, raw: s.slice(start, n), error: msg });
        this.discarding = true;
        // The newline that ends this line may start with the last character.
        return this.nl1 >= 0 && s.charCodeAt(n - 1) === this.nl0 ? n - 1 : n;
      }
      out.push({ fields: null, line: this.line, raw: s.slice(start, this.contentEnd(s, start, n)), error });
      this.line++;
      return n;
    }
    out.push({ fields: null, line: this.line, raw: s.slice(start, this.contentEnd(s, start, e)), error });
    this.line++;
    return e + this.nlLen;
  }

  /**
   * Length of the newline starting at `p` (0 if none). -1 when the input ends in the middle
   * of what may be a newline and more may come.
   */
  private newlineAt(s: string, p: number, n: number, final: boolean): number {
    const c = s.charCodeAt(p);
    if (this.auto) {
      if (c === LF) return 1;
      if (c !== CR) return 0;
      if (p + 1 >= n) return final ? 1 : -1;
      return s.charCodeAt(p + 1) === LF ? 2 : 0;
    }
    if (c !== this.nl0) return 0;
    if (this.nl1 < 0) return 1;
    if (p + 1 >= n) return final ? 0 : -1;
    return s.charCodeAt(p + 1) === this.nl1 ? 2 : 0;
  }

  private countNewlines(v: string): number {
    let k = 0;
    const nl = this.auto ? '\n' : this.nl;
    for (let i = v.indexOf(nl); i >= 0; i = v.indexOf(nl, i + nl.length)) k++;
    return k;
  }

  /** First quote or escape char at or after `j`, or -1. */
  private findSpecial(s: string, j: number, n: number): number {
    if (this.esc < 0) return s.indexOf(this.quoteChar, j);
    const q = this.quote;
    const e = this.esc;
    for (; j < n; j++) {
      const c = s.charCodeAt(j);
      if (c === q || c === e) return j;
    }
    return -1;
  }

  /**
   * Parses the record starting at `start`. Returns the position after it, or -1 when the
   * record is not complete yet (only when `final` is false).
   */
  private record(s: string, start: number, n: number, final: boolean, out: CsvRecord[]): number {
    const delim = this.delim;
    const quote = this.quote;
    const esc = this.esc;
    const nl0 = this.nl0;
    const auto = this.auto;
    const fields: string[] = [];
    let extraLines = 0;
    let p = start;

    for (;;) {
      if (p < n && s.charCodeAt(p) === quote) {
        // ---- quoted field
        let seg = p + 1;
        let j = seg;
        if (start === 0 && j >= this.useFrom && j < this.useTo) j = this.useTo;
        let parts: string[] | null = null;
        for (;;) {
          const k = this.findSpecial(s, j, n);
          if (k < 0) {
            if (!final && n - start <= this.maxLen) {
              this.hintFrom = j - start;
              this.hintTo = n - start;
              return -1;
            }
            return this.fail(s, start, n, final, out, 'Unterminated quoted field');
          }
          if (s.charCodeAt(k) !== quote) {
            // escapechar: the next character is literal
            if (k + 1 >= n) {
              if (!final) return -1;
              return this.fail(s, start, n, final, out, 'Unterminated quoted field');
            }
            (parts ??= []).push(s.slice(seg, k), s.charAt(k + 1));
            seg = j = k + 2;
            continue;
          }
          if (k + 1 >= n) {
            if (!final) return -1; // a doubled quote may follow
            const v = parts ? (parts.push(s.slice(seg, k)), parts.join('')) : s.slice(seg, k);
            fields.push(v);
            this.emit(out, fields, s, start, n, extraLines + this.countNewlines(v));
            return n;
          }
          const d = s.charCodeAt(k + 1);
          if (d === quote) {
            (parts ??= []).push(s.slice(seg, k + 1));
            seg = j = k + 2;
            continue;
          }
          const v = parts ? (parts.push(s.slice(seg, k)), parts.join('')) : s.slice(seg, k);
          fields.push(v);
          extraLines += this.countNewlines(v);
          p = k + 1;
          if (d === delim) {
            p++;
            break;
          }
          const t = this.newlineAt(s, p, n, final);
          if (t < 0) return -1;
          if (t > 0) {
            this.emit(out, fields, s, start, p, extraLines);
            return p + t;
          }
          return this.fail(s, start, n, final, out, 'Unexpected character after a closing quote');
        }
        continue;
      }

      // ---- unquoted field
      let seg = p;
      let j = p;
      let parts: string[] | null = null;
      for (;;) {
        if (j >= n) {
          if (!final) {
            if (n - start > this.maxLen) return this.fail(s, start, n, final, out, TOO_LONG);
            return -1;
          }
          const end = this.contentEnd(s, seg, n);
          const v = parts ? (parts.push(s.slice(seg, end)), parts.join('')) : s.slice(seg, end);
          fields.push(v);
          if (parts) extraLines += this.countNewlines(v);
          this.emit(out, fields, s, start, this.contentEnd(s, start, n), extraLines);
          return n;
        }
        const c = s.charCodeAt(j);
        if (c === delim) {
          if (parts) {
            parts.push(s.slice(seg, j));
            const v = parts.join('');
            extraLines += this.countNewlines(v);
            fields.push(v);
          } else fields.push(s.slice(seg, j));
          p = j + 1;
          break;
        }
        if (c === nl0) {
          let t = this.nlLen;
          if (this.nl1 >= 0) {
            if (j + 1 >= n) {
              if (!final) return -1;
              t = 0;
            } else if (s.charCodeAt(j + 1) !== this.nl1) t = 0;
          }
          if (t > 0) {
            const end = auto ? this.contentEnd(s, seg, j) : j;
            const v = parts ? (parts.push(s.slice(seg, end)), parts.join('')) : s.slice(seg, end);
            fields.push(v);
            if (parts) extraLines += this.countNewlines(v);
            this.emit(out, fields, s, start, auto ? this.contentEnd(s, start, j) : j, extraLines);
            return j + t;
          }
        } else if (c === esc) {
          if (j + 1 >= n) {
            if (!final) return -1;
            j++; // a trailing escapechar is kept as is
            continue;
          }
          (parts ??= []).push(s.slice(seg, j), s.charAt(j + 1));
          seg = j = j + 2;
          continue;
        }
        j++;
      }
    }
  }
}

const CANDIDATE_DELIMITERS = [',', ';', '\t', '|'];
const SNIFF_RECORDS = 200;

/**
 * Guesses the delimiter (`,` `;` `\t` `|`) and newline of a CSV sample. Each candidate parses
 * the first records (quotes honoured); the winner has the largest share of records with the
 * most common field count, that count being above 1. Ties keep the order above; no winner
 * gives `,`. Newline: `\r\n` if every `\n` follows a `\r`, `\r` if the sample has only `\r`,
 * else `\n` (which the parser also accepts for `\r\n`).
 *
 * @example guessDialect('a;b\n1,5;2\n') // { delimiter: ';', newline: '\n' }
 */
export function guessDialect(sample: string): CsvDialect {
  const text = sample.charCodeAt(0) === 0xfeff ? sample.slice(1) : sample;
  let newline = '\n';
  const lf = text.indexOf('\n');
  if (lf < 0) {
    if (text.includes('\r')) newline = '\r';
  } else {
    let crlfOnly = true;
    for (let i = lf; i >= 0; i = text.indexOf('\n', i + 1)) {
      if (i === 0 || text.charCodeAt(i - 1) !== CR) {
        crlfOnly = false;
        break;
      }
    }
    if (crlfOnly) newline = '\r\n';
  }

  let best = ',';
  let bestScore = 0;
  for (const delimiter of CANDIDATE_DELIMITERS) {
    const p = new CsvParser({ delimiter, newline: newline === '\r' ? '\r' : '\n' });
    let recs = p.push(text);
    if (recs.length === 0) recs = p.end();
    recs = recs.slice(0, SNIFF_RECORDS);
    if (recs.length === 0) continue;
    const counts = new Map<number, number>();
    let mode = 0;
    let modeCount = 0;
    for (const r of recs) {
      const w = r.fields ? r.fields.length : -1;
      const c = (counts.get(w) ?? 0) + 1;
      counts.set(w, c);
      if (c > modeCount || (c === modeCount && w > mode)) {
        mode = w;
        modeCount = c;
      }
    }
    const score = mode > 1 ? modeCount / recs.length : 0;
    if (score > bestScore) {
      best = delimiter;
      bestScore = score;
    }
  }
  return { delimiter: best, newline };
}

/** Text that reads like a column name: starts with a letter or `_`, then word characters and ` .-()/#`. */
const NAME_LIKE = /^[A-Za-z_][A-Za-z0-9_ .\-()/#]{0,63}$/;

/**
 * Whether the first of the parsed rows is a header. Heuristic (votes; header when > 0):
 * 1. The first row must be all non-empty, distinct, and none of its cells may be a number,
 *    date or date-time — otherwise it is data.
 * 2. With no other rows: header only if every cell looks like a name (`NAME_LIKE`).
 * 3. For each column, looking at the other rows: values typed as a number/date (+2, the
 *    header cell is text above typed data); text values that include the header cell (-1,
 *    names rarely repeat as values); text values mostly not name-like (emails, URLs,
 *    sentences) under a name-like header cell (+1).
 *
 * @example hasHeader([['id', 'name'], ['1', 'a']]) // true
 */
export function hasHeader(rows: readonly string[][]): boolean {
  if (rows.length === 0) return false;
  const first = rows[0];
  if (first.length === 0) return false;
  const seen = new Set<string>();
  for (const cell of first) {
    if (isNullToken(cell)) return false;
    const key = cell.trim().toLowerCase();
    if (seen.has(key)) return false;
    seen.add(key);
    if (guessColumnType([cell.trim()]).type !== 'String' || matchTemporal(cell.trim())) return false;
  }
  if (rows.length === 1) return first.every((c) => NAME_LIKE.test(c.trim()));
  let votes = 0;
  for (let i = 0; i < first.length; i++) {
    const values: string[] = [];
    for (let r = 1; r < rows.length; r++) {
      const v = rows[r][i];
      if (!isNullToken(v)) values.push(v);
    }
    if (values.length === 0) continue;
    const t = guessColumnType(values).type;
    if (t !== 'String') {
      votes += 2;
      continue;
    }
    const h = first[i];
    if (values.includes(h)) {
      votes -= 1;
      continue;
    }
    if (NAME_LIKE.test(h.trim())) {
      let odd = 0;
      for (const v of values) if (!NAME_LIKE.test(v.trim())) odd++;
      if (odd * 2 >= values.length) votes += 1;
    }
  }
  return votes > 0;
}
