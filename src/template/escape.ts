/**
 * SQL escaping of template values (reference §6.5). A value written between single quotes with
 * escapeStringExpression can never end the literal: every quote and backslash is escaped.
 */

const STRING_MAP: Record<string, string> = {
  '\0': '\\0',
  '\r': '\\r',
  '\b': '\\b',
  '\t': '\\t',
  '\x1a': '\\z',
  '\n': '\\n',
  '"': '\\"',
  "'": "\\'",
  '\\': '\\\\',
  '%': '\\%',
  '`': '\\`',
};

const IDENT_MAP: Record<string, string> = { ...STRING_MAP, '"': '' };

const SPECIAL = /[\0\r\b\t\x1a\n"'\\%`]/g;

/** Escaping for string literals ('...'): `"` becomes `\"`. */
export function escapeStringExpression(s: string): string {
  return s.replace(SPECIAL, (c) => STRING_MAP[c]);
}

/** Escaping for identifiers and symbols: like strings, but `"` is removed. */
export function escapeIdentifier(s: string): string {
  return s.replace(SPECIAL, (c) => IDENT_MAP[c]);
}

export const quoteString = (s: string): string => "'" + escapeStringExpression(s) + "'";

/**
 * True when `body` (the inside of a '...' literal) cannot end the literal early: every quote is
 * escaped and no trailing backslash escapes the closing quote.
 */
export function isSafeLiteralBody(body: string): boolean {
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === '\\') {
      if (i + 1 >= body.length) return false;
      i++;
    } else if (c === "'") return false;
  }
  return true;
}
