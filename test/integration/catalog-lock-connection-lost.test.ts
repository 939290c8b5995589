/**
 * Review 9b: the write gate's lock connection is checked out for a whole engine insert with no
 * query in flight (idle in transaction). node-postgres's pool listens for a client's errors only
 * while it is idle in the pool, so a lock connection the server drops meanwhile (a restart,
 * pg_terminate_backend, idle_in_transaction_session_timeout) emitted 'error' with no listener:
 * an uncaught exception, the end of the process.
 */
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openPostgresCatalog } from '../../src/catalog/postgres-catalog.js';
import type { SqlCatalog } from '../../src/catalog/sql-catalog.js';
import { postgresBin, startPostgres, type TestPostgres } from '../helpers/postgres.js';

const hasPg = postgresBin() !== null;
let server: TestPostgres | undefined;
let url = '';
beforeAll(async () => {
  if (!hasPg) return;
  server = await startPostgres();
  url = await server.createDatabase('lock_lost');
});
afterAll(async () => {
  await server?.stop();
});

it.runIf(hasPg)('a lock connection dropped while the insert it guards runs fails that insert, not the process', async () => {
  const errors: Error[] = [];
  const catalog: SqlCatalog = await openPostgresCatalog(url, { lockPools: { insert: 2, statement: 1 }, onError: (err) => errors.push(err) });
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => uncaught.push(err);
  process.on('uncaughtException', onUncaught);
  try {
    const held = catalog.holding('writes', 'shared', async () => {
      // The engine insert: meanwhile the server drops the lock connection.
      await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pipit-lock'`);
      await new Promise((r) => setTimeout(r, 300));
      return 'inserted';
    });
    await expect(held).rejects.toThrow();
    expect(uncaught).toEqual([]);
    expect(errors.length).toBeGreaterThan(0);
    // The pool gives a working connection to the next holder.
    expect(await catalog.holding('writes', 'shared', async () => 'next')).toBe('next');
  } finally {
    process.off('uncaughtException', onUncaught);
    await admin.end();
    await catalog.close();
  }
});
