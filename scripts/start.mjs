#!/usr/bin/env node
/**
 * `npm start`: builds what is missing or older than its sources (the console, the server bundle,
 * the catalog template; each in a child process, as `npm run build` would), then runs the built
 * server in this process. The checks are a walk of file times, a few milliseconds: a start with
 * everything built runs one Node process, not one per check. Without a bundle (no esbuild) the
 * sources run through tsx.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isStale as consoleStale } from '../console/build.mjs';
import { SERVER_BUNDLE, serverStale, TEMPLATE_MODULE } from './build-server.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const build = (script) => execFileSync(process.execPath, [path.join(root, script), '--if-stale'], { stdio: 'inherit' });

if (consoleStale()) build('console/build.mjs');
if (serverStale() || !(await import(pathToFileURL(TEMPLATE_MODULE).href)).templateUsable()) build('scripts/build-server.mjs');
if (fs.existsSync(SERVER_BUNDLE)) {
  await import(pathToFileURL(SERVER_BUNDLE).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(path.join(root, 'src', 'main.ts')).href);
}
