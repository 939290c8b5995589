/**
 * Generates the ClickHouse expressions that turn raw text values (a JSON value as extracted, or a
 * CSV field) into a column's type, inside the engine. Each column yields a typed value and a
 * "bad" flag, so one pass routes good rows to the table and bad ones to quarantine with a reason.
 */
import { quoteString } from '../engine/engine.js';
import { splitTopLevel } from '../schema/sql.js';

/** A type split at its top level: `DateTime64(3, 'UTC')` → { name: 'DateTime64', args: ['3', "'UTC'"] }. */
export interface TypeParts {
  name: string;
  args: string[];
}

export function splitType(type: string): TypeParts {
  const t = type.trim();
  const open = t.indexOf('(');
  if (open < 0 || !t.endsWith(')')) return { name: t, args: [] };
  return { name: t.slice(0, open).trim(), args: splitTopLevel(t.slice(open + 1, -1)) };
}

/** Removes LowCardinality/Nullable/SimpleAggregateFunction wrappers; says whether NULL is allowed. */
export function unwrap(type: string): { inner: string; nullable: boolean } {
  let t = type.trim();
  let nullable = false;
  for (;;) {
    const p = splitType(t);
    if (p.name === 'Nullable') {
      nullable = true;
      t = p.args[0];
    } else if (p.name === 'LowCardinality') t = p.args[0];
    else if (p.name === 'SimpleAggregateFunction') t = p.args[p.args.length - 1];
    else return { inner: t, nullable };
  }
}

let lambdaCounter = 0;

/** A conversion: the typed value, and an expression that is true when the (non-NULL) text was not valid. */
export interface Conversion {
  value: string;
  /** Given a reference to the computed value, the invalid test. */
  invalid: (valueRef: string) => string;
}

const scalar = (value: string): Conversion => ({ value, invalid: (v) => `(${v} IS NULL)` });

/**
 * Converts the Nullable(String) expression `raw` (never NULL where it is evaluated) into `type`'s
 * base value. `mode` says where the text came from: JSON values (strings unquoted, arrays/objects
 * as JSON text) or CSV fields.
 */
export function convert(raw: string, type: string, mode: 'json' | 'csv'): Conversion {
  const { inner } = unwrap(type);
  const p = splitType(inner);
  const n = p.name;
  if (n === 'String') return { value: raw, invalid: () => '0' };
  if (n === 'FixedString') return scalar(`if(length(${raw}) <= ${Number(p.args[0])}, ${raw}, NULL)`);
  if (/^(U?Int(8|16|32|64|128|256)|Float(32|64)|BFloat16|Decimal(32|64|128|256)?|Bool|Boolean)$/.test(n)) {
    return scalar(`accurateCastOrNull(${raw}, ${quoteString(inner)})`);
  }
  if (n === 'Date' || n === 'Date32')
    return scalar(`${n === 'Date' ? 'toDateOrNull' : 'toDate32OrNull'}(toString(parseDateTime64BestEffortOrNull(${raw}, 0, 'UTC')))`);
  if (n === 'DateTime') {
    return scalar(p.args.length ? `parseDateTimeBestEffortOrNull(${raw}, ${p.args[0]})` : `parseDateTimeBestEffortOrNull(${raw})`);
  }
  if (n === 'DateTime64') {
    const prec = Number(p.args[0] ?? 3);
    return scalar(p.args.length > 1 ? `parseDateTime64BestEffortOrNull(${raw}, ${prec}, ${p.args[1]})` : `parseDateTime64BestEffortOrNull(${raw}, ${prec})`);
  }
  if (n === 'UUID') return scalar(`toUUIDOrNull(${raw})`);
  if (n === 'IPv4') return scalar(`toIPv4OrNull(${raw})`);
  if (n === 'IPv6') return scalar(`toIPv6OrNull(${raw})`);
  if (n === 'Enum8' || n === 'Enum16' || n === 'Enum') {
    const names = p.args.map((a) => a.replace(/\s*=\s*-?\d+\s*$/, '').trim()).filter((a) => a.startsWith("'"));
    return scalar(`if(${raw} IN (${names.join(', ')}), ${raw}, NULL)`);
  }
  if (n === 'JSON' || n === 'Object') return scalar(`if(isValidJSON(${raw}), ${raw}, NULL)`);
  const jt = jsonText(raw, mode);
  if (n === 'Array') {
    // Elements are converted one by one; the array is invalid when any element is.
    const elemType = p.args[0];
    const elemNullable = unwrap(elemType).nullable;
    const e = `_e${++lambdaCounter}`;
    const elems = `JSONExtract(${jt}, 'Array(Nullable(String))')`;
    const elem = convert(e, elemType, 'json');
    return {
      value: `arrayMap(${e} -> ${elem.value}, ${elems})`,
      invalid: () =>
        `(JSONType(${jt}) != 'Array' OR arrayExists(${e} -> if(${e} IS NULL, ${elemNullable ? '0' : '1'}, ${elem.invalid(elem.value)}), ${elems}))`,
    };
  }
  if (n === 'Map' || n === 'Tuple' || n === 'Nested') {
    return { value: `JSONExtract(${jt}, ${quoteString(inner)})`, invalid: () => `(JSONType(${jt}) NOT IN ('Object', 'Array'))` };
  }
  if (n === 'AggregateFunction') return { value: `CAST(NULL, 'Nullable(String)')`, invalid: () => '1' };
  return scalar(`accurateCastOrNull(${raw}, ${quoteString(inner)})`);
}

/** CSV cells may carry ClickHouse-style arrays with single quotes: make them JSON. */
function jsonText(raw: string, mode: 'json' | 'csv'): string {
  const r = `ifNull(${raw}, '')`;
  return mode === 'json' ? r : `if(isValidJSON(${r}), ${r}, replaceAll(${r}, '\\'', '"'))`;
}

/** Whether a missing value of this type has a natural empty value (arrays, maps) instead of failing. */
export function emptyValue(type: string): string | null {
  const { inner } = unwrap(type);
  const n = splitType(inner).name;
  if (n === 'Array') return '[]';
  if (n === 'Map') return 'map()';
  return null;
}
