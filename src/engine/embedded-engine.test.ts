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
    for (const d of ['a\r\nb\n', 'a\u0001b\n', '\ufeff{"a":1}\n']) expect(rawInsertFormat('LineAsString', Buffer.from(d))).toBeNull();
    expect(rawInsertFormat('TabSeparated', Buffer.from('a\r\n'))).toEqual({ format: 'TabSeparated', settings: {} });
  });
});
