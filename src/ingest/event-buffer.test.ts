import { expect, it } from 'vitest';
import { EventBuffer } from './event-buffer.js';

it('toTsv escapes bytes that are not UTF-8 as it escapes text, and keeps them as they came', () => {
  const bad = Buffer.from([0xff, 0xfe]);
  // Each escape, a missing final newline, empty lines: the byte path gives what the text path gives around the bad bytes.
  for (const text of ['{"a":"x\\\\y\\tz\\r"}\n{"b":1}', 'a\tb\r\n\nc\\\n', '', '\n']) {
    const withBad = EventBuffer.toTsv(Buffer.concat([bad, Buffer.from(text)]), 'R');
    expect(withBad.subarray(0, 2)).toEqual(bad);
    expect(withBad.subarray(2).toString('utf8')).toBe(EventBuffer.toTsv(Buffer.from(text), 'R').toString('utf8'));
  }
  expect(EventBuffer.toTsv(Buffer.from('é\n'), 'R').toString('utf8')).toBe('é\tR\n');
});
