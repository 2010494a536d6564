// "Resend" and "Edit…" in the detail pane: hopscope sends the captured request again through its
// proxy port (POST /api/exchanges/:id/replay), as captured or as edited here, and the new exchange
// is selected once it is in.
import { useEffect, useState } from 'react';
import type { ExchangeDetailJson, ReplayEdits } from '../../../core/src/inspector/protocol.js';
import { replayExchange } from '../api/rest.js';
import { editsOf, formOf, type ResendForm } from './resend-form.js';

/** Why this exchange cannot be resent, or null (the server checks again). */
function cannotResend(exchange: ExchangeDetailJson): string | null {
  if (exchange.websocket) return 'A WebSocket cannot be resent';
  if (exchange.method === 'CONNECT' || exchange.protocol === 'SOCKS5') return 'A tunnel cannot be resent';
  return null;
}

type State = { kind: 'idle' | 'sending' } | { kind: 'failed'; message: string };

export function ResendButton({ exchange, onSent }: { exchange: ExchangeDetailJson; onSent(id: number): void }) {
  const [state, setState] = useState<State>({ kind: 'idle' });
  const [form, setForm] = useState<ResendForm | null>(null);
  useEffect(() => {
    setState({ kind: 'idle' });
    setForm(null);
  }, [exchange.id]);
  const refusal = cannotResend(exchange) ?? (exchange.requestBody?.truncated ? 'The request body was not stored whole: edit it to resend' : null);
  const send = (edits: ReplayEdits) => {
    setState({ kind: 'sending' });
    replayExchange(exchange.id, edits).then(
      (answer) => {
        setState({ kind: 'idle' });
        setForm(null);
        if (answer.exchangeId !== null) onSent(answer.exchangeId);
      },
      (err: Error) => setState({ kind: 'failed', message: err.message }),
    );
  };
  const sending = state.kind === 'sending';
  return (
    <>
      <button className="resend" onClick={() => send({})} disabled={refusal !== null || sending} title={refusal ?? 'Send this request again through hopscope (it is captured as a new exchange)'}>
        {sending && !form ? 'Sending…' : 'Resend'}
      </button>
      <button className="resend" onClick={() => setForm(form ? null : formOf(exchange))} disabled={cannotResend(exchange) !== null} aria-expanded={form !== null}>
        Edit…
      </button>
      {form ? <ResendEditor form={form} onChange={setForm} onSend={send} onCancel={() => setForm(null)} sending={sending} /> : null}
      {state.kind === 'failed' ? (
        <p className="notice error resend-error" role="alert">
          {state.message}
        </p>
      ) : null}
    </>
  );
}

interface EditorProps {
  form: ResendForm;
  onChange(form: ResendForm): void;
  onSend(edits: ReplayEdits): void;
  onCancel(): void;
  sending: boolean;
}

function ResendEditor({ form, onChange, onSend, onCancel, sending }: EditorProps) {
  const [error, setError] = useState<string | null>(null);
  const submit = () => {
    const parsed = editsOf(form);
    if ('error' in parsed) return setError(parsed.error);
    setError(null);
    onSend(parsed.edits);
  };
  return (
    <div className="resend-editor" role="dialog" aria-label="Edit and resend">
      <div className="resend-line">
        <input aria-label="Method" className="mono method-input" value={form.method} onChange={(e) => onChange({ ...form, method: e.target.value })} />
        <input aria-label="URL" className="mono" value={form.url} onChange={(e) => onChange({ ...form, url: e.target.value })} />
      </div>
      <textarea aria-label="Headers" className="mono" rows={8} value={form.headers} onChange={(e) => onChange({ ...form, headers: e.target.value })} />
      {form.body === null ? (
        <p className="muted small">The body is binary, encoded or too large to edit here: it goes unchanged.</p>
      ) : (
        <textarea aria-label="Body" className="mono" rows={6} value={form.body} onChange={(e) => onChange({ ...form, body: e.target.value })} />
      )}
      <p className="muted small">Content-Length is set to the body's length.</p>
      {error ? <p className="notice error">{error}</p> : null}
      <div className="resend-line">
        <button onClick={submit} disabled={sending}>
          {sending ? 'Sending…' : 'Send'}
        </button>
        <button onClick={onCancel}>Cancel</button>
      </div>
    </div>
  );
}
