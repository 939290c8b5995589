/**
 * Parameter analysis (reference §6.8): Tinybird's get_var_names_and_types, reproduced walk for walk
 * (breadth-first over each expression's AST, body expressions before control statements, later
 * entries of one expression overwriting earlier ones in place) so `params` come out in the same
 * order and with the same fields.
 */
import { childNodes, stmtChildNodes, type AnyNode, type Const, type Node } from './ast.js';
import { RESERVED_VARS } from './compile.js';
import { FUNCTION_LIST, NAMESPACE_NAMES, PARAMETER_TYPES } from './functions.js';
import { parseExpression, parseStatement } from './parser.js';
import { reprFloat, reprStr } from './pyfmt.js';
import { VALID_CUSTOM_FUNCTION_NAMES } from './security.js';
import type { Chunk } from './tornado.js';

export type PValue = Const | PValue[] | undefined;

interface Entry {
  [k: string]: PValue;
}

export class ParamsError extends Error {}

const MAX_SAFE = 9007199254740991n;

function checkDefault(v: PValue): PValue {
  if (typeof v === 'bigint' && v > MAX_SAFE) return v.toString();
  return v;
}

function pyStrConst(v: PValue): string {
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') return reprFloat(v);
  if (Array.isArray(v)) return '[' + v.map((x) => (typeof x === 'string' ? reprStr(x) : pyStrConst(x))).join(', ') + ']';
  return String(v);
}

class NoValue extends Error {}

function listValues(n: Extract<Node, { k: 'List' }>): PValue[] {
  if (!n.elts.length) return [];
  const first = n.elts[0];
  if (first.k === 'Constant')
    return n.elts.map((e) => {
      if (e.k !== 'Constant') throw new NoValue();
      return e.value;
    });
  if (first.k === 'Name')
    return n.elts.map((e) => {
      if (e.k !== 'Name') throw new NoValue();
      return e.id;
    });
  return [];
}

function nodeToValue(x: Node): PValue {
  switch (x.k) {
    case 'Constant':
      return x.value;
    case 'Name':
      return x.id;
    case 'List':
      return listValues(x);
    case 'BinOp': {
      const r = nodeToValue(x.left);
      return truthyP(r) ? r : nodeToValue(x.right);
    }
    case 'UnaryOp':
      if (x.operand.k === 'Constant') {
        const v = x.operand.value;
        if (x.op !== 'USub') return v;
        if (typeof v === 'bigint') return -v;
        if (typeof v === 'number') return -v;
        if (typeof v === 'boolean') return v ? -1n : 0n;
        if (typeof v === 'string') return '';
        throw new NoValue();
      }
      return null;
    default:
      return null;
  }
}

function truthyP(v: PValue): boolean {
  if (v === null || v === undefined || v === false || v === '' || v === 0n || v === 0) return false;
  if (Array.isArray(v)) return v.length > 0;
  return true;
}

type Key = string | bigint | number | boolean | null;

function keyOf(v: PValue): Key {
  if (Array.isArray(v)) throw new ParamsError(`"${pyStrConst(v)}" can not be used as a variable name`);
  return v === undefined ? null : v;
}

const isReserved = (id: string) => RESERVED_VARS.has(id) || FUNCTION_LIST.has(id) || NAMESPACE_NAMES.has(id);

/**
 * get_var_data: the variables of one piece of code, breadth-first. `roots` are the top-level nodes with
 * whether their parent is a Call (true only for the expression_wrapper call around {{ }} at render time).
 */
