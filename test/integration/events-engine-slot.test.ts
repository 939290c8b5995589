/**
 * The engine keeps one internal slot for inserts, so statements run by jobs can not hold back
 * ingestion (src/engine/lanes.ts). The Events API's inserts that read the log file (`INSERT ...
 * FROM INFILE`, a statement) take that slot too.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
beforeAll(async () => {
  // No service data source flushes: they would take internal slots while the test counts them.
  s = await startServer({ config: { serviceDatasources: false } });
});
afterAll(async () => {
  await s?.close();
});

const SCHEMA = 'id UInt32 `json:$.id`, s String `json:$.s`';

it('acknowledged events reach the table while long internal statements hold every slot but the one kept for inserts', async () => {
  const form = { body: new URLSearchParams({ schema: SCHEMA }).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } };
  expect((await s.req('POST', '/v0/datasources?name=ev&mode=create&format=ndjson', form)).status).toBe(200);
  // The stage is made by the first insert (DDL: a statement).
  expect((await s.req('POST', '/v0/events?name=ev&wait=true', { body: '{"id":0,"s":""}\n' })).status).toBe(200);
  const engine = s.app.services.engine as unknown as { laneUsage: { internal: number }; exec: (sql: string) => Promise<void> };
  // Three statements of ~6 s (sleep is capped at 3 s per block): the internal lane's statement share (4 slots, one kept).
  let firstLongEnded = Infinity;
  const long = Array.from({ length: 3 }, () =>
    engine.exec('SELECT sleep(2) FROM numbers(3) SETTINGS max_block_size = 1').then(() => {
      firstLongEnded = Math.min(firstLongEnded, Date.now());
    }),
  );
  const until = Date.now() + 5000;
  while (engine.laneUsage.internal < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  expect(engine.laneUsage.internal).toBe(3);
  const started = Date.now();
  const line = (i: number) => JSON.stringify({ id: i, s: 'x'.repeat(300) });
  // A small body (its lane's segment) and a large one (its own), both answered 202 at once.
  expect((await s.req('POST', '/v0/events?name=ev', { body: `${line(1)}\n${line(2)}\n` })).status).toBe(202);
  expect((await s.req('POST', '/v0/events?name=ev', { body: Array.from({ length: 4000 }, (_, i) => line(10 + i)).join('\n') })).status).toBe(202);
  // Counted through the Query API (the user lane: engine.rows would wait for the internal lane too).
  const rows = async () => Number((await (await s.req('GET', '/v0/sql?q=SELECT%20count()%20AS%20c%20FROM%20ev%20FORMAT%20JSON')).json()).data[0].c);
  while ((await rows()) < 4003 && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 50));
  const arrived = Date.now();
  expect(await rows()).toBe(4003);
  // While the statements still held their slots (they sleep ~6 s, however loaded the machine):
  // the rows did not wait for one of them to end.
  expect(firstLongEnded).toBe(Infinity);
  expect(engine.laneUsage.internal).toBeGreaterThanOrEqual(3);
  await Promise.all(long);
  expect(arrived).toBeLessThan(firstLongEnded);
});
