/**
 * The template reader: a port of the locked-down Tornado template parser Tinybird uses
 * ({{ }}, {% %}, {# #}, escapes, whitespace modes, forbidden blocks), with the same error texts.
 * Produces a chunk tree shaped like Tornado's (_Text, _Expression, _ControlBlock whose body holds
 * _IntermediateControlBlock markers, _Statement) so the parameter analysis can walk it the same way.
 */
import type { Node } from './ast.js';
import { ParseFailure } from './errors.js';
import { parseExpression, PySyntaxError } from './parser.js';
import { reprStr } from './pyfmt.js';
import { checkValidExpr, SecurityError } from './security.js';

export type WhitespaceMode = 'all' | 'single' | 'oneline';

export type Chunk =
  | { t: 'text'; value: string; line: number; ws: WhitespaceMode }
  | { t: 'expr'; src: string; line: number; node: Node }
  | { t: 'block'; op: 'if' | 'for' | 'while' | 'try'; statement: string; line: number; body: Chunk[] }
  | { t: 'inter'; op: 'else' | 'elif' | 'except' | 'finally'; statement: string; line: number }
  | { t: 'stmt'; op: 'set' | 'break' | 'continue'; statement: string; line: number };

/** A Python-side syntax error found while reading an expression. */
export class ExprSyntaxError extends ParseFailure {}
/** A SecurityException (whitelist violation). */
export class ExprSecurityError extends ParseFailure {}

export function filterWhitespace(mode: WhitespaceMode, text: string): string {
  if (mode === 'all') return text;
  if (mode === 'single') return text.replace(/[\t ]+/g, ' ').replace(/\s*\n\s*/g, '\n');
  return text.replace(/\s+/g, ' ');
}

function checkWhitespaceMode(mode: string, line: number): WhitespaceMode {
  if (mode === 'all' || mode === 'single' || mode === 'oneline') return mode;
  throw new ParseFailure(`invalid whitespace mode ${mode}`, line);
}

class Reader {
  line = 1;
  pos = 0;
  constructor(
    readonly text: string,
    public whitespace: WhitespaceMode,
  ) {}
  find(needle: string, start = 0): number {
    const i = this.text.indexOf(needle, this.pos + start);
    return i === -1 ? -1 : i - this.pos;
  }
  consume(count?: number): string {
    const n = count ?? this.text.length - this.pos;
    const end = this.pos + n;
    for (let i = this.pos; i < end; i++) if (this.text.charCodeAt(i) === 10) this.line++;
    const s = this.text.slice(this.pos, end);
    this.pos = end;
    return s;
  }
  remaining(): number {
    return this.text.length - this.pos;
  }
  at(k: number): string {
    return this.text[this.pos + k];
  }
  fail(msg: string): never {
    throw new ParseFailure(msg, this.line);
  }
}

const INTERMEDIATE: Record<string, string[]> = {
  else: ['if', 'for', 'while', 'try'],
  elif: ['if'],
  except: ['try'],
  finally: ['try'],
};

const setRepr = (xs: string[]) => '{' + xs.map(reprStr).join(', ') + '}';

const MAX_NESTING = 100;

