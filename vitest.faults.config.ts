import { defineConfig } from 'vitest/config';

/** The fault suite (`npm run test:faults`): child servers killed with SIGKILL between steps. */
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 1,
  },
});
