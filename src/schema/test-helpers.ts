/** Helpers shared by the schema unit tests. */
import { SchemaError } from './errors.js';

/** The message of the SchemaError `fn` throws; any other error, or none, fails the test. */
export function schemaError(fn: () => unknown, expected = 'a SchemaError'): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof SchemaError) return e.message;
    throw e;
  }
  throw new Error(`expected ${expected}`);
}
