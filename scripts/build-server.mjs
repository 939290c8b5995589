#!/usr/bin/env node
/**
 * Builds what `npm start` runs, so that no start compiles anything:
 * - dist/server/main.mjs: the server's TypeScript bundled with esbuild with its pure-JavaScript
 *   dependencies (EXTERNAL ones stay imports from node_modules), with source maps.
 *   dist/server/cli.mjs is the `pipit` command's (bin/pipit.mjs), sharing its chunks. Code that the sources import dynamically is a chunk of
 *   its own (dist/server/chunks/), loaded only when used: the remote engine and its ClickHouse
 *   client, the PostgreSQL catalog and node-postgres, chDB or PGlite when the other is configured;
 * - dist/catalog-template/: an initialised, empty PGlite data directory that a new data
 *   directory's catalog is copied from (see src/catalog/pglite-template.ts).
 *   node scripts/build-server.mjs             build both (the `prepare` script: npm install / npm ci)
 *   node scripts/build-server.mjs --if-stale  build what is missing or older than its sources
 *                                             (scripts/start.mjs, on `npm start`)
 * Without esbuild (it comes with tsx) it says so and exits 0: scripts/start.mjs then runs the
 * sources through tsx.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist', 'server');
export const SERVER_BUNDLE = path.join(out, 'main.mjs');
export const TEMPLATE_MODULE = path.join(out, 'pglite-template.mjs');
export const CLI_BUNDLE = path.join(out, 'cli.mjs');
const ENTRIES = {
  main: path.join(root, 'src', 'main.ts'),
  'pglite-template': path.join(root, 'src', 'catalog', 'pglite-template.ts'),
  cli: path.join(root, 'src', 'cli', 'main.ts'),
};
/** Packages left as imports from node_modules (native code, WASM, or only loaded by some configurations). */
const EXTERNAL = ['chdb', '@electric-sql/pglite', 'pg', '@clickhouse/client', 'tsx', 'esbuild'];
/** Chunks no build references any more are removed once this old (a server starting meanwhile may still load one). */
const CHUNK_GRACE_MS = 10 * 60 * 1000;

/** The newest modification time under `p`; 0 when it is missing (an installed package has no lockfile). */
function newest(p) {
  let st;
  try {
    st = fs.statSync(p);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...fs.readdirSync(p).map((e) => newest(path.join(p, e))));
}

/** Whether the bundle is missing or older than `src/`, the lockfile or this script (how it is built). */
export function serverStale() {
  const sources = Math.max(newest(path.join(root, 'src')), newest(path.join(root, 'package-lock.json')), newest(fileURLToPath(import.meta.url)));
  return [SERVER_BUNDLE, TEMPLATE_MODULE, CLI_BUNDLE].some((f) => !fs.existsSync(f) || fs.statSync(f).mtimeMs < sources);
}

/**
 * Bundles into a temporary directory, then moves the chunks in (their names carry a hash of their
 * content, so an existing name is the same file) and the entries last, each with a rename: a start
 * never sees half a file, nor an entry whose chunks are not there yet.
 */
async function buildServer(esbuild) {
  const tmp = `${out}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  try {
    const result = await esbuild.build({
      entryPoints: ENTRIES,
      absWorkingDir: root,
      outdir: tmp,
      bundle: true,
      splitting: true,
      chunkNames: 'chunks/[name]-[hash]',
      outExtension: { '.js': '.mjs' },
      platform: 'node',
      format: 'esm',
      // Native or WASM packages, and those only a configuration loads, stay imports; the rest is
      // bundled (loading fastify's ~140 CommonJS files one by one took ~170 ms of every start).
      external: EXTERNAL,
      // Bundled CommonJS requires Node's built-ins through a real `require`.
      banner: { js: "import { createRequire as __pipitCreateRequire } from 'node:module'; const require = __pipitCreateRequire(import.meta.url);" },
      target: 'node20',
      sourcemap: true,
      metafile: true,
      logLevel: 'warning',
    });
    fs.mkdirSync(path.join(out, 'chunks'), { recursive: true });
    const built = Object.keys(result.metafile.outputs).map((f) => path.relative(tmp, path.resolve(root, f)));
    const chunks = built.filter((f) => f.startsWith(`chunks${path.sep}`));
    for (const f of chunks) fs.renameSync(path.join(tmp, f), path.join(out, f));
    for (const f of built.filter((f) => !chunks.includes(f))) fs.renameSync(path.join(tmp, f), path.join(out, f));
    const keep = new Set(chunks.map((f) => path.basename(f)));
    for (const f of fs.readdirSync(path.join(out, 'chunks'))) {
      const p = path.join(out, 'chunks', f);
      if (!keep.has(f) && Date.now() - fs.statSync(p).mtimeMs > CHUNK_GRACE_MS) fs.rmSync(p, { force: true });
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const ifStale = process.argv.includes('--if-stale');
  const started = Date.now();
  if (!ifStale || serverStale()) {
    let esbuild;
    try {
      esbuild = await import('esbuild');
    } catch {
      process.stderr.write('Pipit: esbuild is not installed, so the server is not built; `npm start` runs the sources through tsx.\n');
      process.exit(0);
    }
    await buildServer(esbuild);
    process.stderr.write(`Pipit server built into dist/server in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  }
  const template = await import(pathToFileURL(TEMPLATE_MODULE).href);
  if (!ifStale || !template.templateUsable()) {
    const t = Date.now();
    await template.buildTemplate();
    process.stderr.write(`Pipit catalog template built into dist/catalog-template in ${((Date.now() - t) / 1000).toFixed(1)} s\n`);
  }
}
