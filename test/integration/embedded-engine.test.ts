/**
 * The embedded engine's lifetime on the real chDB: closing the last open Session stops chDB's
 * engine (the next Session starts it afresh: every table loaded again, Memory databases emptied).
 * The engine's pools close a Session that saw an error, so without a Session held open for the
 * engine's lifetime, one failing statement at a quiet moment emptied `pipit_stages` under the
 * inserts that use it ("Table ... does not exist" until a restart; seen as a flaky full-disk test).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EmbeddedEngine } from '../../src/engine/embedded-engine.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-engine-'));
const engine = new EmbeddedEngine(dir, { userSlots: 2, internalSlots: 2 });

afterAll(async () => {
  await engine.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('the embedded engine', () => {
  it('stays up when the Session of a failing statement is closed: a Memory database keeps its tables', async () => {
    await engine.exec('CREATE DATABASE IF NOT EXISTS mem ENGINE = Memory');
    await engine.exec('CREATE TABLE mem.t (a Int32) ENGINE = Memory');
    await engine.exec('INSERT INTO mem.t VALUES (1), (2)');
    // Every Session the internal pool has opened so far sees an error, and is closed for it.
    for (let i = 0; i < 3; i++) await expect(engine.exec('SELECT throwIf(1)')).rejects.toThrow(/throwIf|FUNCTION_THROW_IF_VALUE_IS_NON_ZERO/);
    expect(await engine.rows("SELECT name FROM system.tables WHERE database = 'mem'")).toEqual([{ name: 't' }]);
    expect(await engine.rows('SELECT toString(sum(a)) AS s FROM mem.t')).toEqual([{ s: '3' }]);
  });
});

describe('LineAsString inserts on the raw path: every line arrives byte for byte', () => {
  let n = 0;
  /** The lines a LineAsString insert of `data` writes, as hex, sorted. */
  async function roundTrip(data: Buffer): Promise<string[]> {
    const t = `mem.lines${n++}`;
    await engine.exec('CREATE DATABASE IF NOT EXISTS mem ENGINE = Memory');
    await engine.exec(`CREATE TABLE ${t} (__line String) ENGINE = Memory`);
    await engine.insert({ table: t, format: 'LineAsString', columns: ['__line'], data });
    return (await engine.rows<{ h: string }>(`SELECT hex(__line) AS h FROM ${t}`)).map((r) => r.h).sort();
  }
  const hex = (s: string) => Buffer.from(s).toString('hex').toUpperCase();

  it('through CSV (plain lines) and through TabSeparated (a \\N, CR, 0x01 or BOM in the data): no line taken as a header, none altered', async () => {
    // A first line equal to the column's name or type is a row, not a header, on both routes.
    expect(await roundTrip(Buffer.from('__line\n{"a":1}\n'))).toEqual([hex('__line'), hex('{"a":1}')].sort());
    expect(await roundTrip(Buffer.from('__line\n\\N\n'))).toEqual([hex('__line'), hex('\\N')].sort());
    expect(await roundTrip(Buffer.from('String\n\\N\n'))).toEqual([hex('String'), hex('\\N')].sort());
    // A leading BOM, a line ending in a lone CR, invalid UTF-8, text that looks like an escape.
    expect(await roundTrip(Buffer.from('\ufeff{"a":1}\n{"b":\\N}\n'))).toEqual([hex('\ufeff{"a":1}'), hex('{"b":\\N}')].sort());
    const mixed = Buffer.concat([Buffer.from('a\r\n\\x41\n'), Buffer.from([0xff, 0x0a]), Buffer.from('x\u0001y\t\\N')]);
    expect(await roundTrip(mixed)).toEqual([hex('a\r'), hex('\\x41'), 'FF', hex('x\u0001y\t\\N')].sort());
  });
});
