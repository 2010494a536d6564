// The active path for protocol switches: an absolute-form request with `Upgrade` on the proxy port
// (`GET http://host/chat` + `Upgrade: websocket`). Upgrade and Connection are hop-by-hop, but a
// switch only works when they reach the server, so this request forwards them (RFC 9110 §7.8).
// A 101 is relayed as received and the connection becomes a byte relay with the WebSocket tap;
// any other answer (403, 426, …) is relayed as an ordinary exchange and the connection closes.
// With an upstream proxy, ws:// goes to it in absolute-form and wss:// through a CONNECT tunnel.
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { isIP } from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { ExchangeTimings, Failure, HeaderList } from '../capture/events.js';
import { nowMs } from '../capture/clock.js';
import { guardTap, opaqueTap } from '../taps/tap.js';
import { tapAfterUpgrade } from '../taps/ws-tap.js';
import { wsLimitsOf } from './tunnel.js';
import { ExchangeBodyTap } from './exchange-body-tap.js';
import { describeUpstreamFailure, failureFromError, ProxyError, statusForFailure } from './failure.js';
import { connectionTokens, endToEndHeaders, headerValue, pairsFromRaw } from './hop-by-hop.js';
import { answerAndClose } from './plain-response.js';
import type { ProxyContext } from './proxy-context.js';
import { answerProxyAuthOnSocket, authorizeProxyRequest, clientKeepsAlive, recordProxyAuthRefusal, redactProxyAuthorization } from './proxy-auth-gate.js';
import { relay } from './relay.js';
import { dialTunnelTarget } from './tunnel-dial.js';
import { upstreamProxyAnswerError, upstreamProxyAuthorization, upstreamProxyError, type UpstreamProxy } from './upstream-proxy.js';

