import { expect, it } from 'vitest';
import { EventBuffer, rowsOfFile } from './event-buffer.js';

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

it('rowsOf logs a body plain (lines as sent, 0x01, the id) unless a line could not be read back so; a replayed file goes in as one format', () => {
  const plain = ['{"a":"x\\"y","t":"\tz"}\n{"b":1}', 'é\n\n', Buffer.concat([Buffer.from([0xff]), Buffer.from('\\t\n')])];
  for (const body of plain) {
    const b = Buffer.from(body);
    const rows = EventBuffer.rowsOf(b, 'R');
    expect(rows.plain).toBe(true);
    const lines = b.subarray(0, b[b.length - 1] === 10 ? b.length - 1 : b.length);
    expect(rows.bytes).toEqual(
      Buffer.concat([
        ...lines
          .toString('latin1')
          .split('\n')
          .map((l) => Buffer.from(`${l}\u0001R\n`, 'latin1')),
      ]),
    );
  }
  for (const body of ['a\u0001b\n', 'a\r\n', '\\N\n', '{"s":"\\N"}\n', '\ufeff{}\n']) {
    expect(EventBuffer.rowsOf(Buffer.from(body), 'R')).toEqual({ bytes: EventBuffer.toTsv(Buffer.from(body), 'R'), plain: false });
  }
  // A file of plain parts replays as it is; one of both kinds as TSV, each line escaped once.
  const a = Buffer.from('{"a":"x\\"y"}\tq\n{"b":1}\n');
  const b = Buffer.from('x\r\ny\u0001z\n');
  expect(rowsOfFile(Buffer.concat([EventBuffer.rowsOf(a, 'R1').bytes, EventBuffer.rowsOf(a, 'R2').bytes]))).toEqual({
    bytes: Buffer.concat([EventBuffer.rowsOf(a, 'R1').bytes, EventBuffer.rowsOf(a, 'R2').bytes]),
    plain: true,
  });
  const mixed = Buffer.concat([EventBuffer.rowsOf(a, 'R1').bytes, EventBuffer.rowsOf(b, 'R2').bytes, EventBuffer.rowsOf(a, 'R3').bytes]);
  expect(rowsOfFile(mixed)).toEqual({
    bytes: Buffer.concat([EventBuffer.toTsv(a, 'R1'), EventBuffer.toTsv(b, 'R2'), EventBuffer.toTsv(a, 'R3')]),
    plain: false,
  });
});

it('a large segment (older TSV rows, then plain ones) replays as TSV, each row converted once', () => {
  // ~8 MB: a replay of this size once took minutes (every row copied the run so far and searched
  // the whole file backwards for its separator).
  const line = Buffer.from(`{"payload":"${'x'.repeat(150)}","t":"a\\\\b"}\n`);
  const body = Buffer.concat(Array.from({ length: 100 }, () => line));
  const tsv = Array.from({ length: 200 }, (_, i) => EventBuffer.toTsv(body, `T${i}`));
  const plain = Array.from({ length: 200 }, (_, i) => EventBuffer.rowsOf(body, `P${i}`).bytes);
  const file = Buffer.concat([...tsv, ...plain]);
  expect(file.length).toBeGreaterThan(7_000_000);
  const rows = rowsOfFile(file);
  expect(rows.plain).toBe(false);
  expect(rows.bytes.equals(Buffer.concat([...tsv, ...Array.from({ length: 200 }, (_, i) => EventBuffer.toTsv(body, `P${i}`))]))).toBe(true);
  const allPlain = rowsOfFile(Buffer.concat(plain));
  expect(allPlain.plain).toBe(true);
  expect(allPlain.bytes.equals(Buffer.concat(plain))).toBe(true);
});
