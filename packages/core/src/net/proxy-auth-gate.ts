// The gate in front of every proxy request when --proxy-auth is on: whether a request may pass,
// the 407 a refused one gets (on a ServerResponse or on a raw socket that Node's server gave up
// for CONNECT and Upgrade), how the refusal is captured, and the check that keeps a listener on a
// non-loopback address from becoming an open proxy. Other front doors (HTTPS/h2 proxy listener,
// SOCKS5) reuse these pieces so every refusal looks the same.
import type http from 'node:http';
import { isIP, type Socket } from 'node:net';
import { STATUS_CODES } from 'node:http';
import type { Failure, HeaderList, HttpRequestStarted } from '../capture/events.js';
import type { ProxyContext } from './proxy-context.js';
import { checkProxyAuthorization, PROXY_AUTHENTICATE, type ProxyCredentials } from './proxy-auth.js';
import { connectionTokens, headerValue } from './hop-by-hop.js';

/** A request that may pass (with the user it authenticated as, null when authentication is off) or the refusal to capture. */
export type ProxyAuthOutcome = { ok: true; user: string | null } | { ok: false; failure: Failure };

/** Checks the request's Proxy-Authorization against --proxy-auth (no credentials configured: everything passes). */
export function authorizeProxyRequest(expected: ProxyCredentials | null | undefined, headers: HeaderList): ProxyAuthOutcome {
  if (!expected) return { ok: true, user: null };
  const header = headerValue(headers, 'proxy-authorization');
  const verdict = checkProxyAuthorization(expected, header);
  if (verdict.ok) return { ok: true, user: verdict.user };
  return { ok: false, failure: proxyAuthFailure(header === undefined ? null : verdict.user, header !== undefined) };
}

/** The failure a refused attempt is captured with (the taxonomy has no reason of its own for it). */
export function proxyAuthFailure(user: string | null, presented: boolean): Failure {
  if (!presented) {
    return { reason: 'bad-request', message: 'proxy authentication required: the request had no Proxy-Authorization', code: 'proxy-auth-missing' };
  }
  const who = user === null ? 'malformed or not Basic' : `wrong user name or password for "${user}"`;
  return { reason: 'bad-request', message: `proxy authentication failed: ${who}`, code: 'proxy-auth-rejected' };
}

/** The plain-text body of every 407. */
export const PROXY_AUTH_BODY = 'hopscope: proxy authentication required (Proxy-Authorization: Basic with the --proxy-auth credentials)\n';

/** Response headers of a 407, as a header list (for the capture and for HTTP/2 front doors). */
export function proxyAuthResponseHeaders(keepAlive: boolean): HeaderList {
  return [
    ['Proxy-Authenticate', PROXY_AUTHENTICATE],
    ['Content-Type', 'text/plain; charset=utf-8'],
    ['Content-Length', String(Buffer.byteLength(PROXY_AUTH_BODY))],
    ['Connection', keepAlive ? 'keep-alive' : 'close'],
  ];
}

/** Whether the client lets the connection live on after the 407 (RFC 9112 §9.3; Proxy-Connection as old clients send it). */
export function clientKeepsAlive(httpVersion: string, headers: HeaderList): boolean {
  const tokens = connectionTokens(headers);
  const proxyConnection = headerValue(headers, 'proxy-connection')?.toLowerCase();
  if (tokens.has('close') || proxyConnection === 'close') return false;
  return httpVersion === '1.1' || tokens.has('keep-alive') || proxyConnection === 'keep-alive';
}

/** Answers 407 on an ordinary request; Node keeps the connection when the client allows it. */
export function answerProxyAuthOnResponse(res: http.ServerResponse): void {
  res.writeHead(407, STATUS_CODES[407], {
    'Proxy-Authenticate': PROXY_AUTHENTICATE,
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(PROXY_AUTH_BODY),
  });
  res.end(PROXY_AUTH_BODY);
}

/**
 * Answers 407 on a socket Node's server handed over (CONNECT, Upgrade). When the client keeps the
 * connection alive, bytes it already sent are put back and `serveAgain` hands the socket back to
 * the HTTP parser, so the client can retry with credentials on the same connection.
 */