/** Connection options meant for hopscope itself, never forwarded even on a switch. */
const NEVER_FORWARDED = new Set(['keep-alive', 'close', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding']);

/** `serveAgain` hands the socket back to the HTTP parser (a client retrying after a 407 on the same connection). */
export function handleUpgradeRequest(
  ctx: ProxyContext,
  req: http.IncomingMessage,
  socket: Socket,
  head: Buffer,
  serveAgain?: (socket: Socket) => void,
): void {
  const record = ctx.registry.get(socket);
  if (!record) {
    socket.destroy();
    return;
  }
  let url: URL;
  try {
    url = parseAbsoluteTarget(req.url ?? '');
  } catch (err) {
    record.error ??= { reason: 'bad-request', message: (err as Error).message };
    answerAndClose(socket, 400, (err as Error).message);
    return;
  }
  let headers = pairsFromRaw(req.rawHeaders);
  const secure = url.protocol === 'https:';
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port ? Number(url.port) : secure ? 443 : 80;
  const request = {
    connId: record.id,
    streamId: null,
    protocol: req.httpVersion === '1.0' ? 'HTTP/1.0' : 'HTTP/1.1',
    method: req.method ?? 'GET',
    target: req.url ?? '',
    url: url.href,
    scheme: secure ? 'https' : 'http',
    host,
    port,
    headers,
  } as const;
  if (ctx.config.proxyAuth) {
    const auth = authorizeProxyRequest(ctx.config.proxyAuth, headers);
    if (!auth.ok) {
      const sent = answerProxyAuthOnSocket(socket, clientKeepsAlive(req.httpVersion, headers), head, serveAgain);
      recordProxyAuthRefusal(ctx, request, sent, auth.failure);
      return;
    }
    headers = redactProxyAuthorization(headers);
  }
  const exchangeId = ctx.ids.nextExchangeId();
  ctx.registry.exchangeStarted(record);
  ctx.bus.emit({ kind: 'http.request', exchangeId, ...request, headers });

  const timings: ExchangeTimings = { dnsMs: null, connectMs: null, tlsMs: null, requestEnd: null, responseStart: null };
  const body = new ExchangeBodyTap(ctx, exchangeId);
  let settled = false;
  let answered = false;
  let refusedByProxy = false;
  const settle = (failure: Failure | null) => {
    if (settled) return;
    settled = true;
    ctx.registry.exchangeEnded(record);
    const sizes = { requestBodySize: 0, responseBodySize: body.responseSize };
    if (failure) ctx.bus.emit({ kind: 'http.failed', exchangeId, error: failure, ...sizes, timings });
    else ctx.bus.emit({ kind: 'http.completed', exchangeId, ...sizes, timings });
  };

  const outHeaders = endToEndHeaders(headers, switchHeaders(headers));
  if (!headerValue(headers, 'host')) outHeaders.unshift('Host', url.host);
  const via = ctx.config.upstreamProxy ?? null;
  const options: http.RequestOptions = {
    host,
    port,
    method: req.method,
    path: `${url.pathname}${url.search}`,
    headers: outHeaders as unknown as http.OutgoingHttpHeaders,
    setHost: false,
    agent: false, // the connection becomes the WebSocket's: never from or back to a pool
    lookup: ctx.lookup,
  };
  if (via) throughUpstreamProxy(ctx, via, options, secure, url, outHeaders, timings);
  const upstream = secure ? https.request({ ...options, ...upstreamTlsOptions(ctx, host) }) : http.request(options);
  upstream.setTimeout(ctx.config.responseTimeoutMs, () => {
    upstream.destroy(new ProxyError('timeout', `no response within ${ctx.config.responseTimeoutMs} ms`, 'ETIMEDOUT'));
  });
  upstream.on('socket', (s: Socket) => measureDial(s, timings));

  const responded = (res: http.IncomingMessage): HeaderList => {
    answered = true;
    upstream.setTimeout(0);
    timings.responseStart = nowMs();
    const responseHeaders = pairsFromRaw(res.rawHeaders);
    ctx.bus.emit({
      kind: 'http.response',
      exchangeId,
      protocol: res.httpVersion === '1.0' ? 'HTTP/1.0' : 'HTTP/1.1',
      status: res.statusCode ?? 0,
      statusText: res.statusMessage ?? '',
      headers: responseHeaders,
      remoteAddress: res.socket.remoteAddress,
      remotePort: res.socket.remotePort,
    });
    return responseHeaders;
  };

  upstream.on('upgrade', (res: http.IncomingMessage, upSocket: Socket, upHead: Buffer) => {
    const responseHeaders = responded(res);
    upSocket.setTimeout(0); // no idle timeout ever closes an open WebSocket
    upSocket.setNoDelay(true);
    if (socket.destroyed) {
      upSocket.destroy();
      settle({ reason: 'aborted', message: 'the client closed the connection before the switch' });
      return;
    }
    socket.write(responseHead(res, endToEndHeaders(responseHeaders, switchHeaders(responseHeaders))));
    settle(null);
    const info = { exchangeId, requestHeaders: headers, responseHeaders };
    const tap = tapAfterUpgrade({ connId: record.id, bus: ctx.bus, bodyCaptureLimit: ctx.config.bodyCaptureLimit, wsLimits: wsLimitsOf(ctx) }, info);
    // conn.closed goes out when the client socket closes, which a failing upstream causes: note why first.
    upSocket.on('error', (err) => {
      record.error ??= failureFromError(err, 'reset');
    });
    relay({
      client: socket,
      server: upSocket,
      tap: tap ? guardTap(tap, reportTapBug(ctx, record.id)) : opaqueTap,
      pendingFromClient: head.length > 0 ? [head] : [],
      pendingFromServer: upHead.length > 0 ? [upHead] : [],
      onClosed: (error) => {
        if (error) record.error ??= error;
      },
    });
  });

  // Refused (403, 426, …): relay the answer as is; Node's server gave this connection up, so it ends here.
  upstream.on('response', (res: http.IncomingMessage) => {
    if (via && !secure && res.statusCode === 407) {
      // The upstream proxy refused our credentials: a 502 that says so, not its 407 (which the client would take as ours).
      const failure = failureFromError(upstreamProxyAnswerError(via, 407, res.statusMessage ?? '', `${req.method ?? 'GET'} ${url.href}`));
      refusedByProxy = true;
      settle(failure);
      upstream.destroy();
      answerAndClose(socket, statusForFailure(failure.reason), describeUpstreamFailure(failure, host, port));
      return;
    }
    const responseHeaders = responded(res);
    const out = endToEndHeaders(responseHeaders);
    out.push('Connection', 'close');
    socket.write(responseHead(res, out));
    res.on('data', (chunk: Buffer) => {
      body.onData('server', chunk);
      if (!socket.write(chunk)) res.pause();
    });
    socket.on('drain', () => res.resume());
    res.once('end', () => {
      socket.end();
      settle(null);
    });
    res.once('aborted', () => {
      settle({ reason: 'aborted', message: 'the upstream closed the connection mid-response' });
      socket.destroy();
    });
  });

  upstream.on('error', (err) => {
    if (refusedByProxy) return;
    // ws:// through an upstream proxy: the connection is the proxy's, so are its errors.
    const failure = failureFromError(via && !secure && !answered ? upstreamProxyError(err, via) : err, 'internal');
    settle(failure);
    if (!answered) answerAndClose(socket, statusForFailure(failure.reason), describeUpstreamFailure(failure, host, port));
    else socket.destroy();
  });

  socket.once('close', () => {
    if (answered || refusedByProxy) return;
    settle({ reason: 'aborted', message: 'the client closed the connection before the upstream answered' });
    upstream.destroy();
  });

  timings.requestEnd = nowMs();
  upstream.end();
}

/**
 * Points the upstream request at the upstream proxy: ws:// in absolute-form with its credentials
 * (--resolve applies to the proxy's name through ctx.lookup), wss:// through a CONNECT tunnel with
 * TLS to the target on top.
 */
function throughUpstreamProxy(
  ctx: ProxyContext,
  via: UpstreamProxy,
  options: http.RequestOptions,
  secure: boolean,
  url: URL,
  outHeaders: string[],
  timings: ExchangeTimings,
): void {
  const { host, port } = options as { host: string; port: number };
  if (!secure) {
    options.host = via.host;
    options.port = via.port;
    options.path = `http://${url.host}${url.pathname}${url.search}`;
    const authorization = upstreamProxyAuthorization(via);
    if (authorization) outHeaders.push('Proxy-Authorization', authorization);
    return;
  }
  // No agent: Node then asks createConnection for the socket, and waits for its callback.
  delete options.agent;
  options.createConnection = ((_: unknown, done: (err: Error | null, socket?: Duplex) => void) => {
    dialTunnelTarget(ctx, host, port).then(
      (dial) => {
        timings.dnsMs = dial.dnsMs;
        timings.connectMs = dial.connectMs;
        const tlsOptions = upstreamTlsOptions(ctx, host) as tls.ConnectionOptions;
        done(null, tls.connect({ ...tlsOptions, socket: dial.socket, ALPNProtocols: ['http/1.1'] }));
      },
      (err: Error) => done(err),
    );
    return undefined;
  }) as unknown as http.RequestOptions['createConnection'];
}

/** Hop-by-hop headers that a protocol switch must carry: Upgrade, Connection and what it names. */
function switchHeaders(headers: HeaderList): string[] {
  return ['upgrade', 'connection', ...[...connectionTokens(headers)].filter((t) => !NEVER_FORWARDED.has(t))];
}

function responseHead(res: http.IncomingMessage, headers: string[]): Buffer {
  const lines = [`HTTP/1.1 ${res.statusCode} ${res.statusMessage ?? ''}`];
  for (let i = 0; i + 1 < headers.length; i += 2) lines.push(`${headers[i]}: ${headers[i + 1]}`);
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

function upstreamTlsOptions(ctx: ProxyContext, host: string): https.RequestOptions {
  const agentOptions = (ctx.httpsAgent as https.Agent & { options: https.AgentOptions }).options;
  return {
    ...(isIP(host) ? {} : { servername: host }),
    ...(agentOptions.ca ? { ca: agentOptions.ca } : {}),
    rejectUnauthorized: agentOptions.rejectUnauthorized !== false,
  };
}

function parseAbsoluteTarget(target: string): URL {
  if (!/^(https?|wss?):\/\//i.test(target)) {
    throw new Error(`expected an absolute-form request target (http://host/path) for a proxy, got "${target.slice(0, 200)}"`);
  }
  const url = new URL(target.replace(/^ws/i, 'http'));
  if (!url.hostname) throw new Error(`request target has no host: "${target.slice(0, 200)}"`);
  return url;
}

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
}

function reportTapBug(ctx: ProxyContext, connId: number) {
  return (err: unknown, side: 'client' | 'server' | null) => {
    ctx.bus.emit({
      kind: 'decode.failed',
      connId,
      decoder: 'tap',
      side: side ?? 'client',
      code: 'internal',
      message: (err as Error)?.stack ?? String(err),
    });
  };
}
