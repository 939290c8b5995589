/**
 * The embedded catalog store: PGlite (PostgreSQL compiled to WASM) persisted under the data
 * directory. Same SQL as the PostgreSQL catalog used for scale-out. On a full disk PGlite fails
 * the statement (SQLSTATE 53100, the transaction rolls back) and stays usable: that failure is
 * the DiskFullError of every store, a retryable 503.
 */
import { PGlite } from '@electric-sql/pglite';
import fs from 'node:fs';
import v8 from 'node:v8';
import { asDiskFull, freeBytes } from '../basics/disk.js';
import { seedFromTemplate } from './pglite-template.js';
import { SqlCatalog } from './sql-catalog.js';

const diskFull = (err: unknown): never => {
  throw asDiskFull(err);
};

/**
 * How the catalog's PostgreSQL starts. PGlite's default `shared_buffers` (128 MB) makes a 145 MB
 * shared segment that its mmap zeroes byte by byte in WASM on every start (~0.5 s of CPU); the
 * catalog is a few MB, so 16 MB (a 24 MB segment) caches all of it. Everything else is PGlite's default.
 */
export const PGLITE_START_PARAMS = [...PGlite.defaultStartParams, '-c', 'shared_buffers=16MB'];

/**
 * V8 compiles PGlite's 9 MB WASM module with its baseline compiler and then recompiles every
 * function that has run for a while with its optimising one, on background threads: ~0.4 s of CPU
 * in the first seconds, competing with the start on a small machine, for catalog statements that
 * measured no faster afterwards (their time is in the JS glue and file I/O). A large tiering budget
 * leaves only functions that run for very long to be optimised. The flag is read when a WASM
 * module is compiled and instantiated, so it is set before PGlite's; PGlite is the server's only
 * WASM beyond Node's HTTP parser for fetch.
 */
function preferBaselineWasm(): void {
  v8.setFlagsFromString('--wasm-tiering-budget=2000000000');
}

/**
 * Opens (or creates) the catalog in `dir`. `seeding`: the template copy the caller started
 * (seedFromTemplate), else this makes it.
 */
export async function openPgliteCatalog(dir: string, seeding?: Promise<unknown>): Promise<SqlCatalog> {
  // A new catalog starts as a copy of the install-time template (no initdb at run time); if the
  // copy fails (a full disk), PGlite's own create below reports it.
  await (seeding ?? seedFromTemplate(dir)).catch(() => undefined);
  fs.mkdirSync(dir, { recursive: true });
  let db: PGlite;
  try {
    preferBaselineWasm();
    db = await PGlite.create(dir, { startParams: PGLITE_START_PARAMS });
  } catch (err) {
    // PGlite writes when it opens; on a full disk it fails with a message that does not say so.
    const free = freeBytes(dir);
    if (free < 16 * 1024 * 1024)
      throw new Error(
        `the catalog can not open: the disk holding ${dir} is full (${free} bytes free); free some space and start again (${(err as Error).message})`,
      );
    throw err;
  }
  return SqlCatalog.open({
    shared: false,
    query: (sql, params) => db.query(sql, params).catch(diskFull) as never,
    exec: (sql) => db.exec(sql).catch(diskFull),
    transaction: (fn) => db.transaction((tx) => fn({ query: (sql, params) => tx.query(sql, params).catch(diskFull) as never })).catch(diskFull),
    // One process: nothing is missed, so there is no reset.
    listen: async (channel, onNotify) => {
      await db.listen(channel, onNotify);
    },
    close: () => db.close(),
  });
}
