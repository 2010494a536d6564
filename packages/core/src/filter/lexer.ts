// Splits a filter expression into tokens with their positions, so every error can point at the
// exact characters. A term is `field:value` or a bare word; either part may be quoted.
import { FilterSyntaxError } from './ast.js';

export type Token =
  | { kind: 'lparen' | 'rparen'; start: number; end: number }
  | { kind: 'and' | 'or' | 'not'; start: number; end: number; text: string }
  | {
      kind: 'term';
      start: number;
      end: number;
      /** Field name as typed (null for a bare word). */
      field: string | null;
      value: string;
      /** Where the value starts, for errors about it. */
      valueStart: number;
      /** The value was written in quotes (so it is never a keyword). */
      quoted: boolean;
    };

const KEYWORDS: Record<string, 'and' | 'or' | 'not'> = { and: 'and', or: 'or', not: 'not' };

const isSpace = (c: string) => c === ' ' || c === '\t' || c === '\n' || c === '\r';
const endsWord = (c: string) => isSpace(c) || c === '(' || c === ')';

export function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i];
    if (isSpace(c)) {
      i++;
      continue;
    }
    if (c === '(' || c === ')') {
      tokens.push({ kind: c === '(' ? 'lparen' : 'rparen', start: i, end: i + 1 });
      i++;
      continue;
    }
    if (source.startsWith('&&', i) || source.startsWith('||', i)) {
      tokens.push({ kind: c === '&' ? 'and' : 'or', start: i, end: i + 2, text: source.slice(i, i + 2) });
      i += 2;
      continue;
    }
    // `!` and a leading `-` negate the term that follows (`-host:a`, `!(a or b)`).
    if (c === '!' || (c === '-' && i + 1 < source.length && !endsWord(source[i + 1]))) {
      tokens.push({ kind: 'not', start: i, end: i + 1, text: c });
      i++;
      continue;
    }
    const term = readTerm(source, i);
    tokens.push(term.token);
    i = term.end;
  }
  return tokens;
}

function readTerm(source: string, start: number): { token: Token; end: number } {
  let i = start;
  let field: string | null = null;
  let valueStart = start;
  if (source[i] !== '"') {
    // A field name is letters, digits and dashes up to a colon.
    const m = /^[A-Za-z][A-Za-z0-9.-]*:/.exec(source.slice(i, i + 40));
    if (m) {
      field = m[0].slice(0, -1);
      i += m[0].length;
      valueStart = i;
    }
  }
  let value = '';
  let quoted = false;
  while (i < source.length && !endsWord(source[i])) {
    if (source[i] === '"') {
      const q = readQuoted(source, i);
      value += q.text;
      quoted = true;
      i = q.end;
    } else {
      value += source[i];
      i++;
    }
  }
  const keyword = field === null && !quoted ? KEYWORDS[value.toLowerCase()] : undefined;
  if (keyword) return { token: { kind: keyword, start, end: i, text: value }, end: i };
  return { token: { kind: 'term', start, end: i, field, value, valueStart, quoted }, end: i };
}

function readQuoted(source: string, open: number): { text: string; end: number } {
  let text = '';
  let i = open + 1;
  while (i < source.length) {
    const c = source[i];
    if (c === '\\' && i + 1 < source.length) {
      text += source[i + 1];
      i += 2;
    } else if (c === '"') {
      return { text, end: i + 1 };
    } else {
      text += c;
      i++;
    }
  }
  throw new FilterSyntaxError('This quote is never closed: add a closing " (write \\" for a quote inside).', open, source.length);
}
