/**
 * For tests of the engine's internal lane (src/engine/lanes.ts) on a test server: a data source
 * `ev` to insert into, the engine's lane counters and calls, and an INSERT ... SELECT that holds
 * an internal slot ~6 s without loading the cores (sleep is capped at 3 s per block).
 */
import { expect } from 'vitest';
import { tableOf, type TestServer } from './server.js';

export interface LaneEngine {
  laneUsage: { internal: number };
  exec: (sql: string, opts?: { ingest?: boolean }) => Promise<void>;
  insert: (o: { table: string; format: string; data: Buffer }) => Promise<unknown>;
}

export async function internalLane(s: TestServer): Promise<{ table: string; engine: LaneEngine; slowInsert: string; busy: (n: number) => Promise<void> }> {
  const form = {
    body: new URLSearchParams({ schema: 'id UInt32 `json:$.id`, s String `json:$.s`' }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  };
  expect((await s.req('POST', '/v0/datasources?name=ev&mode=create&format=ndjson', form)).status).toBe(200);
  const { table } = await tableOf(s, 'ev');
  const engine = s.app.services.engine as unknown as LaneEngine;
  /** Waits until `n` internal slots are busy (at most 5 s), then checks that exactly `n` are. */
  const busy = async (n: number) => {
    const until = Date.now() + 5000;
    while (engine.laneUsage.internal < n && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(engine.laneUsage.internal).toBe(n);
  };
  const slowInsert = `INSERT INTO ${table} (id, s) SELECT number, '' FROM numbers(3) WHERE sleep(2) = 0 SETTINGS max_block_size = 1`;
  return { table, engine, slowInsert, busy };
}
