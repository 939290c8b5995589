#!/usr/bin/env node
// The `pipit` command (`npx pipit ...`). It runs the CLI's bundle, dist/server/cli.mjs (built with
// the server's by `npm install` and `npm start`), when it is there and newer than the sources;
// otherwise the TypeScript sources through tsx (a runtime dependency), so it needs no build step.
import fs from 'node:fs';
import { pathToFileURL } from 'node:url';
import { CLI_BUNDLE, serverStale } from '../scripts/build-server.mjs';

// `pipit dev` may run the embedded server in this process: give the engine's lanes their threads
// (as `npm start` does) before libuv's pool starts.
process.env.UV_THREADPOOL_SIZE ??= String(2 * Number(process.env.PIPIT_ENGINE_SESSIONS || 8) + 8);
// `pipit ... | head` closes the pipe early: stop quietly instead of crashing on EPIPE.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});
let cli;
if (fs.existsSync(CLI_BUNDLE) && !serverStale()) cli = await import(pathToFileURL(CLI_BUNDLE).href);
else {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import('../src/cli/main.ts');
}
await cli.main();
