// The upstream side of a WebSocket handshake: an HTTP/1.1 Upgrade on a connection of its own (it
// becomes the WebSocket's: never from or back to a pool), with a Sec-WebSocket-Key whose accept is
// checked; or an RFC 8441 extended CONNECT stream on the origin's HTTP/2 session, once the upstream's
// SETTINGS said it accepts them. Either way the result is the duplex that will carry the frames, or
// the ordinary response the upstream answered instead.
import http from 'node:http';
import https from 'node:https';
import { isIP, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Duplex, Readable } from 'node:stream';
import type { HeaderList } from '../capture/events.js';
import { failureFromError, ProxyError, upstreamTlsFailure } from '../net/failure.js';
import { pairsFromRaw } from '../net/hop-by-hop.js';
import type { ProxyContext } from '../net/proxy-context.js';
import { measureDial } from './h1-call.js';
import { closeFailure } from './h2-call.js';
import { h1RequestHeaders, h2RequestHeaders, pairsFromRawH2 } from './header-translation.js';
import type { ReverseUpstream } from './reverse-rules.js';
import type { UpstreamCall, UpstreamResponseHead } from './upstream-call.js';
import { RouteError, type H1Route, type H2Route, type UpstreamOrigins } from './upstream-origins.js';
import { firstValue, handshakeFields, websocketAccept } from './ws-handshake.js';
import { describeTlsLeg, type TlsLegInfo } from './upstream-tls.js';

export interface WsUpstreamRequest {
  path: string;
  /** Host / :authority for the upstream. */
  authority: string;
  /** The client's handshake request as received. */
  clientHeaders: HeaderList;
  /** Sec-WebSocket-Key for an HTTP/1.1 upstream. */
  key: string;
  timings: UpstreamCall['timings'];
  /** The upstream TLS connection, once up, when this handshake dialled its own. */
  onUpstreamTls(leg: TlsLegInfo): void;
}

export type WsUpstreamOutcome =
  | { kind: 'switched'; head: UpstreamResponseHead; duplex: Duplex; pending: Buffer[] }
  | { kind: 'answered'; head: UpstreamResponseHead; body: Readable };

export interface WsUpstream {
  outcome: Promise<WsUpstreamOutcome>;
  /** Gives the handshake up (the client went away, or it took too long: `reason` says which). */
  abort(reason?: ProxyError): void;
}

