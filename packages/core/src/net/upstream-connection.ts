// One upstream HTTP/1.1 connection of the active path: dialled through the --resolve rules with
// a connect timeout (TLS verified like Node's https agent did), with the timings of its dial.
// The pool hands it from exchange to exchange; its socket events go to whichever exchange owns
// it now (listeners are attached once, not per request). With an upstream proxy, an http://
// connection goes to the proxy itself, and an https:// one is a CONNECT tunnel through it with
// TLS on top.
import net, { isIP, type LookupFunction } from 'node:net';
import tls from 'node:tls';
import type { Failure } from '../capture/events.js';
import { nowMs } from '../capture/clock.js';
import { failureFromError, ProxyError, upstreamTlsFailure } from './failure.js';
import { upstreamProxyError, upstreamProxyName, type UpstreamProxy } from './upstream-proxy.js';
import { requestTunnel } from './upstream-proxy-connect.js';

export interface UpstreamTarget {
  scheme: 'http' | 'https';
  /** Host name or address, IPv6 without brackets. */
  host: string;
  port: number;
  /** Pool key: scheme, host and port (or the upstream proxy, for http:// through it). */
  key: string;
  /** The upstream proxy to go through, if any. */
  via?: UpstreamProxy | null;
}

/** The exchange that uses a connection right now. */
export interface ConnectionOwner {
  /** The connection is up (TCP connected, TLS handshake done). */
  onReady(): void;
  onData(chunk: Buffer): void;
  /** The upstream half-closed. */
  onEnd(): void;
  /** The socket can take more writes. */
  onDrain(): void;
  /** The connection is gone while still owned; `failure` says why, `hadError` whether the socket failed (a reset) rather than closed. */
  onClose(failure: Failure, hadError: boolean): void;
}

export interface DialSettings {
  lookup: LookupFunction;
  connectTimeoutMs: number;
  /** One context for all upstream handshakes (roots plus any extra CAs). */
  secureContext?: tls.SecureContext;
  rejectUnauthorized: boolean;
  /** A TLS session to resume, from an earlier connection to the same origin. */
  session?: Buffer;
  /** Sees every TLS socket (key logging). */
  onTlsSocket?: (socket: tls.TLSSocket) => void;
  /** A session ticket arrived for this origin. */
  onSession?: (session: Buffer) => void;
  /** Largest CONNECT answer head accepted from an upstream proxy. */
  maxHeadBytes?: number;
}

export class UpstreamConnection {
  /** With an https:// tunnel through an upstream proxy: the plain socket until the tunnel is up, then its TLS socket. */
  socket: net.Socket;
  owner: ConnectionOwner | null = null;
  ready = false;
  closed = false;
  /** Exchanges that finished on it; 0 while the first one runs. */
  uses = 0;
  /** When it last went back to the pool (Date.now()). */
  idleSince = 0;
  dnsMs: number | null = null;
  connectMs: number | null = null;
  tlsMs: number | null = null;
  remoteAddress = '';
  remotePort = 0;
  private error: Error | null = null;
  private connectTimer: NodeJS.Timeout | null;
  /** True while the connection to the upstream proxy is not yet a tunnel to the target. */
  private tunnelling = false;

  constructor(
    readonly target: UpstreamTarget,
    settings: DialSettings,
    /** Called once when the socket closed, owned or not. */
    private readonly onClosed: (conn: UpstreamConnection) => void,
  ) {
    const { host, port, via } = target;
    const started = nowMs();
    let looked = started;
    if (via && target.scheme === 'https') {
      this.socket = net.connect({ host: via.host, port: via.port, lookup: settings.lookup });
      this.tunnelling = true;
      this.socket.once('connect', () => this.tunnelThenTls(via, settings, () => looked));
    } else if (target.scheme === 'https') {
      const servername = isIP(host) ? undefined : host;
      const socket = tls.connect({
        host,
        port,
        lookup: settings.lookup,
        ...(servername ? { servername } : {}),
        ALPNProtocols: ['http/1.1'],
        ...(settings.secureContext ? { secureContext: settings.secureContext } : {}),
        rejectUnauthorized: settings.rejectUnauthorized,
        ...(settings.session ? { session: settings.session } : {}),
      });
      settings.onTlsSocket?.(socket);
      if (settings.onSession) socket.on('session', settings.onSession);
      socket.once('secureConnect', () => {
        this.tlsMs = nowMs() - looked - (this.connectMs ?? 0);
        this.becomeReady();
      });
      this.socket = socket;
    } else {
      // Plain http://: to the target, or to the upstream proxy that forwards it.
      this.socket = via ? net.connect({ host: via.host, port: via.port, lookup: settings.lookup }) : net.connect({ host, port, lookup: settings.lookup });
    }
    const socket = this.socket;
    socket.setNoDelay(true);
    socket.once('lookup', () => {
      looked = nowMs();
      this.dnsMs = looked - started;
    });
    socket.once('connect', () => {
      this.connectMs = nowMs() - looked;
      socket.setKeepAlive(true, 1000);
      if (target.scheme === 'http') this.becomeReady();
    });
    this.connectTimer = setTimeout(() => {
      this.connectTimer = null;
      const through = via ? ` through the ${upstreamProxyName(via)}` : '';
      this.socket.destroy(new ProxyError('timeout', `connecting to ${host}:${port}${through} timed out after ${settings.connectTimeoutMs} ms`, 'ETIMEDOUT'));
    }, settings.connectTimeoutMs);
    if (this.tunnelling) {
      socket.on('error', this.onSocketError);
      socket.once('close', this.onSocketClose);
    } else {
      this.listen(socket);
    }
  }

