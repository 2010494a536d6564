// The "Resend" button of the detail pane: hopscope sends the captured request again through its
// proxy port (POST /api/exchanges/:id/replay), and the new exchange is selected once it is in.
import { useEffect, useState } from 'react';
import type { ExchangeDetailJson } from '../../../core/src/inspector/protocol.js';
import { replayExchange } from '../api/rest.js';

/** Why this exchange cannot be resent, or null (the server checks again). */
function cannotResend(exchange: ExchangeDetailJson): string | null {
  if (exchange.websocket) return 'A WebSocket cannot be resent';
  if (exchange.method === 'CONNECT' || exchange.protocol === 'SOCKS5') return 'A tunnel cannot be resent';
  if (exchange.requestBody?.truncated) return 'The request body was not stored whole';
  return null;
}

export function ResendButton({ exchange, onSent }: { exchange: ExchangeDetailJson; onSent(id: number): void }) {
  const [state, setState] = useState<{ kind: 'idle' | 'sending' } | { kind: 'failed'; message: string }>({ kind: 'idle' });
  useEffect(() => setState({ kind: 'idle' }), [exchange.id]);
  const refusal = cannotResend(exchange);
  const resend = () => {
    setState({ kind: 'sending' });
    replayExchange(exchange.id).then(
      (answer) => {
        setState({ kind: 'idle' });
        if (answer.exchangeId !== null) onSent(answer.exchangeId);
      },
      (err: Error) => setState({ kind: 'failed', message: err.message }),
    );
  };
  return (
    <>
      <button
        className="resend"
        onClick={resend}
        disabled={refusal !== null || state.kind === 'sending'}
        title={refusal ?? 'Send this request again through hopscope (it is captured as a new exchange)'}
      >
        {state.kind === 'sending' ? 'Sending…' : 'Resend'}
      </button>
      {state.kind === 'failed' ? (
        <p className="notice error resend-error" role="alert">
          {state.message}
        </p>
      ) : null}
    </>
  );
}
