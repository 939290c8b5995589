/**
 * Limits on the shape of user input that is not about its meaning: how deeply JSON may nest
 * (code that walks, copies or prints a value recurses once per level, so a 100,000-level
 * `[[[[...` would exhaust the stack), and NUL characters, which the catalog's text and jsonb
 * columns cannot hold. Both are refused with a 400 that names the problem.
 */
import { badRequest } from './errors.js';

/** Deepest JSON nesting accepted in request bodies, parameters and sampled data rows. */
export const MAX_JSON_DEPTH = 100;

/** Depth of the deepest `[`/`{` nesting in JSON text (strings skipped), stopping early past `limit`. */
export function jsonDepth(text: string, limit = Infinity): number {
  let depth = 0;
  let max = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      depth--;
    }
  }
  return max;
}

/** Throws 400 when JSON text nests deeper than {@link MAX_JSON_DEPTH}; `what` names the input. */
export function checkJsonDepth(text: string, what = 'The JSON body'): void {
  if (jsonDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
    throw badRequest(`${what} is nested too deeply: at most ${MAX_JSON_DEPTH} levels of arrays and objects are accepted`);
  }
}

/**
 * `JSON.parse` for user input: 400 `invalidMessage` when the text is not JSON, and the depth
 * error of {@link checkJsonDepth} when it nests too deeply.
 */
export function parseUserJson(text: string, invalidMessage: string, what?: string): unknown {
  checkJsonDepth(text, what);
  try {
    return JSON.parse(text);
  } catch {
    throw badRequest(invalidMessage);
  }
}

/**
 * Where a value holds a NUL character: `''` for a string itself, a path like `nodes[0].sql`
 * inside objects and arrays (keys too), or null when there is none.
 */
export function nulPath(value: unknown, path = ''): string | null {
  if (typeof value === 'string') return value.includes('\u0000') ? path : null;
  if (value === null || typeof value !== 'object') return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const p = nulPath(value[i], `${path}[${i}]`);
      if (p !== null) return p;
    }
    return null;
  }
  if (value instanceof Date || Buffer.isBuffer(value)) return null;
  for (const [k, v] of Object.entries(value)) {
    const here = path ? `${path}.${k}` : k;
    if (k.includes('\u0000')) return here;
    const p = nulPath(v, here);
    if (p !== null) return p;
  }
  return null;
}

/** The 400 for a NUL character in the named input. */
export function nulError(field: string | null): Error {
  const what = field ? `"${field.replace(/\u0000/g, '\\u0000').slice(0, 100)}"` : 'value';
  return badRequest(`Invalid ${what}: text must not contain the NUL character (\\u0000)`);
}
