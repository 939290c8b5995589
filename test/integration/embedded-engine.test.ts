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
