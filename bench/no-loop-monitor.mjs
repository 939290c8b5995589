/**
 * Preloaded into a server process (`node --import=<this file> ...`, e.g. as an AB_VARIANTS word of
 * bench/endpoint-ab.ts): the event-loop delay monitor never starts (its histogram stays empty), so
 * its periodic timer does not wake the main thread. For measuring what that timer costs; the
 * pipit_event_loop_lag_seconds gauge reads nothing meaningful then.
 */
import { syncBuiltinESMExports } from 'node:module';
import perfHooks from 'node:perf_hooks';

const monitor = perfHooks.monitorEventLoopDelay;
perfHooks.monitorEventLoopDelay = (options) => {
  const h = monitor(options);
  h.enable = () => false;
  return h;
};
syncBuiltinESMExports();
