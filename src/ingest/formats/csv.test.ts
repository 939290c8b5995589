import { describe, expect, it } from 'vitest';
import { CsvParser, guessDialect, hasHeader, type CsvOptions, type CsvRecord } from './csv.js';

function parseAll(text: string, opts: CsvOptions = {}): CsvRecord[] {
  const p = new CsvParser(opts);
  return [...p.push(text), ...p.end()];
}

function parseSplit(text: string, cuts: number[], opts: CsvOptions = {}): CsvRecord[] {
  const p = new CsvParser(opts);
  const out: CsvRecord[] = [];
  let prev = 0;
  for (const c of [...cuts, text.length]) {
    out.push(...p.push(text.slice(prev, c)));
    prev = c;
  }
  out.push(...p.end());
  return out;
}

const fields = (recs: CsvRecord[]) => recs.map((r) => r.fields);

/** Small deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomCuts(len: number, rand: () => number): number[] {
  const cuts: number[] = [];
  let i = 0;
  while (i < len) {
    i += 1 + Math.floor(rand() * 7);
    if (i < len) cuts.push(i);
  }
  return cuts;
}

describe('CsvParser: basics and RFC 4180 quoting', () => {
  it('parses simple records with \\n and \\r\\n and a last line without newline', () => {
    expect(fields(parseAll('a,b,c\n1,2,3\r\n4,5,6'))).toEqual([
      ['a', 'b', 'c'],
      ['1', '2', '3'],
      ['4', '5', '6'],
    ]);
  });

  it('keeps empty fields, including a trailing delimiter', () => {
    expect(fields(parseAll(',a,,\n'))).toEqual([['', 'a', '', '']]);
    expect(fields(parseAll('a,'))).toEqual([['a', '']]);
  });

  it('handles doubled quotes, delimiters and newlines inside quotes', () => {
    const recs = parseAll('"a ""quoted"" word","x,y","line1\nline2","",z\n');
    expect(recs).toEqual([{ fields: ['a "quoted" word', 'x,y', 'line1\nline2', '', 'z'], line: 1, raw: '"a ""quoted"" word","x,y","line1\nline2","",z' }]);
  });

  it('keeps \\r\\n inside quoted fields and strips the record terminator', () => {
    expect(fields(parseAll('"a\r\nb",c\r\n'))).toEqual([['a\r\nb', 'c']]);
  });

  it('treats quotes inside unquoted fields as literal', () => {
    expect(fields(parseAll('ab"c,5 "in" ch\n'))).toEqual([['ab"c', '5 "in" ch']]);
  });

  it('accepts a quoted last field at end of input and a lone quoted empty field', () => {
    expect(fields(parseAll('1,"x"'))).toEqual([['1', 'x']]);
    expect(fields(parseAll('""\n'))).toEqual([['']]);
  });

  it('skips empty lines but counts them for line numbers', () => {
    const recs = parseAll('\n\na,b\r\n\r\n\nc,d\n\n');
    expect(recs.map((r) => [r.line, r.raw])).toEqual([
      [3, 'a,b'],
      [6, 'c,d'],
    ]);
  });

  it('keeps a whitespace-only line (it is not empty)', () => {
    expect(fields(parseAll('a\n \nb'))).toEqual([['a'], [' '], ['b']]);
  });

  it('numbers lines across multi-line quoted fields', () => {
    const recs = parseAll('h1,h2\n"a\nb\nc",1\nx,2\n');
    expect(recs.map((r) => r.line)).toEqual([1, 2, 5]);
  });

  it('strips a leading BOM only', () => {
    expect(fields(parseAll('\uFEFFa,b\n\uFEFFc,d'))).toEqual([
      ['a', 'b'],
      ['\uFEFFc', 'd'],
    ]);
    const p = new CsvParser();
    expect(p.push('')).toEqual([]);
    p.push('\uFEFF"x"');
    expect(fields(p.end())).toEqual([['x']]);
  });

  it('returns nothing for empty input', () => {
    expect(parseAll('')).toEqual([]);
    expect(parseAll('\n\r\n')).toEqual([]);
  });

  it('refuses push() after end()', () => {
    const p = new CsvParser();
    p.end();
    expect(() => p.push('a')).toThrow(/after end/);
    expect(p.end()).toEqual([]);
  });
});

describe('CsvParser: invalid lines and resynchronisation', () => {
  it('reports garbage after a closing quote and continues on the next line', () => {
    const recs = parseAll('1,2\n"bad"x,3\n4,5\n');
    expect(recs).toEqual([
      { fields: ['1', '2'], line: 1, raw: '1,2' },
      { fields: null, line: 2, raw: '"bad"x,3', error: 'Unexpected character after a closing quote' },
      { fields: ['4', '5'], line: 3, raw: '4,5' },
    ]);
  });

  it('reports an unterminated quote at end of input and recovers the following lines', () => {
    const recs = parseAll('a,"never closed\nb,1\nc,2');
    expect(recs).toEqual([
      { fields: null, line: 1, raw: 'a,"never closed', error: 'Unterminated quoted field' },
      { fields: ['b', '1'], line: 2, raw: 'b,1' },
      { fields: ['c', '2'], line: 3, raw: 'c,2' },
    ]);
  });

  it('recovers from a stray quote that swallows lines until a later quote', () => {
    // The quote opened on line 1 closes on line 3 followed by garbage: only line 1 is lost.
    const recs = parseAll('1,"ab\n3,4\n5,"6\n7,8\n');
    expect(recs.map((r) => [r.line, r.fields, r.error ?? null])).toEqual([
      [1, null, 'Unexpected character after a closing quote'],
      [2, ['3', '4'], null],
      [3, null, 'Unterminated quoted field'],
      [4, ['7', '8'], null],
    ]);
  });

  it('resynchronises in the middle of the stream with chunked input', () => {
    const text = 'x,"y"z\r\nok,1\r\n';
    const expected = parseAll(text);
    expect(expected.map((r) => r.raw)).toEqual(['x,"y"z', 'ok,1']);
    for (let i = 1; i < text.length; i++) expect(parseSplit(text, [i])).toEqual(expected);
  });

  it('gives up on an over-long quoted field while streaming and skips its first line', () => {
    const p = new CsvParser({ maxRecordLength: 20 });
    const out: CsvRecord[] = [];
    out.push(...p.push('a,"open\n'));
    for (let i = 0; i < 10; i++) out.push(...p.push(`r${i},${i}\n`));
    out.push(...p.end());
    expect(out[0]).toMatchObject({ fields: null, line: 1, raw: 'a,"open', error: 'Unterminated quoted field' });
    expect(out.slice(1).map((r) => r.fields)).toEqual(Array.from({ length: 10 }, (_, i) => [`r${i}`, `${i}`]));
    expect(out[1].line).toBe(2);
  });

  it('discards an over-long line without newline until the next newline', () => {
    const p = new CsvParser({ maxRecordLength: 10 });
    const out: CsvRecord[] = [];
    out.push(...p.push('ok,1\n'));
    for (let i = 0; i < 5; i++) out.push(...p.push('xxxxxxxxxx'));
    out.push(...p.push('tail\nnext,2\n'));
    out.push(...p.end());
    expect(out.map((r) => [r.line, r.fields, r.error ?? null])).toEqual([
      [1, ['ok', '1'], null],
      [2, null, 'Record too long'],
      [3, ['next', '2'], null],
    ]);
  });

  it('keeps the first half of a two-character newline when an over-long quoted record is dropped', () => {
    const p = new CsvParser({ maxRecordLength: 3, newline: ';;' });
    const out = [...p.push('"abcdef;'), ...p.push(';x;;'), ...p.end()];
    expect(out.map((r) => [r.line, r.fields, r.error ?? null])).toEqual([
      [1, null, 'Unterminated quoted field (record too long)'],
      [2, ['x'], null],
    ]);
  });

  it('handles discard mode with a two-character newline split across chunks', () => {
    const p = new CsvParser({ maxRecordLength: 4, newline: '\r\n' });
    const out = [...p.push('abcdefgh'), ...p.push('ij\r'), ...p.push('\nz,1\r\n'), ...p.end()];
    expect(out.map((r) => [r.line, r.fields])).toEqual([
      [1, null],
      [2, ['z', '1']],
    ]);
  });
});

describe('CsvParser: dialect options', () => {
  it('uses a custom delimiter', () => {
    expect(fields(parseAll('a;b;"c;d"\n', { delimiter: ';' }))).toEqual([['a', 'b', 'c;d']]);
    expect(fields(parseAll('a\tb\n', { delimiter: '\t' }))).toEqual([['a', 'b']]);
  });

  it('uses a one-character custom newline', () => {
    expect(fields(parseAll('a,b|c,d|', { newline: '|' }))).toEqual([
      ['a', 'b'],
      ['c', 'd'],
    ]);
    expect(fields(parseAll('a,b\rc,"d\r"\r', { newline: '\r' }))).toEqual([
      ['a', 'b'],
      ['c', 'd\r'],
    ]);
  });

  it('uses a two-character custom newline; its first char alone is data', () => {
    expect(fields(parseAll('a;b;;c;d;;;', { newline: ';;' }))).toEqual([['a;b'], ['c;d'], [';']]);
    expect(fields(parseAll('a\nb,c\r\nd,e', { newline: '\r\n' }))).toEqual([
      ['a\nb', 'c'],
      ['d', 'e'],
    ]);
  });

  it('handles the escapechar in unquoted and quoted fields', () => {
    const opts = { escapechar: '\\' };
    expect(fields(parseAll('a\\,b,c\\"d,e\\\\f\n', opts))).toEqual([['a,b', 'c"d', 'e\\f']]);
    expect(fields(parseAll('"q\\"x","y\\\\",z\n', opts))).toEqual([['q"x', 'y\\', 'z']]);
    expect(fields(parseAll('"a""b"\n', opts))).toEqual([['a"b']]);
  });

  it('lets the escapechar escape a newline and keeps a trailing escapechar', () => {
    const recs = parseAll('a\\\nb,c\nd\\', { escapechar: '\\' });
    expect(recs.map((r) => [r.line, r.fields])).toEqual([
      [1, ['a\nb', 'c']],
      [3, ['d\\']],
    ]);
  });

  it('treats an escapechar equal to the quote as plain doubling', () => {
    expect(fields(parseAll('"a""b",c\n', { escapechar: '"' }))).toEqual([['a"b', 'c']]);
  });

  it('uses a custom quote and can disable quoting', () => {
    expect(fields(parseAll("'a,b',c\n", { quote: "'" }))).toEqual([['a,b', 'c']]);
    expect(fields(parseAll('"a,b",c\n', { quote: '' }))).toEqual([['"a', 'b"', 'c']]);
  });

  it('rejects unusable options', () => {
    expect(() => new CsvParser({ delimiter: '::' })).toThrow(/delimiter must be a 1-character/);
    expect(() => new CsvParser({ delimiter: '' })).toThrow(/delimiter/);
    expect(() => new CsvParser({ newline: '\r\n\r' })).toThrow(/new_line/);
    expect(() => new CsvParser({ newline: ',' })).toThrow(/new_line/);
    expect(() => new CsvParser({ escapechar: 'ab' })).toThrow(/escapechar/);
    expect(() => new CsvParser({ delimiter: '"' })).toThrow(/differ/);
  });
});

describe('CsvParser: chunk boundaries', () => {
  const corpus: [string, CsvOptions][] = [
    ['a,b,c\n1,2,3\r\n"x,\r\ny","q""q",""\r\n\r\n\n,,\n"end"', {}],
    ['"a"""\n"""b"\n""""\n', {}],
    ['1,"ab\n3,4\n5,"6\n7,8\n"bad"x\r\nz', {}],
    ['a\\,b,"c\\"d"\n\\\\,e\\\nf\n', { escapechar: '\\' }],
    ['a;b;;c;d;;;;"x;;y";;q', { newline: ';;' }],
    ['a|b\r\nc|"d\r\ne"\r\nf\ng|h\r\n', { delimiter: '|', newline: '\r\n' }],
    ['\uFEFFh1\th2\r\n1\t2\r\n', { delimiter: '\t' }],
    ['x,"unterminated\nline2,2\nline3,3', {}],
  ];

  it('gives the same records when fed one character at a time', () => {
    for (const [text, opts] of corpus) {
      const whole = parseAll(text, opts);
      const cuts = Array.from({ length: Math.max(0, text.length - 1) }, (_, i) => i + 1);
      expect(parseSplit(text, cuts, opts)).toEqual(whole);
    }
  });

  it('gives the same records for every single split point and random splits', () => {
    const rand = rng(42);
    for (const [text, opts] of corpus) {
      const whole = parseAll(text, opts);
      for (let i = 0; i <= text.length; i++) expect(parseSplit(text, [i], opts)).toEqual(whole);
      for (let k = 0; k < 50; k++) expect(parseSplit(text, randomCuts(text.length, rand), opts)).toEqual(whole);
    }
  });

  it('round-trips random records through quoting, with random chunking', () => {
    const rand = rng(7);
    const alphabet = ['a', 'b', '1', ' ', ',', '"', '\n', '\r', '\r\n', ';', '\\', 'é', '😀'];
    for (let iter = 0; iter < 300; iter++) {
      const useEsc = iter % 3 === 0;
      const crlf = iter % 2 === 0;
      const rows: string[][] = [];
      const nrows = 1 + Math.floor(rand() * 6);
      const width = 1 + Math.floor(rand() * 4);
      for (let r = 0; r < nrows; r++) {
        const row: string[] = [];
        for (let c = 0; c < width; c++) {
          let v = '';
          const len = Math.floor(rand() * 6);
          for (let i = 0; i < len; i++) v += alphabet[Math.floor(rand() * alphabet.length)];
          row.push(v);
        }
        // A single empty unquoted field would be an (skipped) empty line: quote it.
        rows.push(row);
      }
      const enc = (v: string) => {
        if (useEsc) return v === '' || /[,"\n\r\\]/.test(v) ? `"${v.replace(/["\\]/g, (m) => `\\${m}`)}"` : v;
        return v === '' || /[,"\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
      };
      const text = rows.map((r) => r.map(enc).join(',')).join(crlf ? '\r\n' : '\n') + (rand() < 0.5 ? '\n' : '');
      const opts: CsvOptions = useEsc ? { escapechar: '\\' } : {};
      const whole = parseAll(text, opts);
      expect(fields(whole)).toEqual(rows);
      expect(parseSplit(text, randomCuts(text.length, rand), opts)).toEqual(whole);
    }
  });
});

describe('guessDialect', () => {
  it('picks the delimiter with consistent field counts', () => {
    expect(guessDialect('a,b,c\n1,2,3\n4,5,6\n')).toEqual({ delimiter: ',', newline: '\n' });
    expect(guessDialect('a;b;c\n1,5;2,5;3\n4;5;6\n')).toEqual({ delimiter: ';', newline: '\n' });
    expect(guessDialect('name\tdesc\nx\ta, b, c\ny\td\n')).toEqual({ delimiter: '\t', newline: '\n' });
    expect(guessDialect('a|b\n1|2\n3|4')).toEqual({ delimiter: '|', newline: '\n' });
  });

  it('honours quotes when counting fields', () => {
    expect(guessDialect('a;b\n"x;y";1\n"p;q";2\n').delimiter).toBe(';');
    expect(guessDialect('a,b\n"x;y;z",1\n"p;q",2\n').delimiter).toBe(',');
  });

  it('detects the newline', () => {
    expect(guessDialect('a,b\r\n1,2\r\n').newline).toBe('\r\n');
    expect(guessDialect('a,b\r\n1,2\n').newline).toBe('\n');
    expect(guessDialect('a;b\r1;2\r').newline).toBe('\r');
    expect(guessDialect('a;b\r1;2\r').delimiter).toBe(';');
  });

  it('ignores a cut last line and a BOM; falls back to comma', () => {
    expect(guessDialect('\uFEFFa;b\n1;2\n3;4\n5;"unfinished').delimiter).toBe(';');
    expect(guessDialect('single column\nvalue\n')).toEqual({ delimiter: ',', newline: '\n' });
    expect(guessDialect('')).toEqual({ delimiter: ',', newline: '\n' });
    expect(guessDialect('one;line')).toEqual({ delimiter: ';', newline: '\n' });
  });
});

describe('hasHeader', () => {
  it('detects a header above typed data', () => {
    expect(
      hasHeader([
        ['id', 'name', 'ts'],
        ['1', 'a', '2024-01-01 00:00:00'],
        ['2', 'b', '2024-01-02 00:00:00'],
      ]),
    ).toBe(true);
    expect(
      hasHeader([
        ['Price (USD)', 'city'],
        ['1.5', 'Paris'],
      ]),
    ).toBe(true);
  });

  it('detects a header above text that does not look like names', () => {
    expect(
      hasHeader([
        ['name', 'email'],
        ['Alice', 'a@x.com'],
        ['Bob', 'b@y.org'],
      ]),
    ).toBe(true);
  });

  it('says no when the first row has numbers, dates, empties or duplicates', () => {
    expect(
      hasHeader([
        ['1', 'a'],
        ['2', 'b'],
      ]),
    ).toBe(false);
    expect(
      hasHeader([
        ['2024-01-01', 'a'],
        ['2024-01-02', 'b'],
      ]),
    ).toBe(false);
    expect(
      hasHeader([
        ['a', ''],
        ['1', '2'],
      ]),
    ).toBe(false);
    expect(
      hasHeader([
        ['a', 'A'],
        ['1', '2'],
      ]),
    ).toBe(false);
  });

  it('says no for text rows without evidence, or when the first row repeats as values', () => {
    expect(
      hasHeader([
        ['foo', 'bar'],
        ['baz', 'qux'],
      ]),
    ).toBe(false);
    expect(
      hasHeader([
        ['Alice', 'a@x.com'],
        ['Bob', 'b@y.org'],
      ]),
    ).toBe(false);
    expect(
      hasHeader([
        ['red', 'x'],
        ['red', 'y'],
        ['blue', 'z'],
      ]),
    ).toBe(false);
  });

  it('decides single rows by how name-like they are', () => {
    expect(hasHeader([['id', 'user_name', 'Created At']])).toBe(true);
    expect(hasHeader([['hello world!', 'x']])).toBe(false);
    expect(hasHeader([])).toBe(false);
  });
});

describe('CsvParser: throughput (prints only)', () => {
  it('parses a 6-column file', () => {
    const line = (i: number) =>
      `${i},user_${i % 977},2024-01-${String((i % 28) + 1).padStart(2, '0')} 10:30:00,${(i * 0.37).toFixed(2)},"Some text, with comma",${i % 7 === 0 ? '' : 'ok'}\n`;
    const parts: string[] = [];
    for (let i = 0; i < 300_000; i++) parts.push(line(i));
    const text = parts.join('');
    const chunk = 64 * 1024;
    const t0 = performance.now();
    const p = new CsvParser();
    let n = 0;
    for (let i = 0; i < text.length; i += chunk) n += p.push(text.slice(i, i + chunk)).length;
    n += p.end().length;
    const ms = performance.now() - t0;
    expect(n).toBe(300_000);
    const mb = text.length / 1024 / 1024;
    console.log(`csv: ${mb.toFixed(1)} MB in ${ms.toFixed(0)} ms = ${(mb / (ms / 1000)).toFixed(0)} MB/s`);
  });
});
