// Recursive-descent parser for filter expressions:
//   expr := and ( ("or" | "||") and )*
//   and  := unary ( ("and" | "&&")? unary )*      (two terms side by side mean "and")
//   unary:= ("not" | "!" | "-") unary | "(" expr ")" | term
// An empty expression matches everything and parses to null.
import { FilterSyntaxError, type FilterExpr } from './ast.js';
import { FIELD_ALIASES, FIELD_NAMES, FIELDS, FieldValueError } from './fields.js';
import { tokenize, type Token } from './lexer.js';

export type ParseResult = { ok: true; expr: FilterExpr | null } | { ok: false; error: FilterSyntaxError };

/** Parses without throwing; the error says what was expected and where. */
export function parseFilter(source: string): ParseResult {
  try {
    return { ok: true, expr: parseFilterOrThrow(source) };
  } catch (err) {
    if (err instanceof FilterSyntaxError) return { ok: false, error: err };
    throw err;
  }
}

export function parseFilterOrThrow(source: string): FilterExpr | null {
  const tokens = tokenize(source);
  if (tokens.length === 0) return null;
  const parser = new Parser(tokens, source);
  const expr = parser.expression();
  parser.expectEnd();
  return expr;
}

class Parser {
  private i = 0;

  constructor(
    private readonly tokens: Token[],
    private readonly source: string,
  ) {}

  private peek(): Token | undefined {
    return this.tokens[this.i];
  }

  expression(): FilterExpr {
    let left = this.conjunction();
    for (let t = this.peek(); t?.kind === 'or'; t = this.peek()) {
      this.i++;
      left = { type: 'or', left, right: this.operand(t, () => this.conjunction()) };
    }
    return left;
  }

  private conjunction(): FilterExpr {
    let left = this.unary();
    for (;;) {
      const t = this.peek();
      if (!t || t.kind === 'or' || t.kind === 'rparen') return left;
      if (t.kind === 'and') {
        this.i++;
        left = { type: 'and', left, right: this.operand(t, () => this.unary()) };
      } else {
        left = { type: 'and', left, right: this.unary() };
      }
    }
  }

  /** The right-hand side of an operator, with an error that names the operator when it is missing. */
  private operand(op: Token, parse: () => FilterExpr): FilterExpr {
    const next = this.peek();
    if (!next || next.kind === 'rparen' || next.kind === 'and' || next.kind === 'or') {
      const name = op.kind === 'not' ? op.text : (op as { text: string }).text;
      throw new FilterSyntaxError(`Expected a condition after "${name}".`, op.start, next ? next.end : this.source.length);
    }
    return parse();
  }

  private unary(): FilterExpr {
    const t = this.peek();
    if (!t) throw new FilterSyntaxError('Expected a condition here.', this.source.length, this.source.length);
    if (t.kind === 'not') {
      this.i++;
      return { type: 'not', expr: this.operand(t, () => this.unary()) };
    }
    if (t.kind === 'lparen') {
      this.i++;
      const close = this.peek();
      if (close?.kind === 'rparen') throw new FilterSyntaxError('Empty parentheses: put a condition inside.', t.start, close.end);
      if (!close) throw new FilterSyntaxError('This parenthesis is never closed: add a ")".', t.start, t.end);
      const inner = this.expression();
      const end = this.peek();
      if (end?.kind !== 'rparen') throw new FilterSyntaxError('This parenthesis is never closed: add a ")".', t.start, t.end);
      this.i++;
      return inner;
    }
    if (t.kind === 'rparen') throw new FilterSyntaxError('This ")" has no matching "(".', t.start, t.end);
    if (t.kind === 'and' || t.kind === 'or') {
      throw new FilterSyntaxError(`"${t.text}" needs a condition on its left (quote it to search for the word).`, t.start, t.end);
    }
    this.i++;
    return this.term(t as Extract<Token, { kind: 'term' }>);
  }

