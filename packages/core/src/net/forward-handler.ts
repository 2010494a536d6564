// The active HTTP/1 path: absolute-form requests on the proxy port (`GET http://host/path`), and
// the way every front door sends a proxied request upstream (forwardUpstream).
// Each may go to a different host, so hopscope parses (with Node's own HTTP parser), routes,
// drops hop-by-hop headers and forwards over its own keep-alive upstream connections (see
// upstream-exchange.ts), streaming bodies both ways. It emits the same capture events as the
// passive taps.
import type http from 'node:http';
import type { Socket } from 'node:net';
import type { Failure, HeaderList, HttpProtocol } from '../capture/events.js';
import type { ConnectionRecord } from './connection-registry.js';
import type { ProxyContext } from './proxy-context.js';
import { pairsFromRaw } from './hop-by-hop.js';
import { requestFraming, requestHead, type RequestBodyFraming } from './request-head.js';
import { UpstreamExchange } from './upstream-exchange.js';
import type { UpstreamTarget } from './upstream-connection.js';
import { answerProxyAuthOnResponse, authorizeProxyRequest, clientKeepsAlive, proxyAuthResponseHeaders, recordProxyAuthRefusal, redactProxyAuthorization } from './proxy-auth-gate.js';
import { upstreamProxyAuthorization } from './upstream-proxy.js';

export function handleForwardRequest(ctx: ProxyContext, req: http.IncomingMessage, res: http.ServerResponse): void {
  const record = ctx.registry.get(req.socket as Socket);
  if (!record) {
    res.destroy();
    return;
  }
  let url: URL;
  try {
    url = parseAbsoluteTarget(req.url ?? '');
  } catch (err) {
    record.error ??= { reason: 'bad-request', message: (err as Error).message };
    res.writeHead(400, { 'Content-Type': 'text/plain; charset=utf-8', Connection: 'close' });
    res.end(`hopscope: ${(err as Error).message}\n`);
    return;
  }

  let headers = pairsFromRaw(req.rawHeaders);
  const scheme = url.protocol === 'https:' ? 'https' : 'http';
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port ? Number(url.port) : scheme === 'https' ? 443 : 80;
  const method = req.method ?? 'GET';
  const protocol = protocolOf(req);
  const { proxyAuth } = ctx.config;
  if (proxyAuth) {
    const auth = authorizeProxyRequest(proxyAuth, headers);
    if (!auth.ok) {
      // The refused attempt is an exchange row of its own; the connection lives on for the retry.
      const request = { connId: record.id, streamId: null, protocol, method, target: req.url ?? '', url: url.href, scheme, host, port, headers } as const;
      recordProxyAuthRefusal(ctx, request, proxyAuthResponseHeaders(clientKeepsAlive(req.httpVersion, headers)), auth.failure);
      answerProxyAuthOnResponse(res);
      return;
    }
    headers = redactProxyAuthorization(headers);
  }
  const exchangeId = ctx.ids.nextExchangeId();
  ctx.registry.exchangeStarted(record);
  ctx.bus.emit({
    kind: 'http.request',
    exchangeId,
    connId: record.id,
    streamId: null,
    protocol,
    method,
    target: req.url ?? '',
    url: url.href,
    scheme,
    host,
    port,
    headers,
  });

  forwardUpstream(ctx, record, { exchangeId, method, url, headers, framing: requestFraming(headers), clientIsHttp10: protocol === 'HTTP/1.0' }, req, res);
}

/** A proxied request, once captured, on its way upstream. */
export interface ForwardedRequest {
  exchangeId: number;
  method: string;
  /** The absolute URL it is for (http:// or https://). */
  url: URL;
  /** The fields to send (hop-by-hop ones are dropped on the way). */
  headers: HeaderList;
  framing: RequestBodyFraming;
  clientIsHttp10: boolean;
}

/**
 * Sends a request that arrived on any front door (absolute-form on HTTP/1.x, an http:// stream on
 * HTTP/2) over hopscope's pooled upstream connections, through --upstream-proxy when there is one,
 * and records how its exchange ended.
 */
export function forwardUpstream(
  ctx: ProxyContext,
  record: ConnectionRecord,
  request: ForwardedRequest,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): void {
  const { exchangeId, method, url, headers, framing } = request;
  const { upstreamProxy } = ctx.config;
  const scheme = url.protocol === 'https:' ? 'https' : 'http';
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port ? Number(url.port) : scheme === 'https' ? 443 : 80;
  let target: UpstreamTarget;
  let head: string;
  if (upstreamProxy && scheme === 'http') {
    // Through the upstream proxy: absolute-form to it, its credentials added, one pool for all targets.
    target = { scheme, host, port, key: `proxy://${upstreamProxy.host}:${upstreamProxy.port}`, via: upstreamProxy };
    head = requestHead(method, `http://${url.host}${url.pathname}${url.search}`, headers, url.host, framing);
    const authorization = upstreamProxyAuthorization(upstreamProxy);
    if (authorization) head = `${head.slice(0, -2)}Proxy-Authorization: ${authorization}\r\n\r\n`;
  } else {
    // https:// through an upstream proxy is a CONNECT tunnel per origin (upstream-connection.ts).
    target = { scheme, host, port, key: `${scheme}://${host}:${port}`, via: upstreamProxy ?? null };
    head = requestHead(method, `${url.pathname}${url.search}`, headers, url.host, framing);
  }
  const exchange: UpstreamExchange = new UpstreamExchange(
    ctx,
    target,
    { exchangeId, method, head, framing, clientIsHttp10: request.clientIsHttp10 },
    req,
    res,
    (failure: Failure | null) => {
      ctx.registry.exchangeEnded(record);
      const { timings, body } = exchange;
      const sizes = { requestBodySize: body.requestSize, responseBodySize: body.responseSize };
      if (failure) ctx.bus.emit({ kind: 'http.failed', exchangeId, error: failure, ...sizes, timings });
      else ctx.bus.emit({ kind: 'http.completed', exchangeId, ...sizes, timings });
    },
  );
  exchange.start();
}

/** Absolute-form targets only: origin-form means the client did not treat us as a proxy. */
function parseAbsoluteTarget(target: string): URL {
  if (!/^https?:\/\//i.test(target)) {
    throw new Error(`expected an absolute-form request target (http://host/path) for a proxy, got "${target.slice(0, 200)}"`);
  }
  const url = new URL(target);
  if (!url.hostname) throw new Error(`request target has no host: "${target.slice(0, 200)}"`);
  return url;
}

function protocolOf(req: http.IncomingMessage): HttpProtocol {
  return req.httpVersion === '1.0' ? 'HTTP/1.0' : 'HTTP/1.1';
}
