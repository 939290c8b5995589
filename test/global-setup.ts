/**
 * vitest global setup (main and remote configs): a directory where the test workers register the
 * processes they start (test/helpers/leftovers.ts), and a teardown that stops what is still
 * running when the run ends, so no PostgreSQL cluster or engine test server outlives it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stopLeftovers } from './helpers/leftovers.js';

export default function setup(): () => Promise<void> {
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-test-run-'));
  // Inherited by the workers, which are forked after this runs.
  process.env.PIPIT_TEST_RUN_DIR = runDir;
  return async () => {
    const n = await stopLeftovers(runDir);
    if (n) process.stderr.write(`test teardown: stopped ${n} process(es) the tests left running\n`);
  };
}