  private term(t: Extract<Token, { kind: 'term' }>): FilterExpr {
    if (t.field === null) {
      if (t.value === '') throw new FilterSyntaxError('Empty quotes: put the text to search for inside.', t.start, t.end);
      return FIELDS.url(t.value);
    }
    const lower = t.field.toLowerCase();
    const name = FIELDS[lower] ? lower : FIELD_ALIASES[lower];
    // A pasted URL (`https://host/path`) is text to search for, not a field.
    if (!name && t.value.startsWith('//')) return FIELDS.url(`${t.field}:${t.value}`);
    if (!name) {
      const near = closest(lower);
      throw new FilterSyntaxError(
        `Unknown field "${t.field}".${near ? ` Did you mean "${near}"?` : ''} Fields: ${FIELD_NAMES.join(', ')}.` +
          ' To search the URL for text with a colon, put it in quotes.',
        t.start,
        t.valueStart - 1,
      );
    }
    if (t.value === '') {
      throw new FilterSyntaxError(`Expected a value after "${t.field}:" (no space after the colon).`, t.start, t.end);
    }
    try {
      return FIELDS[name](t.value);
    } catch (err) {
      if (err instanceof FieldValueError) throw new FilterSyntaxError(err.message, t.valueStart, t.end);
      throw err;
    }
  }

  expectEnd(): void {
    const t = this.peek();
    if (t?.kind === 'rparen') throw new FilterSyntaxError('This ")" has no matching "(".', t.start, t.end);
    if (t) throw new FilterSyntaxError('Unexpected text here.', t.start, t.end);
  }
}

/** The known field nearest to a mistyped one (edit distance at most 2). */
function closest(name: string): string | null {
  let best: string | null = null;
  let bestDistance = 3;
  for (const candidate of [...FIELD_NAMES, ...Object.keys(FIELD_ALIASES)]) {
    const d = editDistance(name, candidate);
    if (d < bestDistance) {
      bestDistance = d;
      best = FIELDS[candidate] ? candidate : FIELD_ALIASES[candidate];
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length];
}

/** Formats an expression back to source text (normalized), e.g. for display or round-trip tests. */
export function formatFilter(expr: FilterExpr | null): string {
  if (!expr) return '';
  const wrap = (e: FilterExpr) => (e.type === 'or' || e.type === 'and' ? `(${formatFilter(e)})` : formatFilter(e));
  switch (expr.type) {
    case 'and':
      return `${wrap(expr.left)} and ${wrap(expr.right)}`;
    case 'or':
      return `${wrap(expr.left)} or ${wrap(expr.right)}`;
    case 'not':
      return `not ${wrap(expr.expr)}`;
    default:
      return formatLeaf(expr);
  }
}

const quote = (s: string) => (/^[^\s()"!-][^\s()"]*$/.test(s) && !/^(and|or|not)$/i.test(s) ? s : `"${s.replace(/["\\]/g, '\\$&')}"`);

function formatNumber(test: import('./ast.js').NumberTest): string {
  if (test.op === 'range') return `${test.min}-${test.max}`;
  return `${{ eq: '', lt: '<', le: '<=', gt: '>', ge: '>=' }[test.op]}${test.value}`;
}

function formatLeaf(leaf: import('./ast.js').FilterLeaf): string {
  switch (leaf.type) {
    case 'url':
      return `url:${quote(leaf.text)}`;
    case 'host':
      return `host:${leaf.pattern}`;
    case 'method':
      return `method:${leaf.method}`;
    case 'status':
      return `status:${formatNumber(leaf.test)}`;
    case 'protocol': {
      const key = leaf.websocket
        ? leaf.protocols.length === 4 ? 'ws' : leaf.protocols[0] === 'h2' ? 'ws-h2' : 'ws-h1'
        : leaf.protocols.length === 2 ? (leaf.protocols[0] === 'h2' ? 'http2' : 'http1') : leaf.protocols[0].toLowerCase();
      return `protocol:${key}`;
    }
    case 'scheme':
      return `scheme:${leaf.scheme}`;
    case 'has':
      return `has:${leaf.what}`;
    case 'state':
      return `state:${leaf.state}`;
    case 'error':
      return `error:${leaf.reason}`;
    case 'header': {
      const field = leaf.side === 'any' ? 'header' : leaf.side === 'request' ? 'reqheader' : 'resheader';
      return `${field}:${quote(leaf.value === null ? leaf.name : `${leaf.name}=${leaf.value}`)}`;
    }
    case 'body':
      return `${leaf.side === 'any' ? 'body' : leaf.side === 'request' ? 'reqbody' : 'resbody'}:${quote(leaf.text)}`;
    case 'type':
      return `type:${quote(leaf.text)}`;
    case 'size':
      return `${leaf.side === 'request' ? 'reqsize' : 'size'}:${formatNumber(leaf.test)}`;
    case 'duration':
      return `duration:${formatNumber(leaf.test)}`;
    case 'conn':
      return `conn:${leaf.id}`;
  }
}
