/**
 * Resource caps for one render. Rendering is synchronous, so one budget object is shared by the
 * interpreter, builtins and functions of the render in progress.
 */
import { LimitError } from './errors.js';

export const MAX_ITERATIONS = 100_000;
export const MAX_OUTPUT = 10 * 1024 * 1024;
export const MAX_ITEMS = 1_000_000;
export const MAX_STRING = 10 * 1024 * 1024;
export const MAX_DEPTH = 200;
export const MAX_INT_BITS = 4096;

export const budget = { steps: 0 };

export function resetBudget(): void {
  budget.steps = 0;
}

/** One loop/comprehension iteration. */
export function step(): void {
  if (++budget.steps > MAX_ITERATIONS) throw new LimitError(`Template Syntax Error: the template exceeded the limit of ${MAX_ITERATIONS} loop iterations`);
}

export function checkItems(n: number | bigint): void {
  if (n > MAX_ITEMS) throw new LimitError(`Template Syntax Error: the template built a sequence of more than ${MAX_ITEMS} items`);
}

export function checkString(n: number | bigint): void {
  if (n > MAX_STRING) throw new LimitError('Template Syntax Error: the template built a string larger than 10 MB');
}

export function checkInt(v: bigint): bigint {
  const bits = (v < 0n ? -v : v).toString(16).length * 4;
  if (bits > MAX_INT_BITS) throw new LimitError(`Template Syntax Error: integer too large (more than ${MAX_INT_BITS} bits)`);
  return v;
}
