// The TLS handshake of the HTTPS proxy port (the proxy itself reached over TLS): a leaf minted by
// hopscope's CA for the name the client asked for (its SNI) or, without SNI, for the address the
// connection arrived on (127.0.0.1, ::1, the bind address); ALPN h2 preferred over http/1.1.
// The handshake is recorded as the client TLS leg of the connection, like interception does.
import type { Socket } from 'node:net';
import tls from 'node:tls';
import type { Failure } from '../capture/events.js';
import { nowMs } from '../capture/clock.js';
import { localCertificateInfo } from '../ca/cert-info.js';
import type { ConnectionRecord } from './connection-registry.js';
import type { Interception } from './interception.js';
import type { ProxyContext } from './proxy-context.js';
import { clientHandshakeFailure } from './tls-intercept.js';

/** What the proxy speaks over TLS, most preferred first. */
export const PROXY_ALPN = ['h2', 'http/1.1'];

/** A client that opens TLS and says nothing more gets this long to finish its handshake. */
const HANDSHAKE_TIMEOUT_MS = 30_000;

/** Wraps an accepted TCP connection in server-side TLS; record it (by the returned socket) before any I/O turn. */
export function startProxyTls(raw: Socket, interception: Interception): { socket: tls.TLSSocket; alpnOffered: string[] } {
  const alpnOffered: string[] = [];
  const socket = new tls.TLSSocket(raw, {
    isServer: true,
    // Without SNI (a client that dialled an IP address) the certificate names the address it dialled.
    secureContext: interception.minter.secureContextFor(localName(raw)),
    SNICallback: (servername, cb) => {
      try {
        cb(null, interception.minter.secureContextFor(servername));
      } catch (err) {
        cb(err as Error);
      }
    },
    ALPNCallback: ({ protocols }) => {
      alpnOffered.push(...protocols);
      // A client offering neither gets the no_application_protocol alert (RFC 7301 §3.2).
      return PROXY_ALPN.find((p) => protocols.includes(p));
    },
  });
  interception.watchKeylog(socket);
  return { socket, alpnOffered };
}

/**
 * Watches the handshake of `socket` and records its outcome on `record`. `onSecure` runs in the
 * same turn as the handshake's end, before any application data is read, with the ALPN choice.
 */
export function recordProxyTls(
  ctx: ProxyContext,
  record: ConnectionRecord,
  socket: tls.TLSSocket,
  alpnOffered: string[],
  onSecure: (alpn: 'h2' | 'http/1.1') => void,
): void {
  const started = nowMs();
  let settled = false;
  const timer = setTimeout(() => {
    fail({ reason: 'timeout', message: `the client did not finish its TLS handshake within ${HANDSHAKE_TIMEOUT_MS} ms`, code: 'ETIMEDOUT' });
    socket.destroy();
  }, HANDSHAKE_TIMEOUT_MS);
  const servername = () => (socket as { servername?: string | false | null }).servername || null;
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
  socket.on('error', (err) => fail(clientHandshakeFailure(err)));
  socket.once('close', () =>
    fail({ reason: 'cert-rejected', message: 'the client closed the connection during the TLS handshake (it probably does not trust the hopscope CA)' }),
  );
}

/** The address the client dialled, as a certificate name (an IPv4-mapped IPv6 address as IPv4). */
function localName(raw: Socket): string {
  const address = raw.localAddress ?? '127.0.0.1';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
