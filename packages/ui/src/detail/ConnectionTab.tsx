// The connection an exchange travelled on, with both TLS legs side by side: client ↔ hopscope and
// hopscope ↔ upstream. This is where a failed interception is explained.
import type { ConnectionDetailJson, InfoResponse } from '../../../core/src/inspector/protocol.js';
import type { TlsLegDetail } from '../../../core/src/store/row-types.js';
import { fetchConnection } from '../api/rest.js';
import { formatBytes, formatDateTime, formatMs } from '../format.js';
import { useResource } from './use-resource.js';

const TLS_VERSIONS: Record<number, string> = { 0x0304: 'TLS 1.3', 0x0303: 'TLS 1.2', 0x0302: 'TLS 1.1', 0x0301: 'TLS 1.0' };

/** Plain words for the failures people hit when setting up interception. */
function explain(leg: 'client' | 'upstream', reason: string, caPath: string | null): string | null {
  if (reason === 'cert-rejected') {
    return `The client refused hopscope's certificate: it does not trust the hopscope CA yet.${caPath ? ` Trust ${caPath} in the client` : ' Trust the hopscope CA in the client'} (run "hopscope ca" for how), or pass this host through.`;
  }
  if (reason === 'upstream-cert') {
    return 'The upstream server\'s certificate did not verify (expired, self-signed, or for another name). Use --upstream-ca FILE to trust its CA, or --upstream-insecure while testing.';
  }
  if (reason === 'tls') return leg === 'client' ? 'The TLS handshake with the client failed.' : 'The TLS handshake with the upstream failed.';
  return null;
}

const TUNNEL_VIA = { connect: 'CONNECT', socks5: 'SOCKS5 CONNECT', 'h2-connect': 'HTTP/2 CONNECT stream' } as const;

