// What the capture says about one TLS leg once its handshake is done, the same for every path:
// the CONNECT interception (both legs), the HTTPS proxy port and reverse listener (client leg) and
// the reverse proxy's pooled upstream connections.
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { CertificateInfo, Failure, TlsEstablished, TlsFailed } from '../capture/events.js';
import { chainInfo } from '../ca/cert-info.js';

export type TlsLegInfo = Pick<TlsEstablished, 'sni' | 'alpnOffered' | 'alpn' | 'version' | 'cipher' | 'handshakeMs' | 'certificates'>;
export type TlsLegFailure = Pick<TlsFailed, 'sni' | 'alpnOffered' | 'error' | 'certificates'>;

export function tlsLegInfo(socket: TLSSocket, sni: string | null, alpnOffered: string[], handshakeMs: number, certificates: CertificateInfo[]): TlsLegInfo {
  const cipher = socket.getCipher();
  return {
    sni,
    alpnOffered,
    alpn: socket.alpnProtocol || null,
    version: socket.getProtocol() ?? '',
    cipher: cipher?.standardName ?? cipher?.name ?? '',
    handshakeMs,
    certificates,
  };
}

/** A failed upstream handshake, with the chain the upstream presented when there was one. */
export function tlsFailureInfo(socket: TLSSocket, sni: string | null, alpnOffered: string[], error: Failure, presented?: PeerCertificate): TlsLegFailure {
  let certificates: CertificateInfo[] = [];
  try {
    certificates = chainInfo(socket, presented);
  } catch {
    // no certificate was presented
  }
  return { sni, alpnOffered, error, certificates };
}
