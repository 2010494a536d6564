// An upstream call over HTTP/1.1 with Node's http client: pooled keep-alive connections from the
// proxy's agents (their lookup honours --resolve, their TLS options --upstream-ca), or the one TLS
// socket that just negotiated http/1.1 for this origin. Node's parser reads the response: 1xx as
// 'information', trailers after the last chunk.
import http from 'node:http';
import https from 'node:https';
import { isIP, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Failure, HeaderList } from '../capture/events.js';
import { nowMs } from '../capture/clock.js';
import { failureFromError, upstreamTlsFailure } from '../net/failure.js';
import { pairsFromRaw } from '../net/hop-by-hop.js';
import type { ProxyContext } from '../net/proxy-context.js';
import { h1Trailers } from './header-translation.js';
import type { ReverseUpstream } from './reverse-rules.js';
import { timingsOf, type UpstreamCall, type UpstreamCallEvents } from './upstream-call.js';
import type { H1Route } from './upstream-origins.js';
import { describeTlsLeg, tlsLegOf } from './upstream-tls.js';

export interface H1Head {
  method: string;
  path: string;
  /** Flat [name, value, …] in the order to send, Host first. */
  headers: string[];
}

export function startH1Call(ctx: ProxyContext, route: H1Route, up: ReverseUpstream, head: H1Head, events: UpstreamCallEvents): UpstreamCall {
  const secure = route.scheme === 'https';
  const timings = timingsOf(route.timings);
  const chunked = head.headers.some((v, i) => i % 2 === 0 && v.toLowerCase() === 'transfer-encoding');
  const options: https.RequestOptions = {
    host: up.host,
    port: up.port,
    method: head.method,
    path: head.path,
    headers: head.headers as unknown as http.OutgoingHttpHeaders,
    setHost: false,
    lookup: ctx.lookup,
    // SNI and the certificate check name the upstream, whatever Host says (--reverse-host keep).
    ...(secure ? { servername: isIP(up.host) ? '' : up.host } : {}),
  };
  if (route.socket) {
    const socket = route.socket;
    options.createConnection = () => socket;
  } else {
    options.agent = secure ? ctx.httpsAgent : ctx.httpAgent;
  }
  const req = secure ? https.request(options) : http.request(options);
  req.maxHeadersCount = 0; // the byte limit is the bound, not Node's 2,000 headers
  let res: http.IncomingMessage | null = null;
  let done = false;
  const fail = (failure: Failure) => {
    if (done) return;
    done = true;
    events.error(failure);
  };

  req.on('socket', (socket: Socket) => {
    if (socket.connecting) measureDial(socket, timings, secure);
    if (secure && !route.socket) reportTls(socket as TLSSocket, options.servername || null, timings, events);
  });
  req.on('information', (info: http.InformationEvent) => events.informational(info.statusCode, pairsFromRaw(info.rawHeaders)));
  req.on('response', (response: http.IncomingMessage) => {
    res = response;
    events.response({
      protocol: response.httpVersion === '1.0' ? 'HTTP/1.0' : 'HTTP/1.1',
      status: response.statusCode ?? 0,
      statusText: response.statusMessage ?? '',
      headers: pairsFromRaw(response.rawHeaders),
      remoteAddress: response.socket?.remoteAddress,
      remotePort: response.socket?.remotePort,
    });
    response.on('data', (chunk: Buffer) => events.data(chunk));
    response.once('end', () => {
      // The connection that probed ALPN served this one request: no pool takes it back.
      const probe = route.socket;
      if (probe) req.writableFinished ? probe.end() : req.once('finish', () => probe.end());
      if (done) return;
      done = true;
      events.end(pairsFromRaw(response.rawTrailers));
    });
    response.on('error', () => {});
    response.once('close', () => {
      if (!response.complete) fail({ reason: 'aborted', message: 'the upstream closed the connection mid-response' });
    });
  });
  req.on('error', (err: NodeJS.ErrnoException) => {
    if (res) return fail({ reason: 'aborted', message: 'the upstream closed the connection mid-response' });
    const tlsFailure = secure && err.code !== undefined && !/^E[A-Z]+$/.test(err.code);
    fail(tlsFailure ? upstreamTlsFailure(err) : failureFromError(err, 'internal'));
  });

  return {
    timings,
    write: (chunk) => req.write(chunk),
    onDrain: (callback) => req.once('drain', callback),
    end(trailers: HeaderList) {
      if (trailers.length > 0 && chunked) {
        try {
          req.addTrailers(h1Trailers(trailers));
        } catch {
          // a trailer Node will not send: it stays in the capture only
        }
      }
      req.end();
    },
    pause: () => res?.pause(),
    resume: () => res?.resume(),
    abort() {
      done = true;
      req.destroy();
    },
  };
}

/** Tells `events` which TLS connection of the agent's pool the call went over: once it is up, or at once when reused. */
function reportTls(socket: TLSSocket, sni: string | null, timings: UpstreamCall['timings'], events: UpstreamCallEvents): void {
  const known = tlsLegOf(socket);
  if (known) return events.upstreamTls(known);
  // measureDial's listener runs first and has set tlsMs by then.
  if (socket.connecting) socket.once('secureConnect', () => events.upstreamTls(describeTlsLeg(socket, sni, [], timings.tlsMs ?? 0)));
}

/** Fills the dial timings of a socket Node's client is connecting. */
export function measureDial(socket: Socket, timings: UpstreamCall['timings'], secure: boolean): void {
  const start = nowMs();
  let looked = start;
  let connected = start;
  socket.once('lookup', () => {
    looked = nowMs();
    timings.dnsMs = looked - start;
  });
  socket.once('connect', () => {
    connected = nowMs();
    timings.connectMs = connected - looked;
  });
  if (secure) socket.once('secureConnect', () => (timings.tlsMs = nowMs() - connected));
}
