/**
 * The embedded catalog store: PGlite (PostgreSQL compiled to WASM) persisted under the data
 * directory. Same SQL as the PostgreSQL catalog used for scale-out.
 */
import { PGlite } from '@electric-sql/pglite';
import fs from 'node:fs';
import { SqlCatalog } from './sql-catalog.js';

export async function openPgliteCatalog(dir: string): Promise<SqlCatalog> {
  fs.mkdirSync(dir, { recursive: true });
  const db = await PGlite.create(dir);
  return SqlCatalog.open({
    query: (sql, params) => db.query(sql, params) as never,
    exec: (sql) => db.exec(sql),
    close: () => db.close(),
  });
}
