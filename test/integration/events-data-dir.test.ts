/**
 * The Events API's inserts on embedded chDB read their rows from the log file (`INSERT ... FROM
 * INFILE`), which expands globs (`{a,b}`, `*`, `?`): with such characters in the data directory's
 * path the log file would be another file or none, so acknowledged rows would never land. Its own
 * file: chDB opens one data directory per process.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { count, startServer } from '../helpers/server.js';

const SCHEMA = 'id UInt32 `json:$.id`, n Int32 `json:$.n`, s String `json:$.s`';

it('rows land whatever the data directory is named: the engine reads the log file only when its path holds no glob', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-glob-'));
  const s = await startServer({ config: { dataDir: path.join(dir, 'data{a,b}?') } });
  try {
    const form = { body: new URLSearchParams({ schema: SCHEMA }).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } };
    expect((await s.req('POST', '/v0/datasources?name=ev&mode=create&format=ndjson', form)).status).toBe(200);
    const line = (i: number, n: unknown = i) => JSON.stringify({ id: i, n, s: 'x'.repeat(300) });
    // A small body (a lane segment) with a bad row, then a large one (its own segment).
    const small = await s.req('POST', '/v0/events?name=ev&wait=true', { body: [line(1), line(2), line(3, 'no')].join('\n') });
    expect({ status: small.status, body: await small.json() }).toEqual({ status: 200, body: { successful_rows: 2, quarantined_rows: 1 } });
    const large = await s.req('POST', '/v0/events?name=ev&wait=true', { body: Array.from({ length: 4000 }, (_, i) => line(10 + i)).join('\n') });
    expect({ status: large.status, body: await large.json() }).toEqual({ status: 200, body: { successful_rows: 4000, quarantined_rows: 0 } });
    expect(await count(s, 'ev')).toBe(4002);
    expect(await count(s, 'ev', true)).toBe(1);
  } finally {
    await s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
