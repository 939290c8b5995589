/**
 * A Pipit server for fault tests, run as a child process (`node --import tsx test/helpers/fault-server.ts`)
 * so the parent can SIGKILL it. Configuration from the environment (PIPIT_DATA_DIR, and
 * PIPIT_TEST_PAUSE_AT to stop an operation at a journal checkpoint). Before it listens it prints
 * what a consistency check of the started (recovered) data directory found:
 *
 *   PIPIT_CHECK {"intents":0,"orphans":[],"missing":[],"mismatched":[],"views":[]}
 *   PIPIT_READY <port> <admin token>
 *   PIPIT_PAUSED <checkpoint>            (when an operation reaches PIPIT_TEST_PAUSE_AT)
 */
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/config.js';
import { consistency } from './consistency.js';

async function main(): Promise<void> {
  const config = loadConfig(process.env, { port: 0, host: '127.0.0.1', logLevel: process.env.PIPIT_LOG_LEVEL || 'silent' });
  const app = await createApp(config);
  process.stdout.write(`PIPIT_CHECK ${JSON.stringify(await consistency(app.services))}\n`);
  await app.http.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.http.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  process.stdout.write(`PIPIT_READY ${port} ${app.services.localTokens.workspace_admin_token}\n`);
}

main().catch((err) => {
  process.stderr.write(`fault server failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
