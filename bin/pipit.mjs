#!/usr/bin/env node
// The `pipit` command (`npx pipit ...`). Pipit runs its TypeScript sources through tsx (a runtime
// dependency, as for `npm start`), registered here so the CLI needs no build step.
import { register } from 'tsx/esm/api';

// `pipit dev` may run the embedded server in this process: give the engine's lanes their threads
// (as `npm start` does) before libuv's pool starts.
process.env.UV_THREADPOOL_SIZE ??= String(2 * Number(process.env.PIPIT_ENGINE_SESSIONS || 4) + 8);
register();
// `pipit ... | head` closes the pipe early: stop quietly instead of crashing on EPIPE.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});
const { main } = await import('../src/cli/main.ts');
await main();