  /** Attaches the listeners that serve the owner (once, on the socket that carries HTTP). */
  private listen(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => {
      if (this.owner) this.owner.onData(chunk);
      else socket.destroy(); // bytes nobody asked for: the connection is not HTTP we can trust
    });
    socket.on('end', () => this.owner?.onEnd());
    socket.on('drain', () => this.owner?.onDrain());
    socket.on('error', this.onSocketError);
    socket.once('close', this.onSocketClose);
  }

  private readonly onSocketError = (err: Error): void => {
    this.error ??= err;
  };

  private readonly onSocketClose = (): void => {
    if (this.closed) return;
    this.closed = true;
    if (this.connectTimer) clearTimeout(this.connectTimer);
    const owner = this.owner;
    this.owner = null;
    this.onClosed(this);
    owner?.onClose(this.failure(), this.error !== null);
  };

  /** https:// through an upstream proxy: CONNECT on the socket to it, then TLS with the target inside the tunnel. */
  private tunnelThenTls(via: UpstreamProxy, settings: DialSettings, lookedAt: () => number): void {
    const raw = this.socket;
    const { host, port } = this.target;
    // The connect timer bounds the whole dial, so the CONNECT answer gets no timer of its own.
    requestTunnel(raw, via, host, port, { maxHeadBytes: settings.maxHeadBytes ?? 64 * 1024, timeoutMs: 0 }).then(
      () => {
        if (this.closed || raw.destroyed) return;
        this.tunnelling = false;
        // Connecting lasts until the proxy has reached the target; TLS starts inside the tunnel.
        const tunnelUp = nowMs();
        this.connectMs = tunnelUp - lookedAt();
        raw.removeListener('error', this.onSocketError);
        raw.removeListener('close', this.onSocketClose);
        const servername = isIP(host) ? undefined : host;
        const secure = tls.connect({
          socket: raw,
          ...(servername ? { servername } : {}),
          ALPNProtocols: ['http/1.1'],
          ...(settings.secureContext ? { secureContext: settings.secureContext } : {}),
          rejectUnauthorized: settings.rejectUnauthorized,
          ...(settings.session ? { session: settings.session } : {}),
        });
        settings.onTlsSocket?.(secure);
        if (settings.onSession) secure.on('session', settings.onSession);
        this.socket = secure;
        this.listen(secure);
        secure.once('close', () => raw.destroy());
        secure.once('secureConnect', () => {
          this.tlsMs = nowMs() - tunnelUp;
          this.becomeReady();
        });
      },
      (err: Error) => {
        this.error ??= err;
        raw.destroy();
      },
    );
  }

  /** Gives the connection to `owner`; tells it at once when the connection is already up. */
  attach(owner: ConnectionOwner): void {
    this.owner = owner;
    if (this.ready) owner.onReady();
  }

  destroy(): void {
    this.owner = null;
    this.socket.destroy();
  }

  private becomeReady(): void {
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    this.ready = true;
    this.remoteAddress = this.socket.remoteAddress ?? '';
    this.remotePort = this.socket.remotePort ?? 0;
    this.owner?.onReady();
  }

  /** Why the connection ended, in the capture's taxonomy. */
  private failure(): Failure {
    const err = this.error;
    const { via } = this.target;
    if (!err) {
      const who = via && (this.tunnelling || this.target.scheme === 'http') ? `the ${upstreamProxyName(via)}` : 'the upstream';
      return { reason: 'reset', message: `socket hang up: ${who} closed the connection`, code: 'ECONNRESET' };
    }
    // Until the tunnel is up, and always for http:// through it, the socket is the upstream proxy's.
    if (via && (this.tunnelling || this.target.scheme === 'http')) return failureFromError(upstreamProxyError(err, via));
    return this.target.scheme === 'https' && !this.ready ? upstreamTlsFailure(err) : failureFromError(err, 'internal');
  }
}
