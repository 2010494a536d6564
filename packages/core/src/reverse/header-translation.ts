// Header lists from one leg's protocol to the other's (RFC 9113 §8.2, RFC 9110 §7.6.1): hop-by-hop
// headers dropped, Host <-> :authority, names lower-cased for HTTP/2, cookies split into crumbs for
// HTTP/2 and joined for HTTP/1.1 (RFC 9113 §8.2.3), `TE: trailers` carried when the client sent it.
// Pure functions: the legs hand in what they received and get what to send.
import type http2 from 'node:http2';
import type { HeaderList } from '../capture/events.js';
import { endToEndHeaders } from '../net/hop-by-hop.js';

/** Headers Node's http2 module accepts once per block (a second one would throw). */
const SINGLE_VALUE = new Set([
  'access-control-allow-credentials', 'access-control-max-age', 'access-control-request-method', 'age', 'authorization',
  'content-encoding', 'content-language', 'content-length', 'content-location', 'content-md5', 'content-range',
  'content-type', 'date', 'dnt', 'etag', 'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match',
  'if-range', 'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'range',
  'referer', 'retry-after', 'tk', 'upgrade-insecure-requests', 'user-agent', 'x-content-type-options',
]);

/** Never forwarded in a request, besides the hop-by-hop ones: Expect is answered by hopscope itself. */
const ANSWERED_HERE = new Set(['expect', 'http2-settings']);

export function withoutPseudo(headers: HeaderList): HeaderList {
  return headers.filter(([name]) => !name.startsWith(':'));
}

export function pseudoHeader(headers: HeaderList, name: string): string | undefined {
  for (const [n, v] of headers) if (n === name) return v;
  return undefined;
}

/** The client asked for trailers (`TE: trailers`), which is the one TE value that crosses to HTTP/2. */
export function wantsTrailers(headers: HeaderList): boolean {
  return headers.some(([n, v]) => n.toLowerCase() === 'te' && /(^|,)\s*trailers\s*(;|,|$)/i.test(v));
}

/** End-to-end request fields of the client, without Host (it is set per leg), Expect and pseudo-headers. */
function endToEndRequestFields(client: HeaderList): HeaderList {
  const flat = endToEndHeaders(withoutPseudo(client));
  const out: HeaderList = [];
  for (let i = 0; i < flat.length; i += 2) {
    const lower = flat[i].toLowerCase();
    if (lower === 'host' || ANSWERED_HERE.has(lower)) continue;
    out.push([flat[i], flat[i + 1]]);
  }
  return out;
}

export interface H1RequestOptions {
  /** Host for the upstream (the client's or the upstream's authority). */
  authority: string;
  /** A body follows the head: without a Content-Length it goes chunked. */
  hasBody: boolean;
}

/** The request head for an HTTP/1.1 upstream as Node's flat [name, value, …] list. */
export function h1RequestHeaders(client: HeaderList, o: H1RequestOptions): string[] {
  const out: string[] = ['Host', o.authority];
  const cookies: string[] = [];
  let cookieName = 'Cookie';
  let length = false;
  for (const [name, value] of endToEndRequestFields(client)) {
    const lower = name.toLowerCase();
    if (lower === 'cookie') {
      if (cookies.length === 0) cookieName = name;
      cookies.push(value);
      continue;
    }
    if (lower === 'content-length') length = true;
    out.push(name, value);
  }
  // RFC 9113 §8.2.3: the crumbs of an HTTP/2 request become one field joined with "; ".
  if (cookies.length > 0) out.push(cookieName, cookies.join('; '));
  if (wantsTrailers(client)) out.push('TE', 'trailers', 'Connection', 'TE');
  if (o.hasBody && !length) out.push('Transfer-Encoding', 'chunked');
  return out;
}

export interface H2RequestOptions {
  method: string;
  path: string;
  scheme: 'http' | 'https';
  authority: string;
  /** RFC 8441 `:protocol` of an extended CONNECT. */
  protocol?: string;
}

/** The request header block for an HTTP/2 upstream, as Node's http2 header object. */
export function h2RequestHeaders(client: HeaderList, o: H2RequestOptions): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = { ':method': o.method };
  if (o.protocol !== undefined) out[':protocol'] = o.protocol;
  out[':scheme'] = o.scheme;
  out[':authority'] = o.authority;
  out[':path'] = o.path;
  const fields = endToEndRequestFields(client);
  for (const [name, value] of fields) {
    const lower = name.toLowerCase();
    // RFC 9113 §8.2.3: a cookie may be split into crumbs, which compress better.
    if (lower !== 'cookie') {
      add(out, lower, value);
      continue;
    }
    for (const crumb of value.split(/;\s*/)) if (crumb) add(out, 'cookie', crumb);
  }
  if (wantsTrailers(client)) out.te = 'trailers';
  return out;
}

/** Response (or trailer) fields for an HTTP/1.1 client: hop-by-hop and pseudo-headers dropped. */
export function h1ResponseHeaders(upstream: HeaderList): string[] {
  return endToEndHeaders(withoutPseudo(upstream));
}

/** Trailer fields for an HTTP/1.1 client (chunked): pseudo-headers and hop-by-hop ones dropped. */
export function h1Trailers(trailers: HeaderList): Array<[string, string]> {
  const flat = endToEndHeaders(withoutPseudo(trailers));
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i < flat.length; i += 2) pairs.push([flat[i], flat[i + 1]]);
  return pairs;
}

/** A response header block for an HTTP/2 client: `:status`, then the end-to-end fields lower-cased. */
export function h2ResponseHeaders(status: number, upstream: HeaderList): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = { ':status': status };
  return h2Fields(upstream, out);
}

/** Trailer fields for HTTP/2: lower-cased, no pseudo-headers, no hop-by-hop ones. */
export function h2Trailers(trailers: HeaderList): http2.OutgoingHttpHeaders {
  return h2Fields(trailers, {});
}

function h2Fields(fields: HeaderList, out: http2.OutgoingHttpHeaders): http2.OutgoingHttpHeaders {
  const flat = endToEndHeaders(withoutPseudo(fields));
  for (let i = 0; i < flat.length; i += 2) add(out, flat[i].toLowerCase(), flat[i + 1]);
  return out;
}

/** Adds a field: repeats become arrays (in order), except where HTTP/2 allows one value: the first wins. */
function add(out: http2.OutgoingHttpHeaders, name: string, value: string): void {
  const existing = out[name];
  if (existing === undefined) out[name] = value;
  else if (SINGLE_VALUE.has(name)) return;
  else if (Array.isArray(existing)) existing.push(value);
  else out[name] = [String(existing), value];
}

/** Node's http2 header object (from a 'stream', 'response' or 'trailers' event's raw list) as a header list. */
export function pairsFromRawH2(raw: readonly string[] | undefined): HeaderList {
  const pairs: HeaderList = [];
  if (!raw) return pairs;
  for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([raw[i], String(raw[i + 1])]);
  return pairs;
}

/** Header fields a block of `bytes` can hold at most (RFC 9113 §6.5.2 counts 32 octets per field beyond name and value). */
export function headerPairsFor(bytes: number): number {
  return Math.max(128, Math.ceil(bytes / 32));
}
