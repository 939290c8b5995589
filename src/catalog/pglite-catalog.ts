/**
 * The embedded catalog store: PGlite (PostgreSQL compiled to WASM) persisted under the data
 * directory. Same SQL as the PostgreSQL catalog used for scale-out. On a full disk PGlite fails
 * the statement (SQLSTATE 53100, the transaction rolls back) and stays usable: that failure is
 * the DiskFullError of every store, a retryable 503.
 */
import { PGlite } from '@electric-sql/pglite';
import fs from 'node:fs';
import { asDiskFull, freeBytes } from '../basics/disk.js';
import { seedFromTemplate } from './pglite-template.js';
import { SqlCatalog } from './sql-catalog.js';

const diskFull = (err: unknown): never => {
  throw asDiskFull(err);
};

export async function openPgliteCatalog(dir: string): Promise<SqlCatalog> {
  // A new catalog starts as a copy of the install-time template (no initdb at run time); if the
  // copy fails (a full disk), PGlite's own create below reports it.
  try {
    seedFromTemplate(dir);
  } catch {
    // falls through
  }
  fs.mkdirSync(dir, { recursive: true });
  let db: PGlite;
  try {
    db = await PGlite.create(dir);
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
