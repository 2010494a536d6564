// Server-side TLS for hopscope's own TLS front doors (the HTTPS proxy port, the reverse proxy with
// --reverse-tls): a leaf minted by hopscope's CA for the name the client asked for (its SNI) or,
// without SNI, for the address it dialled; ALPN h2 preferred over http/1.1. The handshake is
// recorded as the connection's client TLS leg, like interception records its client leg.
import type { Socket } from 'node:net';
import tls from 'node:tls';
import type { Failure } from '../capture/events.js';
import { nowMs } from '../capture/clock.js';
import { localCertificateInfo } from '../ca/cert-info.js';
import type { LeafMinter } from '../ca/leaf-minter.js';
import type { ConnectionRecord } from './connection-registry.js';
import { failureFromError } from './failure.js';
import type { ProxyContext } from './proxy-context.js';
import { clientHandshakeFailure } from './tls-intercept.js';
import { tlsLegInfo } from './tls-leg.js';

/** What hopscope speaks over its own TLS, most preferred first. */
export const FRONT_DOOR_ALPN = ['h2', 'http/1.1'];

export interface FrontDoorTlsOptions {
  minter: LeafMinter;
  /** Names a certificate may be minted for; any other SNI gets the dialled address's. All names when absent. */
  names?: ReadonlySet<string>;
  watchKeylog?: (socket: tls.TLSSocket) => void;
  /** A client that opens TLS and stops gets this long to finish its handshake. */
  handshakeTimeoutMs: number;
  /** What a client closing during the handshake most likely means on this door. */
  closedDuringHandshake: Failure;
}

export interface FrontDoorTls {
  socket: tls.TLSSocket;
  alpnOffered: string[];
}

/** Wraps an accepted TCP connection in server-side TLS; throws only if no certificate can be minted for the dialled address. */
export function wrapFrontDoorTls(raw: Socket, o: FrontDoorTlsOptions): FrontDoorTls {
  const alpnOffered: string[] = [];
  // Without SNI (a client that dialled an address) the certificate names the address it dialled.
  const fallback = o.minter.secureContextFor(localName(raw));
  const socket = new tls.TLSSocket(raw, {
    isServer: true,
    secureContext: fallback,
    SNICallback: (servername, cb) => {
      try {
        cb(null, !o.names || o.names.has(servername.toLowerCase()) ? o.minter.secureContextFor(servername) : fallback);
      } catch (err) {
        cb(err as Error);
      }
    },
    ALPNCallback: ({ protocols }) => {
      alpnOffered.push(...protocols);
      // A client offering neither gets the no_application_protocol alert (RFC 7301 §3.2).
      return FRONT_DOOR_ALPN.find((p) => protocols.includes(p));
    },
  });
  o.watchKeylog?.(socket);
  return { socket, alpnOffered };
}

/**
 * Watches the handshake and records its outcome on `record`. `onSecure` runs in the turn the
 * handshake ends, before any application data is read, with the ALPN choice.
 */
export function recordFrontDoorTls(
  ctx: ProxyContext,
  record: ConnectionRecord,
  { socket, alpnOffered }: FrontDoorTls,
  o: FrontDoorTlsOptions,
  onSecure: (alpn: 'h2' | 'http/1.1') => void,
): void {
  const started = nowMs();
  let settled = false;
  const servername = () => (socket as { servername?: string | false | null }).servername || null;
  const timer = setTimeout(() => {
    fail({ reason: 'timeout', message: `the client did not finish its TLS handshake within ${o.handshakeTimeoutMs} ms`, code: 'ETIMEDOUT' });
  }, o.handshakeTimeoutMs);
  const fail = (failure: Failure) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    record.error = failure; // more telling than the socket error the connection's own handler saw first
    ctx.bus.emit({ kind: 'tls.failed', connId: record.id, leg: 'client', sni: servername(), alpnOffered, error: failure, certificates: [] });
    socket.destroy();
  };
  socket.once('secure', () => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    const handshakeMs = nowMs() - started;
    onSecure(socket.alpnProtocol === 'h2' ? 'h2' : 'http/1.1'); // serving first; describing the leg is not urgent
    ctx.bus.emit({
      kind: 'tls.established',
      connId: record.id,
      leg: 'client',
      ...tlsLegInfo(socket, servername(), alpnOffered, handshakeMs, localCertificateInfo(socket)),
    });
  });
  socket.on('error', (err) => {
    if (settled) record.error ??= failureFromError(err, 'reset');
    else fail(clientHandshakeFailure(err));
  });
  socket.once('close', () => fail(o.closedDuringHandshake));
}

/** The address the client dialled, as a certificate name (an IPv4-mapped IPv6 address as IPv4). */
function localName(raw: Socket): string {
  const address = raw.localAddress ?? '127.0.0.1';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
