/**
 * Turns the chunk tree into an executable tree (control statements parsed, whitespace filtered),
 * and computes what Tinybird derives from the generated Python: the template variables (names the
 * code reads, with the line they appear on) and the function-local names (assigned anywhere).
 */
import { type AnyNode, childNodes, stmtChildNodes, type Node, type Stmt } from './ast.js';
import { ParseFailure, PY_EXCEPTIONS } from './errors.js';
import { parseStatement, PySyntaxError } from './parser.js';
import { filterWhitespace, type Chunk } from './tornado.js';
import { NAMESPACE_NAMES } from './functions.js';

export type Exec =
  | { t: 'text'; s: string }
  | { t: 'expr'; node: Node; src: string; line: number }
  | { t: 'if'; branches: { test: Node | null; body: Exec[] }[] }
  | { t: 'for'; target: Node; iter: Node; body: Exec[]; orelse: Exec[] | null }
  | { t: 'while'; test: Node; body: Exec[]; orelse: Exec[] | null }
  | { t: 'try'; body: Exec[]; handlers: { type: Node | null; name: string | null; body: Exec[] }[]; orelse: Exec[] | null; finalbody: Exec[] | null }
  | { t: 'set'; stmt: Stmt; line: number }
  | { t: 'break' }
  | { t: 'continue' };

/** Chunks with their control statements parsed (kept in Tornado's shape for the parameter analysis). */
export interface ParsedChunks {
  chunks: Chunk[];
  stmts: Map<Chunk, Stmt>;
}

class StatementSyntaxError extends ParseFailure {}

function parseStmt(kind: Parameters<typeof parseStatement>[0], src: string, line: number): Stmt {
  try {
    return parseStatement(kind, src);
  } catch (e) {
    if (e instanceof PySyntaxError) throw new StatementSyntaxError(e.message, line);
    throw e;
  }
}

const statementBody = (statement: string, op: string) => statement.slice(op.length).trim();

export function compileChunks(chunks: Chunk[]): { exec: Exec[]; stmts: Map<Chunk, Stmt> } {
  const stmts = new Map<Chunk, Stmt>();

  const compileList = (list: Chunk[]): Exec[] => {
    const out: Exec[] = [];
    for (const c of list) {
      switch (c.t) {
        case 'text': {
          const v = c.value.includes('<pre>') ? c.value : filterWhitespace(c.ws, c.value);
          if (v) out.push({ t: 'text', s: v });
          break;
        }
        case 'expr':
          out.push({ t: 'expr', node: c.node, src: c.src, line: c.line });
          break;
        case 'stmt':
          if (c.op === 'set') {
            const s = parseStmt('set', c.statement, c.line);
            stmts.set(c, s);
            out.push({ t: 'set', stmt: s, line: c.line });
          } else out.push({ t: c.op });
          break;
        case 'block':
          out.push(compileBlock(c));
          break;
        case 'inter':
          throw new StatementSyntaxError('invalid syntax', c.line);
      }
    }
    return out;
  };

  const compileBlock = (c: Extract<Chunk, { t: 'block' }>): Exec => {
    // split the body at intermediate markers
    const segments: { head: Extract<Chunk, { t: 'inter' }> | null; body: Chunk[] }[] = [{ head: null, body: [] }];
    for (const x of c.body) {
      if (x.t === 'inter') segments.push({ head: x, body: [] });
      else segments[segments.length - 1].body.push(x);
    }
    const bad = (line: number) => new StatementSyntaxError('invalid syntax', line);
    switch (c.op) {
      case 'if': {
        const s = parseStmt('if', statementBody(c.statement, 'if'), c.line) as Extract<Stmt, { k: 'If' }>;
        stmts.set(c, s);
        const branches: { test: Node | null; body: Exec[] }[] = [{ test: s.test, body: compileList(segments[0].body) }];
        let sawElse = false;
        for (const seg of segments.slice(1)) {
          const h = seg.head!;
          if (sawElse) throw bad(h.line);
          if (h.op === 'elif') {
            const e = parseStmt('elif', statementBody(h.statement, 'elif'), h.line) as Extract<Stmt, { k: 'If' }>;
            stmts.set(h, e);
            branches.push({ test: e.test, body: compileList(seg.body) });
          } else if (h.op === 'else') {
            if (h.statement !== 'else') throw bad(h.line);
            sawElse = true;
            branches.push({ test: null, body: compileList(seg.body) });
          } else throw bad(h.line);
        }
        return { t: 'if', branches };
      }
      case 'for':
      case 'while': {
        const s = parseStmt(c.op, statementBody(c.statement, c.op), c.line);
        stmts.set(c, s);
        const body = compileList(segments[0].body);
        let orelse: Exec[] | null = null;
        for (const seg of segments.slice(1)) {
          const h = seg.head!;
          if (h.op !== 'else' || orelse || h.statement !== 'else') throw bad(h.line);
          orelse = compileList(seg.body);
        }
        if (s.k === 'For') return { t: 'for', target: s.target, iter: s.iter, body, orelse };
        return { t: 'while', test: (s as Extract<Stmt, { k: 'While' }>).test, body, orelse };
      }
      case 'try': {
        if (c.statement !== 'try') throw bad(c.line);
        const body = compileList(segments[0].body);
        const handlers: { type: Node | null; name: string | null; body: Exec[] }[] = [];
        let orelse: Exec[] | null = null;
        let finalbody: Exec[] | null = null;
        let bare = false;
        for (const seg of segments.slice(1)) {
          const h = seg.head!;
          if (finalbody) throw bad(h.line);
          if (h.op === 'except') {
            if (orelse || bare) throw bad(h.line);
            const e = parseStmt('except', statementBody(h.statement, 'except'), h.line) as Extract<Stmt, { k: 'Except' }>;
            stmts.set(h, e);
            if (!e.type) bare = true;
            handlers.push({ type: e.type, name: e.name, body: compileList(seg.body) });
          } else if (h.op === 'else') {
            if (!handlers.length || orelse || h.statement !== 'else') throw bad(h.line);
            orelse = compileList(seg.body);
          } else if (h.op === 'finally') {
            if (h.statement !== 'finally') throw bad(h.line);
            finalbody = compileList(seg.body);
          } else throw bad(h.line);
        }
        if (!handlers.length && !finalbody) throw new StatementSyntaxError("expected 'except' or 'finally' block", c.line);
        return { t: 'try', body, handlers, orelse, finalbody };
      }
    }
  };

  return { exec: compileList(chunks), stmts };
}

