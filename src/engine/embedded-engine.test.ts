import { describe, expect, it } from 'vitest';
import { rawInsertFormat, withoutEmptyLines } from './embedded-engine.js';

describe('insert data for chDB', () => {
  it('drops empty lines (inline data ends at one), keeps every other byte', () => {
    const cases: [string, string][] = [
      ['a\nb\n', 'a\nb\n'],
      ['a\n\nb\n', 'a\nb\n'],
      ['\n\na\n\n\n\nb', 'a\nb'],
      ['a\n \n\t\n\r\nb\n\n', 'a\n \n\t\n\r\nb\n'],
      ['\n', ''],
      ['x', 'x'],
      ['a\n\nb', 'a\nb'],
    ];
    for (const [given, kept] of cases) expect(withoutEmptyLines(Buffer.from(given)).toString()).toBe(kept);
    const same = Buffer.from('a\nb\n');
    expect(withoutEmptyLines(same)).toBe(same);
  });

  it('LineAsString goes through the raw insert as CSV unless the data holds what CSV reads differently', () => {
    expect(rawInsertFormat('LineAsString', Buffer.from('{"a":"\\"x\\""}\n  "q" \t\n'))?.format).toBe('CSV');
    // Otherwise as TabSeparated, each byte that TSV reads differently escaped (never inline, as text).
    const tsv = (d: Buffer) => rawInsertFormat('LineAsString', d);
    expect(tsv(Buffer.from('a\r\nb\\c\td\n'))).toMatchObject({ format: 'TabSeparated', data: Buffer.from('a\\r\nb\\\\c\\td\n') });
    for (const d of ['a\u0001b\n', '\ufeff{"a":1}\n', '\\N\n']) expect(tsv(Buffer.from(d))?.format).toBe('TabSeparated');
    const bad = Buffer.from([0x7b, 0xff, 0x0d, 0x0a]);
    expect(tsv(bad)?.data).toEqual(Buffer.from([0x7b, 0xff, 0x5c, 0x72, 0x0a]));
    expect(rawInsertFormat('Parquet', Buffer.from('x'))).toBeNull();
    expect(rawInsertFormat('TabSeparated', Buffer.from('a\r\n'))).toEqual({ format: 'TabSeparated', settings: {} });
  });
});
