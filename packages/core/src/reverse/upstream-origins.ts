// Where a reverse-proxied request goes upstream, per origin. `http` origins are HTTP/1.1 over the
// proxy's keep-alive agent. `h2c` origins get one multiplexed HTTP/2 session (prior knowledge).
// `https` origins are dialled once offering h2 and http/1.1: the upstream's ALPN answer decides, an
// h2 session is kept and shared, and an HTTP/1.1 answer is remembered (that first socket serves the
// request that dialled it; later ones use the proxy's https agent).
import http2 from 'node:http2';
import { isIP } from 'node:net';
import tls from 'node:tls';
import type { Failure } from '../capture/events.js';
import { nowMs } from '../capture/clock.js';
import { dialTcp } from '../net/dialer.js';
import { failureFromError, ProxyError, upstreamTlsFailure } from '../net/failure.js';
import type { ProxyContext } from '../net/proxy-context.js';
import { headerPairsFor } from './header-translation.js';
import type { ReverseUpstream } from './reverse-rules.js';
import { tlsFailureInfo } from '../net/tls-leg.js';
import { deferVerification } from '../net/upstream-verification.js';
import { describeTlsLeg, tlsLegOf, type TlsLegFailure, type TlsLegInfo } from './upstream-tls.js';

export interface DialTimings {
  dnsMs: number;
  connectMs: number;
  tlsMs: number | null;
}

export interface H1Route {
  kind: 'h1';
  scheme: 'http' | 'https';
  /** A TLS connection that just negotiated http/1.1, for this request only; null: use the agent. */
  socket: tls.TLSSocket | null;
  timings: DialTimings | null;
  /** The upstream TLS leg when it is known here (the probing socket); agent sockets report theirs in the call. */
  tls: TlsLegInfo | null;
}

export interface H2Route {
  kind: 'h2';
  protocol: 'h2' | 'h2c';
  session: http2.ClientHttp2Session;
  /** Null when the session was already open. */
  timings: DialTimings | null;
  remoteAddress: string;
  remotePort: number;
  /** The session's TLS connection (null for h2c). */
  tls: TlsLegInfo | null;
}

export type UpstreamRoute = H1Route | H2Route;

/** Why an upstream could not be reached, in the capture's taxonomy. */
export class RouteError extends Error {
  constructor(
    readonly failure: Failure,
    /** Set when the upstream TLS handshake failed. */
    readonly tls?: TlsLegFailure,
  ) {
    super(failure.message);
  }
}

export interface UpstreamOriginsOptions {
  /** Roots for upstream certificates (Node's plus --upstream-ca). */
  secureContext?: tls.SecureContext;
  /** False only with --upstream-insecure. */
  rejectUnauthorized: boolean;
  /** Sees every upstream TLS socket (key logging). */
  onTlsSocket?: (socket: tls.TLSSocket) => void;
  /** An HTTP/2 session with no frames for this long is closed gracefully (default 30 s). */
  idleTimeoutMs?: number;
}

type Dialled = { kind: 'h1'; socket: tls.TLSSocket; timings: DialTimings } | { kind: 'h2'; session: http2.ClientHttp2Session; timings: DialTimings };

/** What hopscope offers an https upstream: its ALPN answer decides the protocol. */
const OFFERED_ALPN = ['h2', 'http/1.1'];

export class UpstreamOrigins {
  private readonly sessions = new Map<string, http2.ClientHttp2Session>();
  private readonly dialing = new Map<string, Promise<Dialled>>();
  /** https origins whose ALPN answer was http/1.1 (or none). */
  private readonly h1Only = new Set<string>();
  private readonly settings = new WeakMap<http2.ClientHttp2Session, Promise<http2.Settings | null>>();
  private readonly sessionTls = new WeakMap<http2.ClientHttp2Session, TlsLegInfo>();
  private destroyed = false;

  constructor(
    private readonly ctx: ProxyContext,
    private readonly options: UpstreamOriginsOptions,
  ) {}

  async route(up: ReverseUpstream): Promise<UpstreamRoute> {
    if (up.scheme === 'http') return { kind: 'h1', scheme: 'http', socket: null, timings: null, tls: null };
    const key = `${up.scheme}://${up.host}:${up.port}`;
    if (this.h1Only.has(key)) return { kind: 'h1', scheme: 'https', socket: null, timings: null, tls: null };
    const live = this.sessions.get(key);
    if (live && !live.closed && !live.destroyed) return this.h2Route(up, live, null);
    let pending = this.dialing.get(key);
    const mine = pending === undefined;
    if (!pending) {
      pending = this.dial(up, key);
      this.dialing.set(key, pending);
      const forget = () => this.dialing.delete(key);
      pending.then(forget, forget);
    }
    const dialled = await pending;
    if (dialled.kind === 'h1') {
      if (!mine) return { kind: 'h1', scheme: 'https', socket: null, timings: null, tls: null };
      return { kind: 'h1', scheme: 'https', socket: dialled.socket, timings: dialled.timings, tls: tlsLegOf(dialled.socket) ?? null };
    }
    return this.h2Route(up, dialled.session, mine ? dialled.timings : null);
  }