/* ------------------------------------------------------------------ names */

/** Python builtins (vars(builtins)) — never template variables, except format/q/id. */
export const BUILTIN_NAMES = new Set([
  'abs',
  'aiter',
  'all',
  'anext',
  'any',
  'ascii',
  'bin',
  'bool',
  'breakpoint',
  'bytearray',
  'bytes',
  'callable',
  'chr',
  'classmethod',
  'compile',
  'complex',
  'copyright',
  'credits',
  'delattr',
  'dict',
  'dir',
  'divmod',
  'enumerate',
  'eval',
  'exec',
  'exit',
  'filter',
  'float',
  'frozenset',
  'getattr',
  'globals',
  'hasattr',
  'hash',
  'help',
  'hex',
  'input',
  'int',
  'isinstance',
  'issubclass',
  'iter',
  'len',
  'license',
  'list',
  'locals',
  'map',
  'max',
  'memoryview',
  'min',
  'next',
  'object',
  'oct',
  'open',
  'ord',
  'pow',
  'print',
  'property',
  'quit',
  'range',
  'repr',
  'reversed',
  'round',
  'set',
  'setattr',
  'slice',
  'sorted',
  'staticmethod',
  'str',
  'sum',
  'super',
  'tuple',
  'type',
  'vars',
  'zip',
  '__build_class__',
  '__debug__',
  '__doc__',
  '__import__',
  '__loader__',
  '__name__',
  '__package__',
  '__spec__',
  'Ellipsis',
  'NotImplemented',
  ...PY_EXCEPTIONS,
]);

/** Tinybird's reserved_vars: builtins and internals, minus the names it handles specially. */
export const RESERVED_VARS = new Set(['_tt_tmp', '_tt_append', 'isinstance', 'str', 'error', 'custom_error', ...BUILTIN_NAMES]);

