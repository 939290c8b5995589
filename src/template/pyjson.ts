/**
 * A JSON parser that behaves like Python's json.loads: ints stay ints (bigint), floats are floats,
 * NaN/Infinity are accepted, and errors carry Python's messages ("Expecting value: line 1 column 1 (char 0)").
 */
import { LimitError } from './errors.js';
import { reprStr } from './pyfmt.js';
import { PyDict, type PyValue } from './values.js';

export class JSONDecodeError extends Error {
  constructor(msg: string, doc: string, pos: number) {
    const lineno = countNewlines(doc, pos) + 1;
    const lastNl = doc.lastIndexOf('\n', pos - 1);
    const colno = lastNl === -1 ? pos + 1 : pos - lastNl;
    super(`${msg}: line ${lineno} column ${colno} (char ${pos})`);
  }
}

function countNewlines(s: string, end: number): number {
  let n = 0;
  for (let i = 0; i < end && i < s.length; i++) if (s.charCodeAt(i) === 10) n++;
  return n;
}

const WS = /[ \t\n\r]*/y;
const NUMBER = /(-?(?:0|[1-9]\d*))(\.\d+)?([eE][-+]?\d+)?/y;
const MAX_DEPTH = 200;
/** The literals Python's json module reads besides numbers, strings, arrays and objects (in the order it tries them). */
const CONSTANTS: ReadonlyArray<[string, PyValue]> = [
  ['null', null],
  ['true', true],
  ['false', false],
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
  ['-Infinity', Number.NEGATIVE_INFINITY],
];

export function loads(doc: string): PyValue {
  let pos = 0;
  const skip = () => {
    WS.lastIndex = pos;
    WS.exec(doc);
    pos = WS.lastIndex;
  };

  const parseString = (): string => {
    const begin = pos - 1;
    let out = '';
    for (;;) {
      let j = pos;
      while (j < doc.length) {
        const c = doc.charCodeAt(j);
        if (c === 34 || c === 92 || c < 32) break;
        j++;
      }
      out += doc.slice(pos, j);
      pos = j;
      if (pos >= doc.length) throw new JSONDecodeError('Unterminated string starting at', doc, begin);
      const c = doc[pos];
      if (c === '"') {
        pos++;
        return out;
      }
      if (c !== '\\') throw new JSONDecodeError('Invalid control character at', doc, pos);
      const esc = doc[pos + 1];
      if (esc === undefined) throw new JSONDecodeError('Unterminated string starting at', doc, begin);
      const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
      if (esc !== 'u') {
        if (!(esc in simple)) throw new JSONDecodeError(`Invalid \\escape: ${reprStr(esc)}`, doc, pos);
        out += simple[esc];
        pos += 2;
        continue;
      }
      const hex = doc.slice(pos + 2, pos + 6);
      if (!/^[0-9a-fA-F]{4}$/.test(hex)) throw new JSONDecodeError('Invalid \\uXXXX escape', doc, pos + 1);
      let cp = parseInt(hex, 16);
      pos += 6;
      if (cp >= 0xd800 && cp <= 0xdbff && doc[pos] === '\\' && doc[pos + 1] === 'u') {
        const hex2 = doc.slice(pos + 2, pos + 6);
        if (/^[0-9a-fA-F]{4}$/.test(hex2)) {
          const lo = parseInt(hex2, 16);
          if (lo >= 0xdc00 && lo <= 0xdfff) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            pos += 6;
          }
        }
      }
      out += String.fromCodePoint(cp);
    }
  };

  /** The comma-separated members of an object or array, each read by `member`, through its closing `close`. */
  const members = (close: string, member: () => void): void => {
    skip();
    if (doc[pos] === close) {
      pos++;
      return;
    }
    for (;;) {
      member();
      skip();
      if (doc[pos] === close) {
        pos++;
        return;
      }
      if (doc[pos] !== ',') throw new JSONDecodeError("Expecting ',' delimiter", doc, pos);
      pos++;
      skip();
    }
  };

  const parseValue = (depth: number): PyValue => {
    if (depth > MAX_DEPTH) throw new LimitError('Template Syntax Error: JSON value nested too deeply');
    const c = doc[pos];
    if (c === '"') {
      pos++;
      return parseString();
    }
    if (c === '{') {
      pos++;
      const d = new PyDict();
      members('}', () => {
        if (doc[pos] !== '"') throw new JSONDecodeError('Expecting property name enclosed in double quotes', doc, pos);
        pos++;
        const key = parseString();
        skip();
        if (doc[pos] !== ':') throw new JSONDecodeError("Expecting ':' delimiter", doc, pos);
        pos++;
        skip();
        d.set(key, parseValue(depth + 1));
      });
      return d;
    }
    if (c === '[') {
      pos++;
      const arr: PyValue[] = [];
      members(']', () => arr.push(parseValue(depth + 1)));
      return arr;
    }
    for (const [word, value] of CONSTANTS) {
      if (doc.startsWith(word, pos)) {
        pos += word.length;
        return value;
      }
    }
    NUMBER.lastIndex = pos;
    const m = NUMBER.exec(doc);
    if (m?.[0]) {
      pos = NUMBER.lastIndex;
      if (m[2] || m[3]) return Number(m[0]);
      return BigInt(m[1]);
    }
    throw new JSONDecodeError('Expecting value', doc, pos);
  };

  skip();
  const v = parseValue(0);
  skip();
  if (pos !== doc.length) throw new JSONDecodeError('Extra data', doc, pos);
  return v;
}
