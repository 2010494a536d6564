// What the capture says about one TLS leg once its handshake is done, the same for every path:
// the CONNECT interception (both legs), the HTTPS proxy port and reverse listener (client leg) and
// the reverse proxy's pooled upstream connections.
import type { TLSSocket } from 'node:tls';
import type { CertificateInfo, TlsEstablished } from '../capture/events.js';

export type TlsLegInfo = Pick<TlsEstablished, 'sni' | 'alpnOffered' | 'alpn' | 'version' | 'cipher' | 'handshakeMs' | 'certificates'>;

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
