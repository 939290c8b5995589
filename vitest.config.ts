import { defineConfig } from 'vitest/config';

// Every running engine call holds a thread of libuv's pool, whose size is read once when a
// process starts: the test workers (forks of this process) and the servers they spawn inherit it.
// 24 threads fit the default eight sessions per lane plus spare threads (src/engine/lanes.ts), as npm start gives.
process.env.UV_THREADPOOL_SIZE ??= '24';

export default defineConfig({
  test: {
    // Stops the PostgreSQL clusters and engine test servers a worker left running (test/helpers/leftovers.ts).
    globalSetup: ['test/global-setup.ts'],
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // The kill -9 fault suite restarts child servers a dozen times: `npm run test:faults`.
    exclude: ['**/node_modules/**', 'test/faults/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // chDB holds one data directory per process: each test file runs in its own fork.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
