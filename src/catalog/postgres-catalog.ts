/**
 * The catalog on a PostgreSQL server (PIPIT_CATALOG_URL=postgres://...), shared by every copy of
 * the server: a node-postgres pool for statements and transactions, and one dedicated connection
 * that LISTENs for the catalog's change notifications. When that connection drops it is opened
 * again (with back-off) and listeners are told to drop every cache, since notifications sent
 * meanwhile are lost.
 */
import pg from 'pg';
import { SqlCatalog, type SqlClient, type SqlQuery } from './sql-catalog.js';

// timestamptz columns come back as strings (as PGlite's text protocol gives them), int8 as numbers.
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 1184 || oid === 1114) return (v: string) => v;
    if (oid === 20) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format);
  },
};

export async function openPostgresCatalog(
  url: string,
  opts: {
    poolSize?: number;
    /** Lock connections for each kind of writer: as many as it may hold internal slots (src/engine/lanes.ts internalSlotsFor). */
    lockPools?: { insert: number; statement: number };
    onError?: (err: Error) => void;
  } = {},
): Promise<SqlCatalog> {
  const pool = new pg.Pool({ connectionString: url, max: opts.poolSize ?? 10, types, application_name: 'pipit' });
  // Locks held while engine work runs or waits for an engine slot (every insert holds the write
  // gate's shared lock from before it gets a slot): their own connections, so however many inserts
  // queue, the catalog's other calls never wait behind them for a connection.
  const lockPool = new pg.Pool({ connectionString: url, max: opts.lockPools?.insert ?? 4, types, application_name: 'pipit-lock' });
  // INSERT statements (copy jobs, populates) wait for theirs apart, as many as their internal slots
  // (the lane keeps one for ingest inserts): queued behind a running statement, they would otherwise
  // hold every lock connection while that slot stays free and ingest inserts wait behind them.
  const statementLockPool = new pg.Pool({ connectionString: url, max: opts.lockPools?.statement ?? 3, types, application_name: 'pipit-lock' });
  // An idle client's error (the server restarted) must not end the process: the pool replaces it.
  pool.on('error', (err) => opts.onError?.(err));
  lockPool.on('error', (err) => opts.onError?.(err));
  statementLockPool.on('error', (err) => opts.onError?.(err));
  const transactionOn =
    (from: pg.Pool) =>
    async <T>(fn: (tx: SqlQuery) => Promise<T>): Promise<T> => {
      const c = await from.connect();
      // The pool listens for a client's errors only while it is idle in the pool; a lock
      // connection is checked out for a whole engine insert with no query in flight, and an error
      // then (the server restarted, the backend was terminated) with no listener ends the process.
      // The next query (COMMIT) fails, and the released client is discarded.
      const lost = (err: Error) => opts.onError?.(err);
      c.on('error', lost);
      try {
        await c.query('BEGIN');
        const tx: SqlQuery = { query: (sql, params) => c.query(sql, params) as never };
        const out = await fn(tx);
        await c.query('COMMIT');
        return out;
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        c.removeListener('error', lost);
        c.release();
      }
    };
  const locked = transactionOn(lockPool);
  const statementLocked = transactionOn(statementLockPool);
  let closed = false;
  let listener: pg.Client | null = null;

  const client: SqlClient = {
    shared: true,
    query: (sql, params) => pool.query(sql, params) as never,
    exec: (sql) => pool.query(sql),
    transaction: transactionOn(pool),
    lockTransaction: (fn, kind) => (kind === 'statement' ? statementLocked(fn) : locked(fn)),
    async listen(channel, onNotify, onReset) {
      const connect = async (): Promise<void> => {
        const c = new pg.Client({ connectionString: url, types, application_name: 'pipit-listen' });
        c.on('notification', (m) => {
          if (m.channel === channel && m.payload) onNotify(m.payload);
        });
        c.on('error', (err) => {
          opts.onError?.(err);
          void c.end().catch(() => undefined);
        });
        c.on('end', () => {
          if (closed || listener !== c) return;
          listener = null;
          void reconnect();
        });
        await c.connect();
        await c.query(`LISTEN ${channel}`);
        listener = c;
      };
      const reconnect = async () => {
        for (let delay = 100; !closed; delay = Math.min(delay * 2, 5000)) {
          try {
            await connect();
            onReset();
            return;
          } catch (err) {
            opts.onError?.(err as Error);
            await new Promise((r) => setTimeout(r, delay));
          }
        }
      };
      await connect();
    },
    async close() {
      closed = true;
      const l = listener;
      listener = null;
      await l?.end().catch(() => undefined);
      await Promise.all([pool.end(), lockPool.end(), statementLockPool.end()]);
    },
  };
  return SqlCatalog.open(client);
}
