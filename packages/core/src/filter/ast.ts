// The parsed form of a filter expression. Every leaf is one predicate over an exchange; text
// values are already ASCII-lowercased where matching is case-insensitive, so the evaluator and
// the SQL translation compare the same bytes.
import type { ExchangeState } from '../store/row-types.js';
import type { FailureReason, HttpProtocol } from '../capture/events.js';

/** A numeric comparison: `=`, `<`, `<=`, `>`, `>=`, or an inclusive range. */
export type NumberTest =
  | { op: 'eq' | 'lt' | 'le' | 'gt' | 'ge'; value: number }
  | { op: 'range'; min: number; max: number };

export type MessageSide = 'request' | 'response' | 'any';

export type HasWhat = 'websocket' | 'error' | 'response' | 'request-body' | 'response-body';

export type FilterLeaf =
  /** Substring of the URL (a bare word, or `url:`). */
  | { type: 'url'; text: string }
  /** Host name glob (`*` matches any run of characters), whole-name match. */
  | { type: 'host'; pattern: string }
  /** Request method, upper-cased. */
  | { type: 'method'; method: string }
  | { type: 'status'; test: NumberTest }
  /** Request protocol is one of `protocols`; with `websocket`, the exchange must also be a WebSocket handshake. */
  | { type: 'protocol'; protocols: HttpProtocol[]; websocket: boolean }
  | { type: 'scheme'; scheme: 'http' | 'https' }
  | { type: 'has'; what: HasWhat }
  | { type: 'state'; state: ExchangeState }
  | { type: 'error'; reason: FailureReason }
  /** A header named `name` (lowercase) on `side`; with `value`, its value contains it. */
  | { type: 'header'; side: MessageSide; name: string; value: string | null }
  /** The stored body bytes on `side` contain `text` (ASCII case-insensitive). */
  | { type: 'body'; side: MessageSide; text: string }
  /** Substring of the response Content-Type. */
  | { type: 'type'; text: string }
  /** Body size in bytes (de-framed, as on the wire). */
  | { type: 'size'; side: 'request' | 'response'; test: NumberTest }
  /** Milliseconds from the request head to completion; only completed or failed exchanges. */
  | { type: 'duration'; test: NumberTest }
  | { type: 'conn'; id: number };

export type FilterExpr =
  | FilterLeaf
  | { type: 'and'; left: FilterExpr; right: FilterExpr }
  | { type: 'or'; left: FilterExpr; right: FilterExpr }
  | { type: 'not'; expr: FilterExpr };

/** Where in the source text something is: `[start, end)` in UTF-16 code units. */
export interface SourceSpan {
  start: number;
  end: number;
}

export class FilterSyntaxError extends Error {
  override name = 'FilterSyntaxError';
  constructor(
    message: string,
    readonly start: number,
    readonly end: number,
  ) {
    super(message);
  }
}

/** ASCII-only lower-casing: what SQLite's lower() and LIKE do without ICU. */
export function asciiLower(text: string): string {
  return text.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

export function asciiUpper(text: string): string {
  return text.replace(/[a-z]+/g, (m) => m.toUpperCase());
}

/** True when any leaf needs request or response headers or bodies (not in list rows). */
export function needsDetail(expr: FilterExpr | null): boolean {
  if (!expr) return false;
  switch (expr.type) {
    case 'and':
    case 'or':
      return needsDetail(expr.left) || needsDetail(expr.right);
    case 'not':
      return needsDetail(expr.expr);
    case 'header':
    case 'body':
      return true;
    default:
      return false;
  }
}
