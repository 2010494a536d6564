// The Request or the Response: start line, headers (parsed and raw), body.
import type { ExchangeDetailJson } from '../../../core/src/inspector/protocol.js';
import { BodyView } from './BodyView.js';
import { HeadersView } from './HeadersView.js';

export function MessageTab({ exchange, side }: { exchange: ExchangeDetailJson; side: 'request' | 'response' }) {
  const h2 = exchange.protocol === 'h2' || exchange.protocol === 'h2c';
  if (side === 'request') {
    const startLine = h2 ? `:method ${exchange.method}  :path ${exchange.target}  (${exchange.protocol})` : `${exchange.method} ${exchange.target} ${exchange.protocol}`;
    return (
      <div className="message">
        <HeadersView startLine={startLine} headers={exchange.requestHeaders} trailers={exchange.requestTrailers} binaryFraming={h2} />
        <section>
          <h3>Body</h3>
          <BodyView key={`${exchange.id}-rq`} exchangeId={exchange.id} side="request" body={exchange.requestBody} headers={exchange.requestHeaders} />
        </section>
      </div>
    );
  }
  if (exchange.status === null) {
    return (
      <p className="muted">
        {exchange.state === 'failed' ? `No response: ${exchange.error?.message ?? exchange.errorReason}` : 'Waiting for the response…'}
      </p>
    );
  }
  const protocol = exchange.responseProtocol ?? exchange.protocol;
  const startLine = protocol.startsWith('h2') ? `:status ${exchange.status}  (${protocol})` : `${protocol} ${exchange.status} ${exchange.statusText ?? ''}`;
  return (
    <div className="message">
      <HeadersView startLine={startLine} headers={exchange.responseHeaders} trailers={exchange.responseTrailers} binaryFraming={protocol.startsWith('h2')} />
      <section>
        <h3>Body</h3>
        <BodyView key={`${exchange.id}-rs`} exchangeId={exchange.id} side="response" body={exchange.responseBody} headers={exchange.responseHeaders} />
      </section>
    </div>
  );
}
