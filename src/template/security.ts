/**
 * The security whitelist applied to every {{ }} expression when the template is parsed
 * (reference §6.2): only whitelisted function and method names, `+ - *`, unary `-`/`not`,
 * constant or nested subscripts. Messages match Tinybird's SecurityException texts, with
 * Python's ast.dump() rendering of the offending node.
 */
import type { AnyNode, Node } from './ast.js';
import { reprFloat, reprStr } from './pyfmt.js';

export const VALID_CUSTOM_FUNCTION_NAMES = new Set([
  'defined',
  'column',
  'columns',
  'day_diff',
  'date_diff_in_seconds',
  'date_diff_in_minutes',
  'date_diff_in_hours',
  'date_diff_in_days',
  'split_to_array',
  'enumerate_with_last',
  'sql_and',
]);

export const VALID_FUNCTION_NAMES = new Set([
  'Boolean',
  'DateTime',
  'DateTime64',
  'Date',
  'Float32',
  'Float64',
  'Int8',
  'Int16',
  'Int32',
  'Int64',
  'Int128',
  'Int256',
  'UInt8',
  'UInt16',
  'UInt32',
  'UInt64',
  'UInt128',
  'UInt256',
  'String',
  'Array',
  'symbol',
  'cache_ttl',
  'error',
  'custom_error',
  'backend_hint',
  'activate',
  'disable',
  'sql_unescape',
  'max_threads',
  'tb_secret',
  'tb_var',
  'Int',
  'table',
  'TABLE',
  'len',
  'list',
  'min',
  'max',
  'Integer',
  'int',
  'float',
  'JSON',
  ...VALID_CUSTOM_FUNCTION_NAMES,
]);

export const VALID_METHOD_NAMES = new Set(['split', 'get', 'join', 'replace']);

export class SecurityError extends Error {}

function dumpConst(v: unknown, bytes?: boolean): string {
  if (v === null) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return reprFloat(v);
  if (typeof v === 'string') return (bytes ? 'b' : '') + reprStr(v);
  return String(v);
}

const list = (xs: AnyNode[]) => '[' + xs.map(dump).join(', ') + ']';

/** Python's ast.dump() (3.9–3.12 layout) of a node. */
export function dump(n: AnyNode | null): string {
  if (n === null) return 'None';
  switch (n.k) {
    case 'Name':
      return `Name(id=${reprStr(n.id)}, ctx=${n.ctx}())`;
    case 'Constant':
      return `Constant(value=${dumpConst(n.value, n.bytes)})`;
    case 'Attribute':
      return `Attribute(value=${dump(n.value)}, attr=${reprStr(n.attr)}, ctx=${n.ctx}())`;
    case 'Call':
      return `Call(func=${dump(n.func)}, args=${list(n.args)}, keywords=${list(n.keywords)})`;
    case 'keyword':
      return n.arg === null ? `keyword(value=${dump(n.value)})` : `keyword(arg=${reprStr(n.arg)}, value=${dump(n.value)})`;
    case 'comprehension':
      return `comprehension(target=${dump(n.target)}, iter=${dump(n.iter)}, ifs=${list(n.ifs)}, is_async=0)`;
    case 'BinOp':
      return `BinOp(left=${dump(n.left)}, op=${n.op}(), right=${dump(n.right)})`;
    case 'UnaryOp':
      return `UnaryOp(op=${n.op}(), operand=${dump(n.operand)})`;
    case 'BoolOp':
      return `BoolOp(op=${n.op}(), values=${list(n.values)})`;
    case 'Compare':
      return `Compare(left=${dump(n.left)}, ops=[${n.ops.map((o) => o + '()').join(', ')}], comparators=${list(n.comparators)})`;
    case 'IfExp':
      return `IfExp(test=${dump(n.test)}, body=${dump(n.body)}, orelse=${dump(n.orelse)})`;
    case 'Subscript':
      return `Subscript(value=${dump(n.value)}, slice=${dump(n.slice)}, ctx=${n.ctx}())`;
    case 'Slice': {
      const f: string[] = [];
      if (n.lower) f.push(`lower=${dump(n.lower)}`);
      if (n.upper) f.push(`upper=${dump(n.upper)}`);
      if (n.step) f.push(`step=${dump(n.step)}`);
      return `Slice(${f.join(', ')})`;
    }
    case 'List':
      return `List(elts=${list(n.elts)}, ctx=${n.ctx}())`;
    case 'Tuple':
      return `Tuple(elts=${list(n.elts)}, ctx=${n.ctx}())`;
    case 'Set':
      return `Set(elts=${list(n.elts)})`;
    case 'Dict':
      return `Dict(keys=[${n.keys.map(dump).join(', ')}], values=${list(n.values)})`;
    case 'JoinedStr':
      return `JoinedStr(values=${list(n.values)})`;
    case 'FormattedValue':
      return `FormattedValue(value=${dump(n.value)}, conversion=${n.conversion}${n.format_spec ? `, format_spec=${dump(n.format_spec)}` : ''})`;
    case 'ListComp':
      return `ListComp(elt=${dump(n.elt)}, generators=${list(n.generators)})`;
    case 'SetComp':
      return `SetComp(elt=${dump(n.elt)}, generators=${list(n.generators)})`;
    case 'GeneratorExp':
      return `GeneratorExp(elt=${dump(n.elt)}, generators=${list(n.generators)})`;
    case 'DictComp':
      return `DictComp(key=${dump(n.key)}, value=${dump(n.value)}, generators=${list(n.generators)})`;
    case 'Starred':
      return `Starred(value=${dump(n.value)}, ctx=${n.ctx}())`;
  }
}

