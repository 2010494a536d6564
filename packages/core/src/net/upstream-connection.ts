// One upstream HTTP/1.1 connection of the active path: dialled through the --resolve rules with
// a connect timeout (TLS verified like Node's https agent did), with the timings of its dial.
// The pool hands it from exchange to exchange; its socket events go to whichever exchange owns
// it now (listeners are attached once, not per request).
import net, { isIP, type LookupFunction } from 'node:net';
import tls from 'node:tls';
import type { Failure } from '../capture/events.js';
import { nowMs } from '../capture/clock.js';
import { failureFromError, ProxyError, upstreamTlsFailure } from './failure.js';

export interface UpstreamTarget {
  scheme: 'http' | 'https';
  /** Host name or address, IPv6 without brackets. */
  host: string;
  port: number;
  /** Pool key: scheme, host and port. */
  key: string;
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
  /** The connection is gone while still owned; `failure` says why. */
  onClose(failure: Failure): void;
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
}


export class UpstreamConnection {
  readonly socket: net.Socket;
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

  constructor(
    readonly target: UpstreamTarget,
    settings: DialSettings,
    /** Called once when the socket closed, owned or not. */
    private readonly onClosed: (conn: UpstreamConnection) => void,
  ) {
    const { host, port } = target;
    const started = nowMs();
    let looked = started;
    if (target.scheme === 'https') {
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
      this.socket = net.connect({ host, port, lookup: settings.lookup });
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
      socket.destroy(new ProxyError('timeout', `connecting to ${host}:${port} timed out after ${settings.connectTimeoutMs} ms`, 'ETIMEDOUT'));
    }, settings.connectTimeoutMs);

    socket.on('data', (chunk: Buffer) => {
      if (this.owner) this.owner.onData(chunk);
      else socket.destroy(); // bytes nobody asked for: the connection is not HTTP we can trust
    });
    socket.on('end', () => this.owner?.onEnd());
    socket.on('drain', () => this.owner?.onDrain());
    socket.on('error', (err) => {
      this.error ??= err;
    });
    socket.once('close', () => {
      this.closed = true;
      if (this.connectTimer) clearTimeout(this.connectTimer);
      const owner = this.owner;
      this.owner = null;
      this.onClosed(this);
      owner?.onClose(this.failure());
    });
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
    if (!err) {
      return { reason: 'reset', message: 'socket hang up: the upstream closed the connection', code: 'ECONNRESET' };
    }
    return this.target.scheme === 'https' && !this.ready ? upstreamTlsFailure(err) : failureFromError(err, 'internal');
  }
}
