/**
 * Review (session 9): with a shared PostgreSQL catalog each engine insert holds a pooled connection
 * (the write gate's shared advisory lock across copies) from before it waits for an engine slot
 * until it ends. Inserts waiting for the internal lane hold connections too, so when those came
 * from the catalog's pool a burst of inserts behind long internal statements took the whole pool
 * and every other catalog call waited for the engine. The write gate's locks now have pools of
 * their own (src/catalog/postgres-catalog.ts); this checks the catalog still answers at once.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { postgresBin } from '../helpers/postgres.js';
import { internalLane } from '../helpers/internal-lane.js';
import { startServer, TEST_SECRET_KEY, testCatalogUrl, type TestServer } from '../helpers/server.js';

const hasPg = postgresBin() !== null && process.env.PIPIT_TEST_ENGINE !== 'remote';
let s: TestServer;
beforeAll(async () => {
  if (!hasPg) return;
  // Service data sources off: their background inserts would take an internal slot at random.
  s = await startServer({ config: { catalogUrl: await testCatalogUrl(), secretKey: TEST_SECRET_KEY, engineSessions: 8, serviceDatasources: false } });
});
afterAll(async () => {
  await s?.close();
});

it.runIf(hasPg)('catalog calls do not wait for inserts queued behind long internal statements (shared catalog)', async () => {
  // The internal lane (8 slots) full of ~6 s INSERT ... SELECTs, as copy jobs and populates run
  // them (7: the statements' share) and one ingest insert (the slot kept for inserts). The
  // statements first: they take a slot only while fewer than 7 are busy (one kept for inserts).
  const { table, engine, slowInsert: slow, busy } = await internalLane(s);
  const long = Array.from({ length: 7 }, () => engine.exec(slow));
  await busy(7);
  long.push(engine.exec(slow, { ingest: true }));
  await busy(8);
  // A burst of small inserts (event flushes of several data sources, appends): they wait for a slot.
  const quick = Array.from({ length: 8 }, (_, i) => engine.insert({ table, format: 'JSONEachRow', data: Buffer.from(`{"id":${i},"s":"q"}\n`) }));
  await new Promise((r) => setTimeout(r, 200));
  // Any catalog call now (a token's first request, a job's lease renewal, GET /v0/datasources).
  const started = Date.now();
  await s.app.services.catalog.listWorkspaces();
  const catalogMs = Date.now() - started;
  await Promise.all([...long, ...quick]);
  expect(catalogMs).toBeLessThan(2000);
});
