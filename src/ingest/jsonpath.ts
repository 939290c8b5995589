/**
 * Tinybird JSONPaths as the ingest uses them: `$`, `$.a.b`, `$['a b'].c`, `$.items[:]` and
 * `$.items[:].field`. Rejects anything else with a message naming the path.
 */
import { badRequest } from '../basics/errors.js';

export interface JsonPath {
  /** `$`: the whole line. */
  whole: boolean;
  /** Object keys down to the value (or to the array when `array`). */
  keys: string[];
  /** The path has `[:]`: the value is an array. */
  array: boolean;
  /** Keys applied to each array element after `[:]`. */
  rest: string[];
}

export function parseJsonPath(path: string): JsonPath {
  const p = path.trim();
  if (!p.startsWith('$')) throw badRequest(`Invalid JSONPath: '${path}'. It must start with '$'`);
  if (p === '$') return { whole: true, keys: [], array: false, rest: [] };
  const keys: string[] = [];
  const rest: string[] = [];
  let array = false;
  let i = 1;
  const push = (k: string) => (array ? rest : keys).push(k);
  while (i < p.length) {
    if (p[i] === '.' && p[i + 1] === '[') {
      i++;
    } else if (p[i] === '.') {
      const m = /^[^.[\]]+/.exec(p.slice(i + 1));
      if (!m) throw badRequest(`Invalid JSONPath: '${path}'`);
      push(m[0]);
      i += 1 + m[0].length;
    } else if (p.startsWith('[:]', i)) {
      if (array) throw badRequest(`Invalid JSONPath: '${path}'. Only one [:] is supported`);
      array = true;
      i += 3;
    } else if (p[i] === '[' && (p[i + 1] === "'" || p[i + 1] === '"')) {
      const q = p[i + 1];
      const end = p.indexOf(q + ']', i + 2);
      if (end < 0) throw badRequest(`Invalid JSONPath: '${path}'`);
      push(p.slice(i + 2, end));
      i = end + 2;
    } else {
      throw badRequest(`Invalid JSONPath: '${path}'`);
    }
  }
  if (keys.length === 0) throw badRequest(`Invalid JSONPath: '${path}'`);
  return { whole: false, keys, array, rest };
}
