// The active HTTP/1 path: absolute-form requests on the proxy port (`GET http://host/path`).
// Each may go to a different host, so hopscope parses (with Node's own HTTP parser), routes,
// drops hop-by-hop headers and forwards, streaming bodies both ways, reusing upstream
// connections. It emits the same capture events as the passive taps.
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { ExchangeTimings, Failure, HeaderList, HttpProtocol } from '../capture/events.js';
import { nowMs } from '../capture/clock.js';
import type { ProxyContext } from './proxy-context.js';
import { endToEndHeaders, headerValue, pairsFromRaw } from './hop-by-hop.js';
import { describeUpstreamFailure, failureFromError, ProxyError, statusForFailure } from './failure.js';
import { ExchangeBodyTap } from './exchange-body-tap.js';

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

  const headers = pairsFromRaw(req.rawHeaders);
  const exchangeId = ctx.ids.nextExchangeId();
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  ctx.registry.exchangeStarted(record);
  ctx.bus.emit({
    kind: 'http.request',
    exchangeId,
    connId: record.id,
    streamId: null,
    protocol: protocolOf(req),
    method: req.method ?? 'GET',
    target: req.url ?? '',
    url: url.href,
    scheme: url.protocol === 'https:' ? 'https' : 'http',
    host,
    port,
    headers,
  });

  const timings: ExchangeTimings = { dnsMs: null, connectMs: null, tlsMs: null, requestEnd: null, responseStart: null };
  const body = new ExchangeBodyTap(ctx, exchangeId);
  let settled = false;
  const settle = (failure: Failure | null) => {
    if (settled) return;
    settled = true;
    ctx.registry.exchangeEnded(record);
    const sizes = { requestBodySize: body.requestSize, responseBodySize: body.responseSize };
    if (failure) ctx.bus.emit({ kind: 'http.failed', exchangeId, error: failure, ...sizes, timings });
    else ctx.bus.emit({ kind: 'http.completed', exchangeId, ...sizes, timings });
  };

  const outHeaders = endToEndHeaders(headers);
  if (!headerValue(headers, 'host')) outHeaders.unshift('Host', url.host);
  // The client's framing is hop-by-hop; re-declare chunking when the body has no length.
  if (hasChunkedBody(headers)) outHeaders.push('Transfer-Encoding', 'chunked');

  const upstreamModule = url.protocol === 'https:' ? https : http;
  const upstream = upstreamModule.request({
    host,
    port,
    method: req.method,
    path: `${url.pathname}${url.search}`,
    headers: outHeaders as unknown as http.OutgoingHttpHeaders,
    setHost: false,
    agent: url.protocol === 'https:' ? ctx.httpsAgent : ctx.httpAgent,
    lookup: ctx.lookup,
  });
  upstream.setTimeout(ctx.config.responseTimeoutMs, () => {
    upstream.destroy(new ProxyError('timeout', `no response within ${ctx.config.responseTimeoutMs} ms`, 'ETIMEDOUT'));
  });
  upstream.on('socket', (socket: Socket) => measureDial(socket, timings));
  upstream.on('continue', () => res.writeContinue());

  upstream.on('response', (upRes) => {
    upstream.setTimeout(0);
    timings.responseStart = nowMs();
    const responseHeaders = pairsFromRaw(upRes.rawHeaders);
    ctx.bus.emit({
      kind: 'http.response',
      exchangeId,
      protocol: upRes.httpVersion === '1.0' ? 'HTTP/1.0' : 'HTTP/1.1',
      status: upRes.statusCode ?? 0,
      statusText: upRes.statusMessage ?? '',
      headers: responseHeaders,
      remoteAddress: upRes.socket.remoteAddress,
      remotePort: upRes.socket.remotePort,
    });
    res.sendDate = false; // the client sees the upstream's headers, not ours
    res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, endToEndHeaders(responseHeaders) as unknown as http.OutgoingHttpHeaders);
    upRes.on('data', (chunk: Buffer) => body.onData('server', chunk));
    upRes.pipe(res, { end: false });
    upRes.once('end', () => {
      const trailers = pairsFromRaw(upRes.rawTrailers);
      if (trailers.length > 0) {
        ctx.bus.emit({ kind: 'http.trailers', exchangeId, side: 'server', headers: trailers });
        res.addTrailers(trailers as unknown as http.OutgoingHttpHeaders);
      }
      res.end();
    });
    upRes.once('aborted', () => {
      settle({ reason: 'aborted', message: 'the upstream closed the connection mid-response' });
      res.destroy();
    });
  });

  upstream.on('error', (err) => {
    const failure = failureFromError(err, 'internal');
    settle(failure);
    if (!res.headersSent) {
      const status = statusForFailure(failure.reason);
      res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(`hopscope: ${describeUpstreamFailure(failure, host, port)}\n`);
    } else {
      res.destroy();
    }
  });

  req.on('data', (chunk: Buffer) => body.onData('client', chunk));
  req.once('end', () => {
    timings.requestEnd = nowMs();
    const trailers = pairsFromRaw(req.rawTrailers);
    if (trailers.length > 0) {
      ctx.bus.emit({ kind: 'http.trailers', exchangeId, side: 'client', headers: trailers });
      upstream.addTrailers(trailers as unknown as http.OutgoingHttpHeaders);
    }
    upstream.end();
  });
  req.pipe(upstream, { end: false });

  res.once('finish', () => settle(null));
  res.once('close', () => {
    if (res.writableFinished) return;
    settle({ reason: 'aborted', message: 'the client closed the connection before the response was complete' });
    upstream.destroy();
  });
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

function hasChunkedBody(headers: HeaderList): boolean {
  const te = headerValue(headers, 'transfer-encoding');
  return te !== undefined && /(^|,)\s*chunked\s*$/i.test(te);
}

/** Dial timings, only when this request opened a new upstream connection. */
function measureDial(socket: Socket, timings: ExchangeTimings): void {
  if (!socket.connecting) return;
  const start = nowMs();
  let looked = start;
  socket.once('lookup', () => {
    looked = nowMs();
    timings.dnsMs = looked - start;
  });
  socket.once('connect', () => {
    timings.connectMs = nowMs() - looked;
  });
  socket.once('secureConnect', () => {
    timings.tlsMs = nowMs() - looked - (timings.connectMs ?? 0);
  });
}
