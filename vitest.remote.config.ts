import { defineConfig } from 'vitest/config';

// `npm run test:remote`: the integration suites again in the scale-out configuration: the remote engine
// (src/engine/remote-engine.ts) against the ClickHouse-compatible test server (test/engine-server), one
// per test file, and the catalog on a throw-away PostgreSQL cluster (one per worker, test/helpers/postgres.ts).
process.env.UV_THREADPOOL_SIZE ??= '24';
process.env.PIPIT_TEST_ENGINE = 'remote';
process.env.PIPIT_TEST_CATALOG ??= 'pg';

export default defineConfig({
  test: {
    // Stops the PostgreSQL clusters and engine test servers a worker left running (test/helpers/leftovers.ts).
    globalSetup: ['test/global-setup.ts'],
    include: [
      'test/integration/datasources-api.test.ts',
      'test/integration/events-api.test.ts',
      'test/integration/ingest-paths.test.ts',
      'test/integration/sql-api.test.ts',
      'test/integration/pipes-api.test.ts',
      'test/integration/tokens-api.test.ts',
      'test/integration/materialized.test.ts',
      'test/integration/copy-pipes.test.ts',
      'test/integration/remote-engine.test.ts',
      'test/integration/stages.test.ts',
    ],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
  },
});