  /** The upstream's first SETTINGS (they say whether it accepts extended CONNECT, RFC 8441); null if it closed first. */
  remoteSettings(session: http2.ClientHttp2Session): Promise<http2.Settings | null> {
    return this.settings.get(session) ?? Promise.resolve(session.remoteSettings);
  }

  /** TLS options for an upstream connection dialled elsewhere (a WebSocket's own connection). */
  tlsOptions(): { secureContext?: tls.SecureContext; rejectUnauthorized: boolean } {
    const { secureContext, rejectUnauthorized } = this.options;
    return { ...(secureContext ? { secureContext } : {}), rejectUnauthorized };
  }

  /** Closes every upstream session; later dials close at once. */
  destroy(): void {
    this.destroyed = true;
    for (const session of this.sessions.values()) session.destroy();
    this.sessions.clear();
  }

  private h2Route(up: ReverseUpstream, session: http2.ClientHttp2Session, timings: DialTimings | null): H2Route {
    const socket = session.socket;
    return {
      kind: 'h2',
      protocol: up.scheme === 'h2c' ? 'h2c' : 'h2',
      session,
      timings,
      remoteAddress: socket?.remoteAddress ?? up.host,
      remotePort: socket?.remotePort ?? up.port,
      tls: this.sessionTls.get(session) ?? null,
    };
  }

  private async dial(up: ReverseUpstream, key: string): Promise<Dialled> {
    const { ctx } = this;
    let tcp;
    try {
      tcp = await dialTcp(up.host, up.port, ctx.resolveMap, ctx.config.connectTimeoutMs);
    } catch (err) {
      throw new RouteError(failureFromError(err, 'internal'));
    }
    if (this.destroyed) {
      tcp.socket.destroy();
      throw new RouteError({ reason: 'closed', message: 'hopscope is shutting down' });
    }
    const timings: DialTimings = { dnsMs: tcp.dnsMs, connectMs: tcp.connectMs, tlsMs: null };
    if (up.scheme === 'h2c') return { kind: 'h2', session: this.openSession(key, `http://${up.authority}`, tcp.socket), timings };

    const { socket, leg } = await this.handshake(up, tcp.socket);
    timings.tlsMs = leg.handshakeMs;
    if (socket.alpnProtocol === 'h2') {
      const session = this.openSession(key, `https://${up.authority}`, socket);
      this.sessionTls.set(session, leg);
      return { kind: 'h2', session, timings };
    }
    this.h1Only.add(key);
    return { kind: 'h1', socket, timings };
  }

  /** The TLS connection once up, described (see upstream-tls.ts). */
  private handshake(up: ReverseUpstream, raw: import('node:net').Socket): Promise<{ socket: tls.TLSSocket; leg: TlsLegInfo }> {
    const { options } = this;
    const started = nowMs();
    const verification = deferVerification(options.rejectUnauthorized);
    const socket = tls.connect({
      socket: raw,
      host: up.host,
      ...(isIP(up.host) ? {} : { servername: up.host }),
      ALPNProtocols: OFFERED_ALPN,
      ...(options.secureContext ? { secureContext: options.secureContext } : {}),
      ...verification.options,
    });
    options.onTlsSocket?.(socket);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy(new ProxyError('timeout', `TLS handshake with ${up.host}:${up.port} timed out`, 'ETIMEDOUT'));
      }, this.ctx.config.connectTimeoutMs);
      socket.once('secureConnect', () => {
        const refusal = verification.refusal(socket);
        if (refusal) return onError(refusal);
        clearTimeout(timer);
        socket.removeListener('error', onError);
        resolve({ socket, leg: describeTlsLeg(socket, sniFor(up), OFFERED_ALPN, nowMs() - started, verification.presented()) });
      });
      const onError = (err: Error) => {
        clearTimeout(timer);
        const failure = err instanceof ProxyError ? failureFromError(err) : upstreamTlsFailure(err);
        // Before destroy: the chain goes with the socket.
        const tlsFailure = tlsFailureInfo(socket, sniFor(up), OFFERED_ALPN, failure, verification.presented());
        socket.destroy();
        reject(new RouteError(failure, tlsFailure));
      };
      socket.once('error', onError);
    });
  }

  private openSession(key: string, origin: string, socket: import('node:net').Socket): http2.ClientHttp2Session {
    const maxHeaderBytes = this.ctx.config.maxHeaderBytes;
    const session = http2.connect(origin, {
      createConnection: () => socket,
      settings: { enablePush: false, maxHeaderListSize: maxHeaderBytes },
      maxHeaderListPairs: headerPairsFor(maxHeaderBytes),
    });
    session.on('error', () => {}); // each stream reports its own failure
    this.settings.set(
      session,
      new Promise((resolve) => {
        session.once('remoteSettings', resolve);
        session.once('close', () => resolve(null));
      }),
    );
    session.setTimeout(this.options.idleTimeoutMs ?? 30_000, () => session.close());
    const forget = () => {
      if (this.sessions.get(key) === session) this.sessions.delete(key);
    };
    session.once('goaway', forget);
    session.once('close', forget);
    if (this.destroyed) session.destroy();
    else this.sessions.set(key, session);
    return session;
  }
}

function sniFor(up: ReverseUpstream): string | null {
  return isIP(up.host) ? null : up.host;
}
