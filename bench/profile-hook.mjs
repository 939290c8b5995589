/**
 * Preloaded (`node --import`) into the server process that bench/endpoint.ts starts when it
 * profiles (BENCH_ENDPOINT_PROFILE=1): SIGUSR2 starts the inspector's CPU profiler (as
 * `--cpu-prof`, 100 µs sampling, but over the measurement only), the next SIGUSR2 stops it and
 * writes the profile to `$BENCH_PROFILE_DIR/<n>.cpuprofile` (then `<n>.done`). Not loaded otherwise.
 */
import fs from 'node:fs';
import { Session } from 'node:inspector';
import path from 'node:path';

const dir = process.env.BENCH_PROFILE_DIR;
const session = new Session();
session.connect();
let running = false;
let n = 0;
const post = (method, params) => new Promise((resolve, reject) => session.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res))));
process.on('SIGUSR2', async () => {
  if (!running) {
    running = true;
    await post('Profiler.enable');
    await post('Profiler.setSamplingInterval', { interval: 100 });
    await post('Profiler.start');
    fs.writeFileSync(path.join(dir, `${n}.started`), '');
  } else {
    const { profile } = await post('Profiler.stop');
    running = false;
    fs.writeFileSync(path.join(dir, `${n}.cpuprofile`), JSON.stringify(profile));
    fs.writeFileSync(path.join(dir, `${n}.done`), '');
    n++;
  }
});
