/**
 * The embedded catalog store: PGlite (PostgreSQL compiled to WASM) persisted under the data
 * directory. Same SQL as the PostgreSQL catalog used for scale-out. On a full disk PGlite fails
 * the statement (SQLSTATE 53100, the transaction rolls back) and stays usable: that failure is
 * the DiskFullError of every store, a retryable 503.
 */
import { PGlite } from '@electric-sql/pglite';
import fs from 'node:fs';
import { asDiskFull } from '../domain/disk.js';
import { SqlCatalog } from './sql-catalog.js';

const diskFull = (err: unknown): never => {
  throw asDiskFull(err);
};

export async function openPgliteCatalog(dir: string): Promise<SqlCatalog> {
  fs.mkdirSync(dir, { recursive: true });
  const db = await PGlite.create(dir);
  return SqlCatalog.open({
    query: (sql, params) => db.query(sql, params).catch(diskFull) as never,
    exec: (sql) => db.exec(sql).catch(diskFull),
    close: () => db.close(),
  });
}
