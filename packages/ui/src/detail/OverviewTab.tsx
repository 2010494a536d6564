import type { ExchangeDetailJson, ExchangeRow } from '../../../core/src/inspector/protocol.js';
import { alpnLabel, durationOf, formatBytes, formatDateTime, formatMs, protocolLabel, statusClass } from '../format.js';

export function OverviewTab({ exchange, row }: { exchange: ExchangeDetailJson; row: ExchangeRow | undefined }) {
  const items: Array<[string, React.ReactNode]> = [
    ['URL', <span className="break">{exchange.url}</span>],
    ...(exchange.upstreamUrl
      ? ([['Sent upstream to', <span className="break">{exchange.upstreamUrl}</span>]] as Array<[string, React.ReactNode]>)
      : []),
    ['Method', exchange.method],
    [
      'Status',
      exchange.status === null ? (
        exchange.state
      ) : (
        <span className={`status status-${statusClass(exchange)}`}>
          {exchange.status} {exchange.statusText}
        </span>
      ),
    ],
    ['Protocol', row ? protocolLabel(row) : exchange.protocol],
    ['ALPN (client | upstream)', row ? alpnLabel(row) || 'none' : ''],
    ['Remote address', exchange.remoteAddress ? `${exchange.remoteAddress}:${exchange.remotePort}` : ''],
    ['Started', formatDateTime(exchange.startedAt)],
    ['Time taken', formatMs(durationOf(exchange))],
    ['Request body', exchange.requestBodySize === null ? '' : formatBytes(exchange.requestBodySize)],
    ['Response body', exchange.responseBodySize === null ? '' : formatBytes(exchange.responseBodySize)],
    ['Content type', exchange.responseContentType ?? ''],
    ['Connection', `#${exchange.connectionId}${exchange.streamId !== null ? `, stream ${exchange.streamId}` : ''}`],
    ['State', exchange.state],
  ];
  return (
    <div className="overview">
      {exchange.error ? (
        <p className="notice error">
          <strong>{exchange.error.reason}</strong>: {exchange.error.message}
          {exchange.error.code ? <code className="code-chip">{exchange.error.code}</code> : null}
        </p>
      ) : null}
      {row?.tlsError ? <p className="notice warn">A TLS handshake on this connection failed: see the Connection tab.</p> : null}
      <table className="kv">
        <tbody>
          {items
            .filter(([, v]) => v !== '' && v !== null)
            .map(([k, v]) => (
              <tr key={k}>
                <th scope="row">{k}</th>
                <td>{v}</td>
              </tr>
            ))}
        </tbody>
      </table>
    </div>
  );
}
