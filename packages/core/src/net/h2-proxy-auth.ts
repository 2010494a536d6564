// Proxy authentication on HTTP/2 streams to the proxy: each stream must carry valid credentials.
// A refusal looks like one on the plain port (the same 407 body and failure); a refused proxied
// request is captured as an exchange, a refused CONNECT is left on the connection.
import { STATUS_CODES } from 'node:http';
import type http2 from 'node:http2';
import type { HeaderList } from '../capture/events.js';
import type { ConnectionRecord } from './connection-registry.js';
import { respondText, pseudoHeader } from './h2-proxy-answer.js';
import { h2RequestTarget, type H2RequestTarget } from './h2-proxy-forward.js';
import { PROXY_AUTHENTICATE } from './proxy-auth.js';
import { authorizeProxyRequest, PROXY_AUTH_BODY, redactProxyAuthorization } from './proxy-auth-gate.js';
import type { ProxyContext } from './proxy-context.js';

/** The user (null when authentication is off) and the headers to capture, or null when refused (and answered). */
export function authorizeStream(
  ctx: ProxyContext,
  record: ConnectionRecord,
  stream: http2.ServerHttp2Stream,
  headers: HeaderList,
): { user: string | null; headers: HeaderList } | null {
  const outcome = authorizeProxyRequest(ctx.config.proxyAuth, headers);
  if (outcome.ok) return { user: outcome.user, headers: ctx.config.proxyAuth ? redactProxyAuthorization(headers) : headers };

  const body = Buffer.from(PROXY_AUTH_BODY, 'utf8');
  const responseHeaders: HeaderList = [
    ['proxy-authenticate', PROXY_AUTHENTICATE],
    ['content-type', 'text/plain; charset=utf-8'],
    ['content-length', String(body.length)],
  ];
  respondText(stream, 407, PROXY_AUTH_BODY, Object.fromEntries(responseHeaders));
  if (pseudoHeader(headers, ':method') === 'CONNECT') {
    // No tunnel was opened: the connection carries the refusal (a retry on it may still succeed).
    record.error ??= outcome.failure;
    return null;
  }
  let target: H2RequestTarget;
  try {
    target = h2RequestTarget(headers);
  } catch {
    return null; // not a request hopscope could have forwarded anyway
  }
  const { bus } = ctx;
  const exchangeId = ctx.ids.nextExchangeId();
  const { method, path, url, scheme, host, port } = target;
  const captured = redactProxyAuthorization(headers);
  bus.emit({ kind: 'http.request', exchangeId, connId: record.id, streamId: stream.id ?? null, protocol: 'h2', method, target: path, url: url.href, scheme, host, port, headers: captured });
  bus.emit({ kind: 'http.response', exchangeId, protocol: 'h2', status: 407, statusText: STATUS_CODES[407] ?? '', headers: responseHeaders });
  if (bus.hasListeners) bus.emit({ kind: 'http.body', exchangeId, side: 'server', chunk: body });
  const timings = { dnsMs: null, connectMs: null, tlsMs: null, requestEnd: null, responseStart: null };
  bus.emit({ kind: 'http.failed', exchangeId, error: outcome.failure, requestBodySize: 0, responseBodySize: body.length, timings });
  return null;
}