/** Names a piece of code references (roughly Python's co_names, in compile order). */
export function codeNames(n: AnyNode, out: string[], bound: Set<string> = new Set()): void {
  const add = (s: string) => {
    if (!bound.has(s) && !out.includes(s)) out.push(s);
  };
  switch (n.k) {
    case 'Name':
      add(n.id);
      return;
    case 'Attribute':
      codeNames(n.value, out, bound);
      add(n.attr);
      return;
    case 'Dict':
      // Compiled key, value, key, value...
      n.keys.forEach((k, i) => {
        if (k) codeNames(k, out, bound);
        codeNames(n.values[i], out, bound);
      });
      return;
    case 'ListComp':
    case 'SetComp':
    case 'GeneratorExp':
    case 'DictComp': {
      // The first iterable is evaluated outside; the rest runs with the comprehension's targets bound.
      const inner = new Set(bound);
      n.generators.forEach((g, i) => {
        if (i === 0) codeNames(g.iter, out, bound);
        else codeNames(g.iter, out, inner);
        targetNames(g.target).forEach((t) => inner.add(t));
        g.ifs.forEach((x) => codeNames(x, out, inner));
      });
      if (n.k === 'DictComp') {
        codeNames(n.key, out, inner);
        codeNames(n.value, out, inner);
      } else codeNames(n.elt, out, inner);
      return;
    }
    default:
      for (const c of childNodes(n)) codeNames(c, out, bound);
  }
}

/** Names bound by an assignment target. */
export function targetNames(t: Node): string[] {
  switch (t.k) {
    case 'Name':
      return [t.id];
    case 'Tuple':
    case 'List':
      return t.elts.flatMap(targetNames);
    case 'Starred':
      return targetNames(t.value);
    default:
      return [];
  }
}

export function stmtNames(s: Stmt): string[] {
  const out: string[] = [];
  const parts = stmtChildNodes(s);
  // Python compiles what a for loop or an assignment stores before the targets it stores it in.
  if (s.k === 'For' || s.k === 'Assign') parts.unshift(parts.pop()!);
  for (const e of parts) codeNames(e, out);
  if (s.k === 'Except' && s.name && !out.includes(s.name)) out.push(s.name);
  return out;
}

export interface TemplateVar {
  name: string;
  line: number;
}

/** Tinybird's get_var_names: every name the template reads, except internals and builtins. */
export function templateVariables(chunks: Chunk[], stmts: Map<Chunk, Stmt>): TemplateVar[] {
  const out: TemplateVar[] = [];
  const push = (names: string[], line: number) => {
    for (const n of names) if (!NAMESPACE_NAMES.has(n) && (!RESERVED_VARS.has(n) || n === 'format' || n === 'id')) out.push({ name: n, line });
  };
  const walk = (list: Chunk[]) => {
    for (const c of list) {
      if (c.t === 'expr') {
        const names: string[] = [];
        codeNames(c.node, names);
        push(names, c.line);
      } else if (c.t === 'block') {
        const s = stmts.get(c);
        if (s) push(stmtNames(s), c.line);
        walk(c.body);
      } else if (c.t === 'inter' || (c.t === 'stmt' && c.op === 'set')) {
        const s = stmts.get(c);
        if (s) push(stmtNames(s), c.line);
      }
    }
  };
  walk(chunks);
  return out;
}

/** Every name the template's code references, builtins and internals included, in every branch. */
export function referencedNames(chunks: Chunk[], stmts: Map<Chunk, Stmt>, out = new Set<string>()): Set<string> {
  for (const c of chunks) {
    const names: string[] = [];
    if (c.t === 'expr') codeNames(c.node, names);
    else if (c.t === 'block' || c.t === 'inter' || c.t === 'stmt') {
      const st = stmts.get(c);
      if (st) names.push(...stmtNames(st));
      if (c.t === 'block') referencedNames(c.body, stmts, out);
    }
    for (const n of names) out.add(n);
  }
  return out;
}

/** Names assigned anywhere in the template: locals of Tornado's generated function. */
export function localNames(exec: Exec[], out = new Set<string>()): Set<string> {
  for (const e of exec) {
    switch (e.t) {
      case 'set':
        if (e.stmt.k === 'Assign') e.stmt.targets.forEach((t) => targetNames(t).forEach((n) => out.add(n)));
        else if (e.stmt.k === 'AugAssign') targetNames(e.stmt.target).forEach((n) => out.add(n));
        break;
      case 'for':
        targetNames(e.target).forEach((n) => out.add(n));
        localNames(e.body, out);
        if (e.orelse) localNames(e.orelse, out);
        break;
      case 'while':
        localNames(e.body, out);
        if (e.orelse) localNames(e.orelse, out);
        break;
      case 'if':
        e.branches.forEach((b) => localNames(b.body, out));
        break;
      case 'try':
        localNames(e.body, out);
        e.handlers.forEach((h) => {
          if (h.name) out.add(h.name);
          localNames(h.body, out);
        });
        if (e.orelse) localNames(e.orelse, out);
        if (e.finalbody) localNames(e.finalbody, out);
        break;
    }
  }
  return out;
}
