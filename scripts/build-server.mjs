#!/usr/bin/env node
/**
 * Builds what `npm start` runs, so that no start compiles anything:
 * - dist/server/main.mjs: the server's TypeScript bundled to one ES module with esbuild
 *   (dependencies stay imports from node_modules), with a source map;
 * - dist/catalog-template/: an initialised, empty PGlite data directory that a new data
 *   directory's catalog is copied from (see src/catalog/pglite-template.ts).
 *   node scripts/build-server.mjs             build both (the `prepare` script: npm install / npm ci)
 *   node scripts/build-server.mjs --if-stale  build what is missing or older than its sources
 *                                             (the `prestart` script)
 * Without esbuild (it comes with tsx) it says so and exits 0: `npm start` then runs the sources through tsx.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist', 'server');
const bundle = path.join(out, 'main.mjs');
const templateModule = path.join(out, 'pglite-template.mjs');

function newest(p) {
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...fs.readdirSync(p).map((e) => newest(path.join(p, e))));
}

const ifStale = process.argv.includes('--if-stale');
const started = Date.now();
const sources = Math.max(newest(path.join(root, 'src')), newest(path.join(root, 'package-lock.json')));
const stale = (f) => !fs.existsSync(f) || fs.statSync(f).mtimeMs < sources;
if (!ifStale || stale(bundle) || stale(templateModule)) {
  let esbuild;
  try {
    esbuild = await import('esbuild');
  } catch {
    process.stderr.write('Pipit: esbuild is not installed, so the server is not built; `npm run start:dev` runs the sources through tsx.\n');
    process.exit(0);
  }
  const common = { bundle: true, platform: 'node', format: 'esm', packages: 'external', target: 'node20', sourcemap: true, logLevel: 'warning' };
  // Built to temporary names and renamed, so a start never sees half a file.
  await esbuild.build({ ...common, entryPoints: [path.join(root, 'src', 'main.ts')], outfile: `${bundle}.tmp.mjs` });
  await esbuild.build({ ...common, entryPoints: [path.join(root, 'src', 'catalog', 'pglite-template.ts')], outfile: `${templateModule}.tmp.mjs` });
  for (const f of [bundle, templateModule]) {
    fs.renameSync(`${f}.tmp.mjs.map`, `${f}.map`);
    fs.writeFileSync(f, fs.readFileSync(`${f}.tmp.mjs`, 'utf8').replace(/\.tmp\.mjs\.map\s*$/, '.map\n'));
    fs.rmSync(`${f}.tmp.mjs`);
  }
  process.stderr.write(`Pipit server built into dist/server in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}
const template = await import(pathToFileURL(templateModule).href);
if (!ifStale || !template.templateUsable()) {
  const t = Date.now();
  await template.buildTemplate();
  process.stderr.write(`Pipit catalog template built into dist/catalog-template in ${((Date.now() - t) / 1000).toFixed(1)} s\n`);
}
