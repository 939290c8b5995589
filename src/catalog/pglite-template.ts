/**
 * A freshly initialised PGlite data directory, made once at install time (`npm run build:server`,
 * run by `prepare` and, when missing, by `npm start`) and copied into a new data directory's catalog
 * on first start: PGlite's initdb takes 3–5 s of WASM work and ~1,000 file creations, a copy of
 * its result well under one. The template is an empty cluster (only the `postgres` database) (no Pipit tables, no tokens:
 * migrations run on the copy as on any catalog), keyed by the PGlite version that made it; any
 * other version, or no template, and the catalog is created as before.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { migrations } from './migrations.js';
import { PACKAGE_ROOT, packageDirOf } from '../basics/package-dir.js';
import { SqlCatalog } from './sql-catalog.js';

const KEY_FILE = 'pipit-template.json';

export const TEMPLATE_DIR = path.join(PACKAGE_ROOT, 'dist', 'catalog-template');

/** What a template must have been made with: the installed PGlite and these migrations. */
function templateKey(): string {
  const hash = createHash('sha256').update(JSON.stringify(migrations)).digest('hex').slice(0, 16);
  return `pglite ${pgliteVersion()}, migrations ${hash}`;
}

/** The installed PGlite's version: a template made by another one is not used. */
function pgliteVersion(): string {
  const dir = packageDirOf(path.dirname(fileURLToPath(import.meta.resolve('@electric-sql/pglite'))));
  return dir ? String(JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version) : 'unknown';
}

/** Whether the template exists and was made by the installed PGlite with these migrations. */
export function templateUsable(dir = TEMPLATE_DIR): boolean {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, KEY_FILE), 'utf8')).key === templateKey();
  } catch {
    return false;
  }
}

/** Makes the template (replacing a stale one): initdb in a temporary directory, then a rename. */
export async function buildTemplate(dir = TEMPLATE_DIR): Promise<void> {
  const { PGlite } = await import('@electric-sql/pglite');
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  const db = await PGlite.create(tmp);
  // The catalog never creates databases: without the two template databases the directory has
  // ~370 files instead of ~960, and each file is a create on the first start (about 1 ms apiece on
  // a VM's disk).
  await db.exec("UPDATE pg_database SET datistemplate = false WHERE datname IN ('template0', 'template1')");
  await db.exec('DROP DATABASE template0');
  await db.exec('DROP DATABASE template1');
  const catalog = await SqlCatalog.open({
    shared: false,
    query: (sql, params) => db.query(sql, params) as never,
    exec: (sql) => db.exec(sql),
    transaction: (fn) => db.transaction((tx) => fn({ query: (sql, params) => tx.query(sql, params) as never })),
    listen: async () => undefined,
    close: () => db.close(),
  });
  await db.exec('CHECKPOINT');
  await catalog.close();
  fs.writeFileSync(path.join(tmp, KEY_FILE), JSON.stringify({ key: templateKey() }));
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(tmp, dir);
}

/**
 * Makes `to`'s directories like `from`'s and lists the files to copy into them (a PGlite data
 * directory holds only plain files and directories).
 */
function planCopy(from: string, to: string, files: Array<[string, string]>): void {
  fs.mkdirSync(to);
  for (const e of fs.readdirSync(from, { withFileTypes: true })) {
    const a = path.join(from, e.name);
    const b = path.join(to, e.name);
    if (e.isDirectory()) planCopy(a, b, files);
    else if (e.isFile()) files.push([a, b]);
    else throw new Error(`catalog template: ${a} is neither a file nor a directory`);
  }
}

/**
 * Seeds an empty or missing catalog directory from the template. The copy goes to a sibling and is
 * renamed into place, so a crash mid-copy leaves no half catalog (the next start copies again).
 * Its ~420 files are copied on libuv's threads, all at once: a start calls this before it opens
 * the engine, whose load then keeps the main thread busy meanwhile (a copy file by file on the
 * main thread cost a first start ~0.1-0.2 s). Resolves false (and changes nothing) when there is
 * no usable template or `dir` has files.
 */
export async function seedFromTemplate(dir: string, template = TEMPLATE_DIR): Promise<boolean> {
  if (!templateUsable(template)) return false;
  if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0) return false;
  const tmp = `${dir}.seed-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  try {
    const files: Array<[string, string]> = [];
    planCopy(template, tmp, files);
    // Every copy has ended before the directory is removed on a failure.
    const failed = (await Promise.allSettled(files.map(([a, b]) => fs.promises.copyFile(a, b)))).find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    fs.rmSync(path.join(tmp, KEY_FILE), { force: true });
    // Another process may have seeded it while this one copied: its catalog is never replaced.
    if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0) {
      fs.rmSync(tmp, { recursive: true, force: true });
      return false;
    }
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  return true;
}