export function ConnectionTab({ connectionId, version, info }: { connectionId: number; version: string; info: InfoResponse | null }) {
  const res = useResource(`${connectionId}@${version}`, (signal) => fetchConnection(connectionId, signal));
  if (res.state === 'loading') return <p className="muted">Loading the connection…</p>;
  if (res.state === 'error') return <p className="notice error">{res.message}</p>;
  const c: ConnectionDetailJson = res.value;
  const general: Array<[string, React.ReactNode]> = [
    ['Connection', `#${c.id}${c.parentId !== null ? ` (inside #${c.parentId})` : ''} on ${c.listener}`],
    ['Client', `${c.clientAddress}:${c.clientPort}`],
    ['Tunnel', c.tunnel ? `${TUNNEL_VIA[c.tunnel.via]} ${c.tunnel.target}` : 'none (plain proxy request)'],
    ...(c.tunnel?.user ? ([['Proxy user', c.tunnel.user]] as Array<[string, string]>) : []),
    ['Upstream', c.upstream ? `${c.upstream.remoteAddress}:${c.upstream.remotePort}` : ''],
    ['DNS / connect', c.upstream ? `${formatMs(c.upstream.dnsMs)} / ${formatMs(c.upstream.connectMs)}` : ''],
    ['Detected', c.detectedProtocol ?? ''],
    ['Intercepted', c.intercepted === null ? '' : c.intercepted ? 'yes: decrypted' : 'no: passed through'],
    ['Opened', formatDateTime(c.openedAt)],
    ['Closed', c.closedAt === null ? 'open' : formatDateTime(c.closedAt)],
    ['Bytes', c.bytesFromClient === null ? '' : `${formatBytes(c.bytesFromClient)} from client, ${formatBytes(c.bytesFromServer)} from server`],
    ['Exchanges', String(c.exchangeIds.length)],
  ];
  return (
    <div className="connection">
      {c.error ? (
        <p className="notice error">
          Connection ended with <strong>{c.error.reason}</strong>: {c.error.message}
        </p>
      ) : null}
      <table className="kv">
        <tbody>
          {general
            .filter(([, v]) => v !== '')
            .map(([k, v]) => (
              <tr key={k}>
                <th scope="row">{k}</th>
                <td>{v}</td>
              </tr>
            ))}
        </tbody>
      </table>
      {c.hello ? (
        <section>
          <h3>ClientHello</h3>
          <table className="kv">
            <tbody>
              <tr><th scope="row">SNI</th><td>{c.hello.sni ?? 'none'}</td></tr>
              <tr><th scope="row">ALPN offered</th><td>{c.hello.alpn.join(', ') || 'none'}</td></tr>
              <tr><th scope="row">Versions</th><td>{(c.hello.supportedVersions.length ? c.hello.supportedVersions : [c.hello.version]).map((v) => TLS_VERSIONS[v] ?? `0x${v.toString(16)}`).join(', ')}</td></tr>
            </tbody>
          </table>
        </section>
      ) : null}
      <section>
        <h3>TLS</h3>
        {c.tls.client || c.tls.upstream ? (
          <div className="legs">
            <TlsLeg title="Client ↔ hopscope" leg={c.tls.client} at={c.openedAt} explanation={c.tls.client?.error ? explain('client', c.tls.client.error.reason, info?.caPath ?? null) : null} />
            <TlsLeg title="hopscope ↔ upstream" leg={c.tls.upstream} at={c.openedAt} explanation={c.tls.upstream?.error ? explain('upstream', c.tls.upstream.error.reason, null) : null} />
          </div>
        ) : (
          <p className="muted">No TLS on this connection{c.intercepted === false ? ' that hopscope decrypted' : ''}.</p>
        )}
      </section>
      {c.decodeErrors.length ? (
        <section>
          <h3>Decoder errors</h3>
          <table className="kv">
            <tbody>
              {c.decodeErrors.map((d) => (
                <tr key={d.id}>
                  <th scope="row">{d.decoder} ({d.side})</th>
                  <td>
                    <code className="code-chip">{d.code}</code> {d.message}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <p className="muted small">After a decoder error the bytes were still forwarded unchanged; only decoding stopped.</p>
        </section>
      ) : null}
    </div>
  );
}

/** Why a certificate was not valid at `at` (ms since the epoch: when the connection was made), or null. */
export function validityProblem(cert: { validFrom: string; validTo: string }, at: number): string | null {
  if (Date.parse(cert.validTo) < at) return 'expired';
  if (Date.parse(cert.validFrom) > at) return 'not yet valid';
  return null;
}

export function TlsLeg({ title, leg, explanation, at }: { title: string; leg: TlsLegDetail | null; explanation: string | null; at: number }) {
  return (
    <div className={`leg${leg?.error ? ' failed' : ''}`}>
      <h4>{title}</h4>
      {!leg ? (
        <p className="muted">Not attempted.</p>
      ) : (
        <>
          {leg.error ? (
            <div className="notice error">
              <strong>{leg.error.reason}</strong>: {leg.error.message}
              {explanation ? <p>{explanation}</p> : null}
            </div>
          ) : null}
          <table className="kv">
            <tbody>
              <tr><th scope="row">SNI</th><td>{leg.sni ?? 'none'}</td></tr>
              <tr><th scope="row">ALPN offered</th><td>{leg.alpnOffered.join(', ') || 'none'}</td></tr>
              <tr><th scope="row">ALPN negotiated</th><td><strong>{leg.alpn ?? 'none'}</strong></td></tr>
              <tr><th scope="row">Version</th><td>{leg.version ?? ''}</td></tr>
              <tr><th scope="row">Cipher</th><td>{leg.cipher ?? ''}</td></tr>
              <tr><th scope="row">Handshake</th><td>{formatMs(leg.handshakeMs)}</td></tr>
            </tbody>
          </table>
          {leg.certificates.length ? (
            <details className="certs" open>
              <summary>Certificate chain ({leg.certificates.length})</summary>
              {leg.certificates.map((cert, i) => (
                <table className="kv cert" key={cert.fingerprint256 || i}>
                  <tbody>
                    <tr><th scope="row">Subject</th><td>{cert.subject}</td></tr>
                    <tr><th scope="row">Issuer</th><td>{cert.issuer}</td></tr>
                    {cert.sans.length ? <tr><th scope="row">Names</th><td>{cert.sans.join(', ')}</td></tr> : null}
                    <tr>
                      <th scope="row">Valid</th>
                      <td>
                        {cert.validFrom} – {cert.validTo}
                        {validityProblem(cert, at) ? <span className="code-chip warn">{validityProblem(cert, at)}</span> : null}
                      </td>
                    </tr>
                    <tr><th scope="row">SHA-256</th><td className="break mono">{cert.fingerprint256}</td></tr>
                  </tbody>
                </table>
              ))}
            </details>
          ) : null}
        </>
      )}
    </div>
  );
}