export function openH1WebSocket(ctx: ProxyContext, origins: UpstreamOrigins, route: H1Route, up: ReverseUpstream, r: WsUpstreamRequest): WsUpstream {
  const secure = route.scheme === 'https';
  const headers = h1RequestHeaders(handshakeFields(r.clientHeaders), { authority: r.authority, hasBody: false });
  headers.push('Upgrade', 'websocket', 'Connection', 'Upgrade', 'Sec-WebSocket-Key', r.key);
  if (!firstValue(r.clientHeaders, 'sec-websocket-version')) headers.push('Sec-WebSocket-Version', '13');
  const options: https.RequestOptions = {
    host: up.host,
    port: up.port,
    method: 'GET',
    path: r.path,
    headers: headers as unknown as http.OutgoingHttpHeaders,
    setHost: false,
    lookup: ctx.lookup,
    ...(secure ? { servername: isIP(up.host) ? '' : up.host, ...origins.tlsOptions() } : {}),
  };
  if (route.socket) {
    const socket = route.socket;
    options.createConnection = () => socket;
  } else {
    options.agent = false;
  }
  const req = secure ? https.request(options) : http.request(options);
  req.on('socket', (socket: Socket) => {
    if (!socket.connecting) return;
    measureDial(socket, r.timings, secure);
    if (secure) {
      const sni = options.servername || null;
      socket.once('secureConnect', () => r.onUpstreamTls(describeTlsLeg(socket as TLSSocket, sni, [], r.timings.tlsMs ?? 0)));
    }
  });
  const outcome = new Promise<WsUpstreamOutcome>((resolve, reject) => {
    const headOf = (res: http.IncomingMessage): UpstreamResponseHead => ({
      protocol: res.httpVersion === '1.0' ? 'HTTP/1.0' : 'HTTP/1.1',
      status: res.statusCode ?? 0,
      statusText: res.statusMessage ?? '',
      headers: pairsFromRaw(res.rawHeaders),
      remoteAddress: res.socket?.remoteAddress,
      remotePort: res.socket?.remotePort,
    });
    req.on('upgrade', (res: http.IncomingMessage, socket: Socket, head: Buffer) => {
      const accept = firstValue(pairsFromRaw(res.rawHeaders), 'sec-websocket-accept');
      if (accept?.trim() !== websocketAccept(r.key)) {
        socket.destroy();
        return reject(new RouteError({ reason: 'decode', message: `switched to WebSocket with a wrong Sec-WebSocket-Accept (${accept ?? 'none'})`, code: 'bad-accept' }));
      }
      socket.setTimeout(0);
      socket.setNoDelay(true);
      resolve({ kind: 'switched', head: headOf(res), duplex: socket, pending: head.length > 0 ? [head] : [] });
    });
    req.on('response', (res: http.IncomingMessage) => resolve({ kind: 'answered', head: headOf(res), body: res }));
    req.on('error', (err: NodeJS.ErrnoException) => {
      const tls = secure && err.code !== undefined && !/^E[A-Z]+$/.test(err.code);
      reject(new RouteError(err instanceof ProxyError ? failureFromError(err) : tls ? upstreamTlsFailure(err) : failureFromError(err, 'internal')));
    });
  });
  req.end();
  return { outcome, abort: (reason?: ProxyError) => req.destroy(reason) };
}

export function openH2WebSocket(origins: UpstreamOrigins, route: H2Route, r: WsUpstreamRequest): WsUpstream {
  let stream: import('node:http2').ClientHttp2Stream | null = null;
  let aborted: ProxyError | null = null;
  const outcome = (async (): Promise<WsUpstreamOutcome> => {
    const settings = await origins.remoteSettings(route.session);
    if (aborted) throw new RouteError(failureFromError(aborted));
    if (!settings?.enableConnectProtocol) {
      throw new RouteError({
        reason: 'refused',
        message: 'does not accept WebSockets over HTTP/2: its SETTINGS have no SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441)',
        code: 'no-extended-connect',
      });
    }
    const headers = h2RequestHeaders(handshakeFields(r.clientHeaders), {
      method: 'CONNECT',
      protocol: 'websocket',
      path: r.path,
      scheme: route.protocol === 'h2' ? 'https' : 'http',
      authority: r.authority,
    });
    headers['sec-websocket-version'] ??= '13';
    const s = route.session.request(headers, { endStream: false });
    stream = s;
    let lastError: (Error & { code?: string }) | null = null;
    s.on('error', (err: Error & { code?: string }) => (lastError = err));
    return new Promise<WsUpstreamOutcome>((resolve, reject) => {
      s.once('response', (h: import('node:http2').IncomingHttpHeaders, _flags: number, raw: string[]) => {
        const status = Number(h[':status']);
        const head: UpstreamResponseHead = {
          protocol: route.protocol,
          status,
          statusText: '',
          headers: pairsFromRawH2(raw),
          remoteAddress: route.remoteAddress,
          remotePort: route.remotePort,
        };
        resolve(status >= 200 && status < 300 ? { kind: 'switched', head, duplex: s, pending: [] } : { kind: 'answered', head, body: s });
      });
      s.once('close', () => reject(new RouteError(aborted ? failureFromError(aborted) : closeFailure(s, lastError, false))));
    });
  })();
  return {
    outcome,
    abort: (reason?: ProxyError) => {
      aborted = reason ?? new ProxyError('aborted', 'the handshake was given up');
      if (stream && !stream.destroyed) stream.close(0x8); // CANCEL
    },
  };
}
