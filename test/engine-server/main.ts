/**
 * `npm run engine-test-server -- --port <p> --data <dir> [--host 127.0.0.1]`: the ClickHouse-compatible
 * HTTP test server (server.ts) as a process. Prints `engine-test-server listening on <url>` when ready;
 * stops on SIGTERM/SIGINT.
 */
import { startEngineTestServer } from './server.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const port = Number(arg('port') ?? 8123);
const data = arg('data');
if (!data || !Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write('usage: npm run engine-test-server -- --port <port> --data <dir> [--host <address>]\n');
  process.exit(2);
}
const server = await startEngineTestServer({ port, data, host: arg('host') ?? '127.0.0.1' });
process.stdout.write(`engine-test-server listening on ${server.url}\n`);
const stop = () => {
  server.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
