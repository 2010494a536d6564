// The requests that set up a tunnel or a WebSocket: the CONNECT the client sent, and for a
// WebSocket the Upgrade (HTTP/1.1) or extended CONNECT (HTTP/2) request and its answer.
import type { ExchangeDetailJson } from '../../../core/src/inspector/protocol.js';
import { fetchConnection } from '../api/rest.js';
import { useResource } from './use-resource.js';

const lines = (start: string, headers: Array<[string, string]> | null) => [start, ...(headers ?? []).map(([n, v]) => `${n}: ${v}`)].join('\n');

export function HandshakeTab({ exchange }: { exchange: ExchangeDetailJson }) {
  const conn = useResource(`${exchange.connectionId}`, (signal) => fetchConnection(exchange.connectionId, signal));
  const h2 = exchange.protocol === 'h2' || exchange.protocol === 'h2c';
  return (
    <div className="handshake">
      <section>
        <h3>Tunnel</h3>
        {conn.state === 'ready' ? (
          conn.value.tunnel ? (
            <pre className="code">{lines(`CONNECT ${conn.value.tunnel.target} HTTP/1.1`, conn.value.tunnel.headers)}</pre>
          ) : (
            <p className="muted">This exchange did not travel through a CONNECT tunnel.</p>
          )
        ) : (
          <p className="muted">{conn.state === 'error' ? conn.message : 'Loading…'}</p>
        )}
      </section>
      {exchange.websocket ? (
        <section>
          <h3>{h2 ? 'WebSocket over HTTP/2 (extended CONNECT, RFC 8441)' : 'WebSocket upgrade'}</h3>
          <pre className="code">
            {lines(h2 ? `:method ${exchange.method}  :path ${exchange.target}` : `${exchange.method} ${exchange.target} ${exchange.protocol}`, exchange.requestHeaders)}
          </pre>
          {exchange.status !== null ? (
            <pre className="code">{lines(h2 ? `:status ${exchange.status}` : `${exchange.responseProtocol ?? exchange.protocol} ${exchange.status} ${exchange.statusText ?? ''}`, exchange.responseHeaders)}</pre>
          ) : (
            <p className="muted">No answer to the handshake yet.</p>
          )}
        </section>
      ) : null}
    </div>
  );
}