function varData(roots: { node: AnyNode; parentIsCall: boolean; parentFunc?: string }[]): Entry[] {
  const vars = new Map<Key, Entry>();
  type Q = { node: AnyNode; parent: AnyNode | null; parentIsCall: boolean; parentFunc?: string };
  const queue: Q[] = roots.map((r) => ({ node: r.node, parent: null, parentIsCall: r.parentIsCall, parentFunc: r.parentFunc }));
  for (let qi = 0; qi < queue.length; qi++) {
    const { node, parent } = queue[qi];
    const parentIsCall = parent ? parent.k === 'Call' : queue[qi].parentIsCall;
    const parentFunc = parent ? (parent.k === 'Call' && parent.func.k === 'Name' ? parent.func.id : undefined) : queue[qi].parentFunc;
    if (node.k === 'Call' && node.func.k === 'Name') {
      try {
        const func = node.func.id;
        const args: PValue[] = [];
        for (const a of node.args) if (a.k !== 'Call') args.push(nodeToValue(a));
        const kwargs: Entry = Object.create(null) as Entry;
        for (const kw of node.keywords) {
          if (kw.arg === null) continue;
          const value = nodeToValue(kw.value);
          kwargs[kw.arg] = value;
          if (kw.arg === 'default') kwargs.default = checkDefault(value);
        }
        if (VALID_CUSTOM_FUNCTION_NAMES.has(func)) {
          if (args.length && Array.isArray(args[0])) keyOf(args[0]);
          if (args.length > 0 && !vars.has(keyOf(args[0])) && truthyP(args[0]))
            vars.set(keyOf(args[0]), { type: 'String', default: null, used_in: 'function_call' });
        } else if (func === 'Array') {
          if (!('default' in kwargs)) kwargs.default = checkDefault(args.length > 2 && truthyP(args[2]) ? args[2] : null);
          if (args.length) vars.set(keyOf(args[0]), { type: args.length > 1 ? `Array(${pyStrConst(args[1])})` : 'Array(String)', ...kwargs });
        } else if (PARAMETER_TYPES.includes(func)) {
          if (args.length && args[0] !== null && args[0] !== undefined) {
            if (!('default' in kwargs)) kwargs.default = checkDefault(args.length > 1 ? args[1] : null);
            vars.set(keyOf(args[0]), { type: func, ...kwargs });
          }
        }
      } catch (e) {
        if (e instanceof ParamsError) throw e;
        // a value that cannot be read: Tinybird logs it and goes on
      }
    } else if (node.k === 'Name') {
      const isCast = parentIsCall && parentFunc !== undefined && PARAMETER_TYPES.includes(parentFunc);
      if (!parentIsCall && !isCast && !isReserved(node.id)) vars.set(node.id, { type: 'String', default: null });
    }
    for (const child of childNodes(node)) queue.push({ node: child, parent: node, parentIsCall: false });
  }
  return [...vars.entries()].map(([k, v]) => ({ name: typeof k === 'string' ? k : k === null ? null : String(k), ...v }));
}

const EMBEDDED = /\{\{(.*?)\}\}/g;

type Kind = 'if' | 'elif' | 'while' | 'for' | 'except' | 'set';

function statementKind(statement: string, op: string): { kind: Kind; body: string } | null {
  if (op === 'set') return { kind: 'set', body: statement };
  if (op === 'try' || op === 'else' || op === 'finally') return null;
  return { kind: op as Kind, body: statement.slice(op.length).trim() };
}

/** Tinybird's get_var_names_and_types over the chunk tree. `wrapped`: {{ }} expressions as rendered (inside expression_wrapper). */
export function varNamesAndTypes(chunks: Chunk[], wrapped = false): Entry[] {
  const typedNames = new Set<unknown>();
  const out: Entry[] = [];

  const parseStatementVars = (statement: string, op: string, skip: Set<unknown>): Entry[] => {
    const k = statementKind(statement, op);
    if (!k) return [];
    let code = k.body;
    if (statement.includes('{{') && statement.includes('}}')) code = code.replace(EMBEDDED, 'None');
    try {
      const s = parseStatement(k.kind, code);
      return varData(stmtChildNodes(s).map((node) => ({ node, parentIsCall: false }))).filter((vd) => !skip.has(vd.name));
    } catch {
      return [];
    }
  };

  const parseStatementAll = (statement: string, op: string): Entry[] => {
    const exprNames = new Set<unknown>();
    const vars: Entry[] = [];
    if (statement.includes('{{') && statement.includes('}}')) {
      for (const m of statement.matchAll(EMBEDDED)) {
        const expr = m[1].trim();
        if (!expr) continue;
        let data: Entry[];
        try {
          data = varData([{ node: parseExpression(expr), parentIsCall: false }]);
        } catch {
          continue;
        }
        for (const vd of data) {
          if (typedNames.has(vd.name)) continue;
          exprNames.add(vd.name);
          vars.push(vd);
        }
      }
    }
    vars.push(...parseStatementVars(statement, op, new Set([...typedNames, ...exprNames])));
    return vars;
  };

  const walk = (list: Chunk[]) => {
    for (const x of list) {
      switch (x.t) {
        case 'expr': {
          const data = varData([{ node: x.node, parentIsCall: wrapped, parentFunc: wrapped ? 'expression_wrapper' : undefined }]);
          for (const vd of data) typedNames.add(vd.name);
          out.push(...data);
          break;
        }
        case 'block':
          walk(x.body);
          if (x.op !== 'try') out.push(...parseStatementAll(x.statement, x.op));
          break;
        case 'inter':
          if (x.statement.startsWith('elif ')) out.push(...parseStatementAll(x.statement, 'elif'));
          else if (x.statement.startsWith('except ')) out.push(...parseStatementAll(x.statement, 'except'));
          break;
        case 'stmt':
          if (x.op === 'set' && !x.statement.includes('{{')) out.push(...parseStatementAll(x.statement, 'set'));
          break;
      }
    }
  };
  walk(chunks);
  return out;
}

/** JSON-friendly copy of an entry: ints become numbers (or strings beyond 2^53). */
export function entryToJSON(e: Entry): Record<string, unknown> {
  const conv = (v: PValue): unknown => {
    if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
    if (Array.isArray(v)) return v.map(conv);
    return v === undefined ? null : v;
  };
  const o: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) Object.defineProperty(o, k, { value: conv(v), enumerable: true, writable: true, configurable: true });
  return o;
}