/** Tinybird's check_valid_expr: throws SecurityError for anything outside the whitelist. */
export function checkValidExpr(e: Node): void {
  switch (e.k) {
    case 'Call': {
      const f = e.func;
      if (f.k === 'Name') {
        if (!VALID_FUNCTION_NAMES.has(f.id)) throw new SecurityError(`Invalid function name: ${f.id}`);
      } else if (f.k === 'Call') checkValidExpr(f);
      else if (f.k === 'Attribute') {
        if (!VALID_METHOD_NAMES.has(f.attr)) throw new SecurityError(`Invalid method name: ${f.attr}`);
        checkValidExpr(f.value);
      } else throw new SecurityError(`Invalid function: ${dump(e)}`);
      for (const a of e.args) checkValidExpr(a);
      return;
    }
    case 'Constant':
      if (e.bytes) throw new SecurityError(`Invalid Constant: ${dump(e)}`);
      return;
    case 'Name':
      return;
    case 'UnaryOp':
      if (e.op !== 'USub' && e.op !== 'Not') throw new SecurityError(`Invalid UnaryOp: ${e.op}()`);
      checkValidExpr(e.operand);
      return;
    case 'BinOp':
      if (e.op !== 'Add' && e.op !== 'Mult' && e.op !== 'Sub') throw new SecurityError(`Invalid BinOp: ${e.op}()`);
      checkValidExpr(e.left);
      checkValidExpr(e.right);
      return;
    case 'Subscript': {
      checkValidExpr(e.value);
      const s = e.slice;
      if (s.k === 'Slice') {
        if (s.lower) checkValidExpr(s.lower);
        if (s.upper) checkValidExpr(s.upper);
      } else if (s.k === 'Constant' || s.k === 'Subscript') checkValidExpr(s);
      else throw new SecurityError(`Invalid Slice expression: ${dump(s)}`);
      return;
    }
    case 'Dict':
      for (const k of e.keys) {
        if (k === null) throw new SecurityError('Invalid expression type: None');
        checkValidExpr(k);
      }
      for (const v of e.values) checkValidExpr(v);
      return;
    case 'Tuple':
    case 'List':
    case 'Set':
      for (const x of e.elts) checkValidExpr(x);
      return;
    case 'JoinedStr':
      for (const x of e.values) checkValidExpr(x);
      return;
    case 'FormattedValue':
      checkValidExpr(e.value);
      return;
    case 'IfExp':
      checkValidExpr(e.test);
      checkValidExpr(e.body);
      checkValidExpr(e.orelse);
      return;
    default:
      throw new SecurityError(`Invalid expression type: ${dump(e)}`);
  }
}
