import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
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
