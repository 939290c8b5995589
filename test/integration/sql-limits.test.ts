/**
 * Query limits over real HTTP on a server configured with tight ones (a file of its own: one
 * engine data directory per process).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../helpers/server.js';

let s: TestServer;

beforeAll(async () => {
  s = await startServer({ config: { queryTimeout: 1, queryMaxResultBytes: 64 * 1024 } });
}, 60_000);

afterAll(async () => {
  await s?.close();
});

describe('limits and cancellation', () => {
  it('a query over max_execution_time is a 408', async () => {
    const r = await s.req('GET', `/v0/sql?q=${encodeURIComponent('SELECT count() FROM numbers(100000000000)')}`);
    expect(r.status).toBe(408);
    expect(r.headers.get('x-db-exception-code')).toBe('159');
    expect((await r.json()).error).toMatch(/Timeout exceeded/);
  });

  it('a result over max_result_bytes is a 400', async () => {
    const r = await s.req('GET', `/v0/sql?q=${encodeURIComponent('SELECT number, toString(number) FROM numbers(1000000) FORMAT CSV')}`);
    expect(r.status).toBe(400);
    expect((await r.json()).error).toMatch(/[Ll]imit for result exceeded/);
  });

  it('a session that saw an error serves the next query cleanly', async () => {
    for (let i = 0; i < 6; i++) expect((await s.req('GET', '/v0/sql?q=SELECT%20nope')).status).toBe(400);
    const rs = await Promise.all(Array.from({ length: 8 }, (_, i) => s.req('GET', `/v0/sql?q=${encodeURIComponent(`SELECT ${i} AS i FORMAT CSV`)}`)));
    expect(await Promise.all(rs.map((r) => r.text()))).toEqual(Array.from({ length: 8 }, (_, i) => `${i}\n`));
  });
});
