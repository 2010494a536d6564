// Evaluates a parsed filter against one exchange, with exactly the semantics of the SQL
// translation (to-sql.ts): ASCII case-insensitive text, NULL never matches a leaf.
import type { FailureReason, HeaderList, HttpProtocol } from '../capture/events.js';
import type { ExchangeState } from '../store/row-types.js';
import { asciiLower, type FilterExpr, type FilterLeaf, type MessageSide, type NumberTest } from './ast.js';

/**
 * What a filter looks at. Exchange list rows satisfy it without headers and bodies (enough unless
 * `needsDetail(expr)`); an ExchangeDetail satisfies it fully.
 */
export interface FilterSubject {
  connectionId: number;
  protocol: HttpProtocol;
  method: string;
  url: string;
  host: string;
  scheme: 'http' | 'https';
  status: number | null;
  responseContentType: string | null;
  state: ExchangeState;
  startedAt: number;
  completedAt: number | null;
  requestBodySize: number | null;
  responseBodySize: number | null;
  errorReason: FailureReason | null;
  /** Precomputed `isWebSocketRequest`; computed from the request headers when absent. */
  websocket?: boolean;
  requestHeaders?: HeaderList;
  responseHeaders?: HeaderList | null;
  requestBody?: { data: Uint8Array } | null;
  responseBody?: { data: Uint8Array } | null;
}

export class FilterNeedsDetailError extends Error {
  override name = 'FilterNeedsDetailError';
}

/**
 * A WebSocket handshake: HTTP/1 `Upgrade: websocket`, or an HTTP/2 extended CONNECT (RFC 8441), recognised
 * by its required `sec-websocket-version` header because pseudo-headers are not in the header list.
 */
export function isWebSocketRequest(method: string, protocol: HttpProtocol, headers: HeaderList): boolean {
  if (protocol === 'h2' || protocol === 'h2c') {
    return method === 'CONNECT' && headers.some(([n]) => asciiLower(n) === 'sec-websocket-version');
  }
  return headers.some(([n, v]) => asciiLower(n) === 'upgrade' && asciiLower(v).includes('websocket'));
}

/**
 * Undoes a body's content codings for `body:` (store/decoded-body.ts on Node, as the SQL does);
 * without one, bodies are searched as stored.
 */
export type BodyDecoder = (data: Uint8Array, headers: HeaderList | null | undefined) => Uint8Array;

const asStored: BodyDecoder = (data) => data;

export function matchesFilter(expr: FilterExpr | null, subject: FilterSubject, decode: BodyDecoder = asStored): boolean {
  if (!expr) return true;
  switch (expr.type) {
    case 'and':
      return matchesFilter(expr.left, subject, decode) && matchesFilter(expr.right, subject, decode);
    case 'or':
      return matchesFilter(expr.left, subject, decode) || matchesFilter(expr.right, subject, decode);
    case 'not':
      return !matchesFilter(expr.expr, subject, decode);
    default:
      return matchesLeaf(expr, subject, decode);
  }
}

export function testNumber(test: NumberTest, n: number | null): boolean {
  if (n === null) return false;
  switch (test.op) {
    case 'eq':
      return n === test.value;
    case 'lt':
      return n < test.value;
    case 'le':
      return n <= test.value;
    case 'gt':
      return n > test.value;
    case 'ge':
      return n >= test.value;
    case 'range':
      return n >= test.min && n <= test.max;
  }
}

/** Whole-string glob where `*` matches any run of characters; both sides already lower-cased. */
export function globMatch(pattern: string, text: string): boolean {
  const parts = pattern.split('*');
  if (parts.length === 1) return pattern === text;
  if (!text.startsWith(parts[0])) return false;
  let at = parts[0].length;
  for (let i = 1; i < parts.length - 1; i++) {
    const found = text.indexOf(parts[i], at);
    if (found < 0) return false;
    at = found + parts[i].length;
  }
  const last = parts[parts.length - 1];
  return text.length - last.length >= at && text.endsWith(last);
}

function websocket(s: FilterSubject): boolean {
  if (s.websocket !== undefined) return s.websocket;
  return isWebSocketRequest(s.method, s.protocol, need(s.requestHeaders, 'has:websocket'));
}

function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new FilterNeedsDetailError(`${what} needs the exchange's headers and bodies`);
  return value;
}

const sides = (side: MessageSide): Array<'request' | 'response'> => (side === 'any' ? ['request', 'response'] : [side]);

function matchesLeaf(leaf: FilterLeaf, s: FilterSubject, decode: BodyDecoder): boolean {
  switch (leaf.type) {
    case 'url':
      return asciiLower(s.url).includes(leaf.text);
    case 'host':
      return globMatch(leaf.pattern, asciiLower(s.host));
    case 'method':
      return s.method.replace(/[a-z]+/g, (m) => m.toUpperCase()) === leaf.method;
    case 'status':
      return testNumber(leaf.test, s.status);
    case 'protocol':
      return leaf.protocols.includes(s.protocol) && (!leaf.websocket || websocket(s));
    case 'scheme':
      return s.scheme === leaf.scheme;
    case 'has':
      switch (leaf.what) {
        case 'websocket':
          return websocket(s);
        case 'error':
          return s.errorReason !== null;
        case 'response':
          return s.status !== null;
        case 'request-body':
          return (s.requestBodySize ?? 0) > 0;
        case 'response-body':
          return (s.responseBodySize ?? 0) > 0;
      }
      return false;
    case 'state':
      return s.state === leaf.state;
    case 'error':
      return s.errorReason === leaf.reason;
    case 'header':
      return sides(leaf.side).some((side) => {
        const headers = side === 'request' ? need(s.requestHeaders, 'header:') : need(s.responseHeaders, 'header:');
        return (headers ?? []).some(
          ([n, v]) => asciiLower(n) === leaf.name && (leaf.value === null || asciiLower(v).includes(leaf.value)),
        );
      });
    case 'body':
      return sides(leaf.side).some((side) => {
        const body = side === 'request' ? need(s.requestBody, 'body:') : need(s.responseBody, 'body:');
        const headers = side === 'request' ? s.requestHeaders : s.responseHeaders;
        return body !== null && bytesIncludeAsciiLower(decode(body.data, headers), leaf.text);
      });
    case 'type':
      return s.responseContentType !== null && asciiLower(s.responseContentType).includes(leaf.text);
    case 'size':
      return testNumber(leaf.test, leaf.side === 'request' ? s.requestBodySize : s.responseBodySize);
    case 'duration':
      return testNumber(leaf.test, s.completedAt === null ? null : s.completedAt - s.startedAt);
    case 'conn':
      return s.connectionId === leaf.id;
  }
}

const encoder = new TextEncoder();

/** Byte search of `needle` (already lower-cased) in `data` with ASCII letters folded: like SQLite's instr(lower(blob), ?). */
export function bytesIncludeAsciiLower(data: Uint8Array, needle: string): boolean {
  const n = encoder.encode(needle);
  if (n.length === 0) return true;
  const last = data.length - n.length;
  outer: for (let i = 0; i <= last; i++) {
    for (let j = 0; j < n.length; j++) {
      let b = data[i + j];
      if (b >= 0x41 && b <= 0x5a) b += 0x20;
      if (b !== n[j]) continue outer;
    }
    return true;
  }
  return false;
}
