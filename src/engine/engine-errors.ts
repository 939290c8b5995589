/**
 * The one mapping of engine failures at the boundary, shared by both engines: parsed into
 * EngineError `{code, type}`, and a full disk (the engine's NOT_ENOUGH_SPACE, a failed file write)
 * becomes the one DiskFullError every store raises.
 */
import { DiskFullError, isDiskFull } from '../basics/disk.js';
import { EngineError } from './engine.js';

export function engineError(err: unknown): EngineError | DiskFullError {
  if (err instanceof DiskFullError) return err;
  const e = EngineError.from(err);
  return isDiskFull(e) ? new DiskFullError(undefined, e.message) : e;
}
