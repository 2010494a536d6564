// The upstream TLS leg of reverse-proxied traffic. Upstream connections are pooled and shared by
// many client connections, so each is described once, when its handshake ends, and a client
// connection records as its upstream leg the first upstream TLS connection its requests went over
// (or the handshake that failed), the same columns the CONNECT path fills.
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { chainInfo } from '../ca/cert-info.js';
import type { ConnectionRecord } from '../net/connection-registry.js';
import type { ProxyContext } from '../net/proxy-context.js';
import { tlsLegInfo, type TlsLegFailure, type TlsLegInfo } from '../net/tls-leg.js';

export type { TlsLegFailure, TlsLegInfo };

const described = new WeakMap<TLSSocket, TlsLegInfo>();
const recorded = new WeakSet<ConnectionRecord>();

/** Describes a socket whose handshake just ended; later calls with the same socket get the same description. */
export function describeTlsLeg(socket: TLSSocket, sni: string | null, alpnOffered: string[], handshakeMs: number, presented?: PeerCertificate): TlsLegInfo {
  const known = described.get(socket);
  if (known) return known;
  const info = tlsLegInfo(socket, sni, alpnOffered, handshakeMs, chainInfo(socket, presented));
  described.set(socket, info);
  return info;
}

/** The description of a socket `describeTlsLeg` saw, if any. */
export function tlsLegOf(socket: TLSSocket): TlsLegInfo | undefined {
  return described.get(socket);
}

/** Records the upstream leg on a client connection, unless one is recorded already. */
export function recordUpstreamLeg(ctx: ProxyContext, record: ConnectionRecord, leg: TlsLegInfo | TlsLegFailure): void {
  if (recorded.has(record)) return;
  recorded.add(record);
  if ('error' in leg) ctx.bus.emit({ kind: 'tls.failed', connId: record.id, leg: 'upstream', ...leg });
  else ctx.bus.emit({ kind: 'tls.established', connId: record.id, leg: 'upstream', ...leg });
}
