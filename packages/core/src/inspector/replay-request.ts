// What Resend sends: the captured request, or that request with the user's edits (method, URL,
// headers, body). Edits are checked here, before anything goes on the wire: a method is a token,
// a URL is http(s), header names are tokens and values carry no line breaks. After an edit the
// body's framing is made true again (Content-Length is the body's length unless it goes chunked).
import type { HeaderList } from '../capture/events.js';
import { formatAuthority } from '../net/authority.js';
import { requestFraming } from '../net/request-head.js';
import type { ExchangeDetail } from '../store/row-types.js';
import type { ReplayEdits } from './protocol.js';

export interface ReplayRequest {
  method: string;
  scheme: 'http' | 'https';
  host: string;
  port: number;
  /** `:authority`, or the Host the URL names. */
  authority: string;
  /** Path and query. */
  target: string;
  /** The absolute URL (the request-target of a plain http:// request to the proxy). */
  url: string;
  /** The captured request was HTTP/2: send it so again when the upstream agrees. */
  http2: boolean;
  /** The order the pseudo-headers were captured in (HTTP/2 peers order them differently). */
  pseudoOrder: string[];
  /** Without pseudo-headers (HTTP/2 ones are rebuilt from method, scheme, authority and target). */
  headers: HeaderList;
  body: Buffer | null;
  trailers: HeaderList;
}

export class BadEdit extends Error {}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const DEFAULT_PORT = { http: 80, https: 443 } as const;

export function capturedRequest(detail: ExchangeDetail): ReplayRequest {
  const pseudo = (name: string) => detail.requestHeaders.find(([n]) => n === name)?.[1];
  const host = detail.requestHeaders.find(([n]) => n.toLowerCase() === 'host')?.[1];
  return {
    method: detail.method,
    scheme: detail.scheme,
    host: detail.host,
    port: detail.port,
    authority: pseudo(':authority') ?? host ?? authorityOf(detail.scheme, detail.host, detail.port),
    target: detail.target,
    url: detail.url,
    http2: detail.protocol === 'h2' || detail.protocol === 'h2c',
    pseudoOrder: detail.requestHeaders.filter(([n]) => n.startsWith(':')).map(([n]) => n),
    headers: detail.requestHeaders.filter(([n]) => !n.startsWith(':')),
    body: detail.requestBody?.data ?? null,
    trailers: detail.requestTrailers ?? [],
  };
}

/** Reads edits from the JSON a client posted; throws BadEdit saying what is wrong. */
export function parseEdits(value: unknown): ReplayEdits {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new BadEdit('The edits are a JSON object.');
  const v = value as Record<string, unknown>;
  const edits: ReplayEdits = {};
  for (const key of ['method', 'url', 'body', 'bodyBase64'] as const) {
    if (v[key] === undefined) continue;
    if (typeof v[key] !== 'string') throw new BadEdit(`"${key}" is a string.`);
    edits[key] = v[key] as string;
  }
  if (v.headers !== undefined) {
    const ok = Array.isArray(v.headers) && v.headers.every((h) => Array.isArray(h) && h.length === 2 && typeof h[0] === 'string' && typeof h[1] === 'string');
    if (!ok) throw new BadEdit('"headers" is a list of [name, value] pairs.');
    edits.headers = (v.headers as Array<[string, string]>).map(([n, val]) => [n, val]);
  }
  if (edits.body !== undefined && edits.bodyBase64 !== undefined) throw new BadEdit('Give "body" or "bodyBase64", not both.');
  return edits;
}

export function applyEdits(request: ReplayRequest, edits: ReplayEdits): ReplayRequest {
  const out: ReplayRequest = { ...request };
  if (edits.method !== undefined) {
    if (!TOKEN.test(edits.method) || edits.method.toUpperCase() === 'CONNECT') throw new BadEdit(`"${edits.method}" is not a method that can be resent.`);
    out.method = edits.method;
  }
  if (edits.url !== undefined) Object.assign(out, target(edits.url, request));
  if (edits.headers !== undefined) {
    for (const [name, value] of edits.headers) {
      if (!TOKEN.test(name)) throw new BadEdit(`"${name}" is not a header name${name.startsWith(':') ? ' (pseudo-headers come from the method and URL)' : ''}.`);
      if (/[\r\n\0]/.test(value)) throw new BadEdit(`The value of ${name} has a line break or NUL in it.`);
    }
    out.headers = edits.headers;
  }
  if (edits.body !== undefined) out.body = Buffer.from(edits.body, 'utf8');
  if (edits.bodyBase64 !== undefined) out.body = Buffer.from(edits.bodyBase64, 'base64');
  const edited = Object.keys(edits).length > 0;
  return edited ? withTrueFraming(out) : out;
}

function target(text: string, request: ReplayRequest): Pick<ReplayRequest, 'scheme' | 'host' | 'port' | 'authority' | 'target' | 'url'> {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new BadEdit(`"${text}" is not an absolute URL.`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new BadEdit('Only http:// and https:// URLs can be resent.');
  const scheme = url.protocol === 'https:' ? 'https' : 'http';
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port ? Number(url.port) : DEFAULT_PORT[scheme];
  const same = scheme === request.scheme && host === request.host && port === request.port;
  return { scheme, host, port, authority: same ? request.authority : authorityOf(scheme, host, port), target: `${url.pathname}${url.search}`, url: url.href };
}

function authorityOf(scheme: 'http' | 'https', host: string, port: number): string {
  return port === DEFAULT_PORT[scheme] ? formatAuthority(host, port).replace(/:\d+$/, '') : formatAuthority(host, port);
}

/** Content-Length is the body's length, unless the body goes chunked; trailers only go chunked. */
function withTrueFraming(request: ReplayRequest): ReplayRequest {
  const length = request.body?.length ?? 0;
  if (requestFraming(request.headers) === 'chunked') return request;
  const headers = request.headers.filter(([n]) => n.toLowerCase() !== 'content-length');
  const hadLength = headers.length !== request.headers.length;
  if (length > 0 || hadLength) {
    const at = request.headers.findIndex(([n]) => n.toLowerCase() === 'content-length');
    headers.splice(at >= 0 ? at : headers.length, 0, [at >= 0 ? request.headers[at][0] : 'Content-Length', String(length)]);
  }
  return { ...request, headers, trailers: [] };
}
