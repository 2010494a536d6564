// A waterfall of one exchange: DNS, connect, TLS (when this exchange paid for them), sending,
// waiting for the first response byte, and downloading.
import type { ExchangeDetailJson } from '../../../core/src/inspector/protocol.js';
import { formatMs } from '../format.js';

interface Phase {
  label: string;
  ms: number;
  className: string;
}

export function timingPhases(e: ExchangeDetailJson): Phase[] {
  const phases: Phase[] = [];
  if (e.dnsMs !== null) phases.push({ label: 'DNS lookup', ms: e.dnsMs, className: 'dns' });
  if (e.connectMs !== null) phases.push({ label: 'Connect', ms: e.connectMs, className: 'connect' });
  if (e.tlsMs !== null) phases.push({ label: 'TLS handshake', ms: e.tlsMs, className: 'tls' });
  const sent = e.requestEndAt ?? e.startedAt;
  if (e.requestEndAt !== null) phases.push({ label: 'Sending request', ms: e.requestEndAt - e.startedAt, className: 'send' });
  if (e.responseStartAt !== null) phases.push({ label: 'Waiting (first byte)', ms: Math.max(0, e.responseStartAt - sent), className: 'wait' });
  if (e.responseStartAt !== null && e.completedAt !== null) {
    phases.push({ label: 'Receiving response', ms: Math.max(0, e.completedAt - e.responseStartAt), className: 'receive' });
  }
  return phases;
}

export function TimingTab({ exchange }: { exchange: ExchangeDetailJson }) {
  const phases = timingPhases(exchange);
  const total = phases.reduce((s, p) => s + p.ms, 0);
  if (phases.length === 0) return <p className="muted">No timing measured yet.</p>;
  let offset = 0;
  return (
    <div className="timing">
      <table className="waterfall">
        <tbody>
          {phases.map((p) => {
            const left = total > 0 ? (offset / total) * 100 : 0;
            const width = total > 0 ? Math.max((p.ms / total) * 100, 0.5) : 0;
            offset += p.ms;
            return (
              <tr key={p.label}>
                <th scope="row">{p.label}</th>
                <td className="bar-cell">
                  <div className={`bar ${p.className}`} style={{ marginLeft: `${left}%`, width: `${width}%` }} />
                </td>
                <td className="right">{formatMs(p.ms)}</td>
              </tr>
            );
          })}
          <tr className="total">
            <th scope="row">Total</th>
            <td />
            <td className="right">{formatMs(total)}</td>
          </tr>
        </tbody>
      </table>
      <p className="muted small">
        DNS, connect and TLS appear when this exchange opened the upstream connection; a reused connection has none.
      </p>
    </div>
  );
}
