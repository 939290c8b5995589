/**
 * Review 9b (c54446e, records held as JSON lines): a flush whose insert fails keeps its records,
 * records pushed meanwhile and afterwards join them, and the next flush that works inserts each
 * exactly once, a batch whose insert worked is not inserted again, and one that failed twice is
 * kept twice over no record.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SERVICE_DATABASE } from '../../src/observability/service-tables.js';
import { startServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
beforeAll(async () => {
  // No timer flushes: the test flushes.
  s = await startServer({ config: { serviceFlushMs: 60_000 } });
});
afterAll(async () => {
  await s?.close();
});

it('records of failed flushes are inserted once by the next flush that works, none lost, none twice', async () => {
  const obs = s.app.services.observability;
  const engine = s.app.services.engine;
  const table = `${SERVICE_DATABASE}.datasources_ops_log`;
  const aside = `${SERVICE_DATABASE}.datasources_ops_log_aside`;
  await obs.flush();
  const ws = 'ws_flush_failure_test';
  let next = 0;
  const push = (n: number) => {
    for (let i = 0; i < n; i++) {
      obs.op(ws, {
        eventType: 'append',
        datasource: { id: 't_x', name: `é€𝄞 ${'x'.repeat(next % 300)}` },
        result: 'ok',
        elapsed: 0,
        operationId: `op${next++}`,
      });
    }
  };
  const ids = async () =>
    (await engine.rows<{ operation_id: string }>(`SELECT operation_id FROM ${table} WHERE workspace_id = '${ws}'`)).map((r) => Number(r.operation_id.slice(2)));

  push(100);
  await obs.flush();
  expect((await ids()).sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
  // The table is away: two flushes fail, with records pushed before, between and after.
  await engine.exec(`RENAME TABLE ${table} TO ${aside}`);
  try {
    push(50);
    await obs.flush();
    push(50);
    await obs.flush();
    push(50);
    // Nothing of them reached the table (the flushes did fail).
    const [{ n }] = await engine.rows<{ n: string }>(`SELECT count() AS n FROM ${aside} WHERE workspace_id = '${ws}'`);
    expect(Number(n)).toBe(100);
    expect(await engine.rows(`EXISTS TABLE ${table}`)).toEqual([{ result: 0 }]);
  } finally {
    await engine.exec(`RENAME TABLE ${aside} TO ${table}`);
  }
  push(50);
  await obs.flush();
  push(10);
  await obs.flush();
  const got = (await ids()).sort((a, b) => a - b);
  expect(got).toEqual(Array.from({ length: 310 }, (_, i) => i));
});
