#!/usr/bin/env node
/**
 * Builds the web console (console/ → dist/console/) with Vite.
 *   node console/build.mjs             build (the `prepare` script: npm install / npm ci run it)
 *   node console/build.mjs --if-stale  build only when dist/console is missing or older than its
 *                                      sources or the lockfile (`npm start`, and the tests)
 * Without Vite (an install without devDependencies) it says so and exits 0: the API works
 * without the console, and /console/ then answers that it is not built.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const index = path.join(root, 'dist', 'console', 'index.html');

function newest(p) {
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...fs.readdirSync(p).map((e) => newest(path.join(p, e))));
}

export function isStale() {
  if (!fs.existsSync(index)) return true;
  const sources = Math.max(newest(here), newest(path.join(root, 'package-lock.json')));
  return fs.statSync(index).mtimeMs < sources;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--if-stale') && !isStale()) process.exit(0);
  let vite;
  try {
    vite = await import('vite');
  } catch {
    process.stderr.write('Pipit console: Vite is not installed (a devDependency), so the console is not built; the API works without it.\n');
    process.exit(0);
  }
  const started = Date.now();
  await vite.build({ configFile: path.join(here, 'vite.config.ts'), logLevel: 'warn' });
  process.stderr.write(`Pipit console built into dist/console in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}
