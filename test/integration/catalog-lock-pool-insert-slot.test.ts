/**
 * Review 9b (3dea4fe): the write gate's lock connections (PostgreSQL catalog) are as many as the
 * internal lane's slots, and every INSERT holds one from before it waits for its slot. INSERT
 * statements (copy jobs, populates) may use all slots but one, which is kept for ingest inserts;
 * with PIPIT_ENGINE_SESSIONS=2 two such statements (the job runner runs two jobs at once), one
 * running and one waiting for the statements' slot, hold both lock connections, and an ingest
 * insert waits for a lock connection behind the running statement while the slot kept for it is free.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { postgresBin } from '../helpers/postgres.js';
import { internalLane } from '../helpers/internal-lane.js';
import { startServer, TEST_SECRET_KEY, testCatalogUrl, type TestServer } from '../helpers/server.js';

const hasPg = postgresBin() !== null && process.env.PIPIT_TEST_ENGINE !== 'remote';
let s: TestServer;
beforeAll(async () => {
  if (!hasPg) return;
  s = await startServer({ config: { catalogUrl: await testCatalogUrl(), secretKey: TEST_SECRET_KEY, engineSessions: 2, serviceDatasources: false } });
});
afterAll(async () => {
  await s?.close();
});

it.runIf(hasPg)('an ingest insert takes the slot kept for inserts while INSERT statements fill theirs (shared catalog)', async () => {
  const { table, engine, slowInsert: slow, busy } = await internalLane(s);
  const long = [engine.exec(slow)];
  await busy(1);
  // The second waits for the statements' one slot.
  long.push(engine.exec(slow));
  await new Promise((r) => setTimeout(r, 200));
  const started = Date.now();
  await engine.insert({ table, format: 'JSONEachRow', data: Buffer.from('{"id":1,"s":"q"}\n') });
  const insertMs = Date.now() - started;
  await Promise.all(long);
  expect(insertMs).toBeLessThan(2000);
});
