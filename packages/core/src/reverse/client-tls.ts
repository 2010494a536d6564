// The TLS handshake of the reverse listener (--reverse-tls): a leaf minted by hopscope's CA for the
// listener's names only (localhost, 127.0.0.1, ::1, the listen address and the --reverse host
// prefixes); a client without SNI gets one for the address it dialled. ALPN h2 is preferred over
// http/1.1. The handshake is recorded as the connection's client TLS leg.
import type { Socket } from 'node:net';
import tls from 'node:tls';
import type { Failure } from '../capture/events.js';
import { nowMs } from '../capture/clock.js';
import { localCertificateInfo } from '../ca/cert-info.js';
import type { LeafMinter } from '../ca/leaf-minter.js';
import type { ConnectionRecord } from '../net/connection-registry.js';
import { failureFromError } from '../net/failure.js';
import type { ProxyContext } from '../net/proxy-context.js';
import { clientHandshakeFailure } from '../net/tls-intercept.js';

const ALPN = ['h2', 'http/1.1'];

export interface ClientTlsOptions {
  minter: LeafMinter;
  /** Lower-case names (hosts and addresses) a certificate may be minted for. */
  names: ReadonlySet<string>;
  watchKeylog?: (socket: tls.TLSSocket) => void;
  /** A client that opens TLS and stops gets this long to finish the handshake. */
  handshakeTimeoutMs: number;
}

/** The names the listener answers to: loopback, its own address, and the rules' host prefixes. */
export function listenerNames(listenHost: string, ruleHosts: ReadonlyArray<string | null>): Set<string> {
  const names = new Set(['localhost', '127.0.0.1', '::1']);
  if (listenHost !== '0.0.0.0' && listenHost !== '::' && listenHost !== '') names.add(listenHost.toLowerCase());
  for (const host of ruleHosts) if (host) names.add(host.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1'));
  return names;
}

/**
 * Wraps an accepted connection in server-side TLS and records the handshake on `record`; `onSecure`
 * runs in the turn the handshake ends (before any request is read) with the ALPN choice.
 */
export function acceptClientTls(
  ctx: ProxyContext,
  record: ConnectionRecord,
  raw: Socket,
  o: ClientTlsOptions,
  onSecure: (socket: tls.TLSSocket, alpn: 'h2' | 'http/1.1') => void,
): void {
  const started = nowMs();
  const alpnOffered: string[] = [];
  let socket: tls.TLSSocket;
  try {
    // Without SNI (a client that dialled an address) the certificate names the address it dialled.
    const fallback = o.minter.secureContextFor(localName(raw));
    socket = new tls.TLSSocket(raw, {
      isServer: true,
      secureContext: fallback,
      SNICallback: (servername, cb) => {
        try {
          cb(null, o.names.has(servername.toLowerCase()) ? o.minter.secureContextFor(servername) : fallback);
        } catch (err) {
          cb(err as Error);
        }
      },
      ALPNCallback: ({ protocols }) => {
        alpnOffered.push(...protocols);
        // A client offering neither gets the no_application_protocol alert (RFC 7301 §3.2).
        return ALPN.find((p) => protocols.includes(p));
      },
    });
  } catch (err) {
    record.error = { reason: 'internal', message: (err as Error).message };
    raw.destroy();
    return;
  }
  o.watchKeylog?.(socket);
  let settled = false;
  const servername = () => (socket as { servername?: string | false | null }).servername || null;
  const timer = setTimeout(() => {
    fail({ reason: 'timeout', message: `the client did not finish its TLS handshake within ${o.handshakeTimeoutMs} ms`, code: 'ETIMEDOUT' });
  }, o.handshakeTimeoutMs);
  const fail = (failure: Failure) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    record.error ??= failure;
    ctx.bus.emit({ kind: 'tls.failed', connId: record.id, leg: 'client', sni: servername(), alpnOffered, error: failure, certificates: [] });
    socket.destroy();
  };
  socket.once('secure', () => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    const handshakeMs = nowMs() - started;
    onSecure(socket, socket.alpnProtocol === 'h2' ? 'h2' : 'http/1.1'); // serving first; describing the leg is not urgent
    const cipher = socket.getCipher();
    ctx.bus.emit({
      kind: 'tls.established',
      connId: record.id,
      leg: 'client',
      sni: servername(),
      alpnOffered,
      alpn: socket.alpnProtocol || null,
      version: socket.getProtocol() ?? '',
      cipher: cipher?.standardName ?? cipher?.name ?? '',
      handshakeMs,
      certificates: localCertificateInfo(socket),
    });
  });
  socket.on('error', (err) => {
    if (settled) record.error ??= failureFromError(err, 'reset');
    else fail(clientHandshakeFailure(err));
  });
  socket.once('close', () => fail({ reason: 'closed', message: 'the client closed the connection during the TLS handshake' }));
}

/** The address the client dialled, as a certificate name (an IPv4-mapped IPv6 address as IPv4). */
function localName(raw: Socket): string {
  const address = raw.localAddress ?? '127.0.0.1';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