export function answerProxyAuthOnSocket(
  socket: Socket,
  keepAlive: boolean,
  head: Buffer,
  serveAgain: ((socket: Socket) => void) | undefined,
): HeaderList {
  const again = keepAlive && serveAgain !== undefined && !socket.destroyed && socket.writable;
  const headers = proxyAuthResponseHeaders(again);
  let text = `HTTP/1.1 407 ${STATUS_CODES[407]}\r\n`;
  for (const [name, value] of headers) text += `${name}: ${value}\r\n`;
  const bytes = Buffer.concat([Buffer.from(`${text}\r\n`, 'latin1'), Buffer.from(PROXY_AUTH_BODY, 'utf8')]);
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
  } else if (again) {
    socket.write(bytes);
    if (head.length > 0) socket.unshift(head);
    serveAgain(socket);
  } else {
    socket.end(bytes);
  }
  return headers;
}

/**
 * Captures a refused absolute-form request as an exchange: the request as received (credentials
 * redacted), the 407 hopscope answered, and the failure.
 */
export function recordProxyAuthRefusal(
  ctx: ProxyContext,
  request: Omit<HttpRequestStarted, 'kind' | 'exchangeId' | 'seq' | 'time'>,
  responseHeaders: HeaderList,
  failure: Failure,
): void {
  const exchangeId = ctx.ids.nextExchangeId();
  const { bus } = ctx;
  bus.emit({ kind: 'http.request', exchangeId, ...request, headers: redactProxyAuthorization(request.headers) });
  bus.emit({ kind: 'http.response', exchangeId, protocol: 'HTTP/1.1', status: 407, statusText: STATUS_CODES[407] ?? '', headers: responseHeaders });
  const body = Buffer.from(PROXY_AUTH_BODY, 'utf8');
  if (bus.hasListeners) bus.emit({ kind: 'http.body', exchangeId, side: 'server', chunk: body });
  const timings = { dnsMs: null, connectMs: null, tlsMs: null, requestEnd: null, responseStart: null };
  bus.emit({ kind: 'http.failed', exchangeId, error: failure, requestBodySize: 0, responseBodySize: body.length, timings });
}

/** hopscope's own credentials never land in a capture file: the header stays, its secret does not. */
export function redactProxyAuthorization(headers: HeaderList): HeaderList {
  let out: HeaderList | null = null;
  for (let i = 0; i < headers.length; i++) {
    if (headers[i][0].toLowerCase() !== 'proxy-authorization') continue;
    out ??= headers.slice();
    const scheme = /^\s*(\S+)/.exec(headers[i][1])?.[1] ?? '';
    out[i] = [headers[i][0], `${scheme} [redacted]`.trim()];
  }
  return out ?? headers;
}

/** 127.0.0.0/8, ::1 (also v4-mapped) and `localhost`: only this machine can connect. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const lower = bare.toLowerCase();
  if (lower === 'localhost') return true;
  if (isIP(lower) === 4) return lower.startsWith('127.');
  if (isIP(lower) !== 6) return false;
  // The URL parser writes IPv6 in its shortest form (::ffff:127.0.0.1 becomes [::ffff:7f00:1]).
  const canonical = new URL(`http://[${lower}]/`).hostname;
  return canonical === '[::1]' || canonical.startsWith('[::ffff:7f');
}

/**
 * Refuses to listen where others can reach hopscope without credentials: anyone there could use
 * it as an open proxy into this machine's network. Throws a message fit for the command line.
 */
export function assertListenAllowed(
  host: string,
  options: { proxyAuth?: ProxyCredentials | null; allowOpenProxy?: boolean },
  what = 'the proxy',
): void {
  if (options.proxyAuth || options.allowOpenProxy || isLoopbackHost(host)) return;
  throw new Error(
    `refusing to run ${what} on ${host || 'all addresses'} without --proxy-auth: anyone who can reach that address could use ` +
      'it as an open proxy. Add --proxy-auth USER:PASSWORD (library: proxyAuth), listen on 127.0.0.1, ' +
      'or pass --allow-open-proxy (library: allowOpenProxy) if that is really what you want',
  );
}