function parseChunks(reader: Reader, inBlock: string | null, inLoop: string | null, depth: number): Chunk[] {
  if (depth > MAX_NESTING) reader.fail('too many nested blocks');
  const body: Chunk[] = [];
  for (;;) {
    // Find the next template directive
    let curly = 0;
    for (;;) {
      curly = reader.find('{', curly);
      if (curly === -1 || curly + 1 === reader.remaining()) {
        if (inBlock) throw new ParseFailure(`Missing {% end %} block for if at line ${reader.line}`, reader.line);
        body.push({ t: 'text', value: reader.consume(), line: reader.line, ws: reader.whitespace });
        return body;
      }
      const next = reader.at(curly + 1);
      if (next !== '{' && next !== '%' && next !== '#') {
        curly++;
        continue;
      }
      // With more than two curlies in a row, use the innermost ones.
      if (curly + 2 < reader.remaining() && next === '{' && reader.at(curly + 2) === '{') {
        curly++;
        continue;
      }
      break;
    }
    if (curly > 0) {
      const line = reader.line;
      const cons = reader.consume(curly);
      body.push({ t: 'text', value: cons, line, ws: reader.whitespace });
    }
    const startBrace = reader.consume(2);
    const line = reader.line;

    // "{{!", "{%!" and "{#!" output the braces literally.
    if (reader.remaining() && reader.at(0) === '!') {
      reader.consume(1);
      body.push({ t: 'text', value: startBrace, line, ws: reader.whitespace });
      continue;
    }

    if (startBrace === '{#') {
      const end = reader.find('#}');
      if (end === -1) reader.fail('Missing end comment #}');
      reader.consume(end);
      reader.consume(2);
      continue;
    }

    if (startBrace === '{{') {
      const end = reader.find('}}');
      if (end === -1) reader.fail('Missing end expression }}');
      const contents = reader.consume(end).trim();
      reader.consume(2);
      if (!contents) reader.fail('Empty expression');
      let node: Node;
      try {
        node = parseExpression(contents);
      } catch (e) {
        if (e instanceof PySyntaxError) {
          const operator = contents.split(' ')[0];
          if (operator.includes('from')) reader.fail('"from" is a forbidden word');
          throw new ExprSyntaxError(e.message, line);
        }
        throw e;
      }
      try {
        checkValidExpr(node);
      } catch (e) {
        if (e instanceof SecurityError) throw new ExprSecurityError(e.message, line);
        throw e;
      }
      body.push({ t: 'expr', src: contents, line, node });
      continue;
    }

    // Block
    const end = reader.find('%}');
    if (end === -1) reader.fail('Missing end block %}');
    const contents = reader.consume(end).trim();
    reader.consume(2);
    if (!contents) reader.fail('Empty block tag ({% %})');
    const sp = contents.indexOf(' ');
    const operator = sp === -1 ? contents : contents.slice(0, sp);
    const suffix = sp === -1 ? '' : contents.slice(sp + 1).trim();

    const allowed = INTERMEDIATE[operator];
    if (allowed) {
      if (!inBlock) reader.fail(`${operator} outside ${setRepr(allowed)} block`);
      if (!allowed.includes(inBlock)) reader.fail(`${operator} block cannot be attached to ${inBlock} block`);
      body.push({ t: 'inter', op: operator as 'else', statement: contents, line });
      continue;
    }
    switch (operator) {
      case 'end':
        if (!inBlock) reader.fail('Extra {% end %} block');
        return body;
      case 'comment':
        continue;
      case 'extends':
      case 'include':
      case 'autoescape':
      case 'raw':
      case 'module':
      case 'apply':
        reader.fail(`${operator} is forbidden`);
        break;
      case 'import':
      case 'from':
        reader.fail('import is forbidden');
        break;
      case 'set':
        if (!suffix) reader.fail('set missing statement');
        body.push({ t: 'stmt', op: 'set', statement: suffix, line });
        continue;
      case 'whitespace':
        reader.whitespace = checkWhitespaceMode(suffix.trim(), line);
        continue;
      case 'block': {
        parseChunks(reader, operator, inLoop, depth + 1);
        reader.fail('block is forbidden');
        break;
      }
      case 'try':
      case 'if':
      case 'for':
      case 'while': {
        const blockBody =
          operator === 'for' || operator === 'while' ? parseChunks(reader, operator, operator, depth + 1) : parseChunks(reader, operator, inLoop, depth + 1);
        body.push({ t: 'block', op: operator, statement: contents, line, body: blockBody });
        continue;
      }
      case 'break':
      case 'continue':
        if (!inLoop) reader.fail(`${operator} outside {'for', 'while'} block`);
        body.push({ t: 'stmt', op: operator, statement: contents, line });
        continue;
      default:
        reader.fail(`unknown operator: ${reprStr(operator)}`);
    }
  }
}

/** Reads a template (the SQL without its leading '%'). Throws ParseFailure with Tornado's messages. */
export function parseTemplate(text: string): Chunk[] {
  return parseChunks(new Reader(text, 'all'), null, null, 0);
}
