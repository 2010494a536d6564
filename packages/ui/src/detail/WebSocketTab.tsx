// The WebSocket opened by this handshake: its messages live (direction, time, type, size, preview,
// close code), and for a selected message the full payload and its frames as sent.
import { useState } from 'react';
import type { Capabilities, ExchangeDetailJson, WsMessageJson } from '../../../core/src/inspector/protocol.js';
import { fetchWebSocket, fetchWsMessage } from '../api/rest.js';
import { formatBytes, formatMs } from '../format.js';
import { hexDump, tryJson } from './body-decode.js';
import { useLiveResource } from './use-live-resource.js';
import { useResource } from './use-resource.js';

const OPCODES: Record<number, string> = { 0: 'continuation', 1: 'text', 2: 'binary', 8: 'close', 9: 'ping', 10: 'pong' };

function payloadBytes(data: NonNullable<WsMessageJson['data']>): Uint8Array {
  if (data.encoding === 'utf8') return new TextEncoder().encode(data.text);
  const bin = atob(data.text);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function preview(m: WsMessageJson): string {
  if (m.opcode === 8) return m.closeCode === null ? 'close' : `${m.closeCode}${m.closeReason ? ` ${m.closeReason}` : ''}`;
  if (!m.data) return '';
  if (m.data.encoding === 'utf8') return m.data.text.slice(0, 300);
  return Array.from(payloadBytes(m.data).subarray(0, 24), (b) => b.toString(16).padStart(2, '0')).join(' ');
}

export function WebSocketTab({ exchange, capabilities, live }: { exchange: ExchangeDetailJson; capabilities: Capabilities | null; live: unknown }) {
  const [selected, setSelected] = useState<number | null>(null);
  const enabled = capabilities?.wsMessages ?? false;
  // `live` is the exchange's live row: the hub pushes it again whenever more of the WebSocket is committed.
  const state = useLiveResource(`${exchange.id}:${enabled}`, (signal) => (enabled ? fetchWebSocket(exchange.id, signal) : Promise.resolve(null)), live);
  if (!enabled) {
    return (
      <div className="empty small-empty">
        <h3>No WebSocket messages captured</h3>
        <p>This capture file has no WebSocket message tables (it was written by an older hopscope).</p>
      </div>
    );
  }
  if (state.error) return <p className="notice error">{state.error}</p>;
  if (!state.value) return <p className="muted">Loading…</p>;
  const { websocket, messages } = state.value;
  if (!websocket) {
    return (
      <div className="empty small-empty">
        <h3>No WebSocket messages captured</h3>
        <p>
          {exchange.status === null
            ? 'The handshake has not been answered yet.'
            : `The handshake was answered with ${exchange.status}${exchange.status === 101 || exchange.status === 200 ? '; no messages are recorded yet.' : ', so no WebSocket was opened.'}`}
        </p>
      </div>
    );
  }
  return (
    <div className="websocket">
      <p className="muted small">
        {websocket.subprotocol ? `subprotocol ${websocket.subprotocol} · ` : ''}
        {websocket.deflate ? 'permessage-deflate · ' : ''}
        {messages.length} messages
        {websocket.closedAt !== null
          ? ` · closed${websocket.closedBy ? ` by the ${websocket.closedBy}` : ''}${websocket.closeCode !== null ? ` with ${websocket.closeCode}${websocket.closeReason ? ` "${websocket.closeReason}"` : ''}` : ''}${websocket.clean === false ? ' (not cleanly)' : ''}`
          : ' · open'}
      </p>
      {websocket.error ? <p className="notice error">{websocket.error.reason}: {websocket.error.message}</p> : null}
      <table className="grid-table ws-messages">
        <thead>
          <tr>
            <th />
            <th>Time</th>
            <th>Type</th>
            <th className="right">Size</th>
            <th>Data</th>
          </tr>
        </thead>
        <tbody>
          {messages.map((m) => (
            <tr key={m.id} className={`${m.side}${selected === m.id ? ' selected' : ''}`} onClick={() => setSelected(selected === m.id ? null : m.id)}>
              <td className={`dir ${m.side}`} title={m.side === 'client' ? 'sent by the client' : 'sent by the server'}>
                {m.side === 'client' ? '↑' : '↓'}
              </td>
              <td className="mono">{formatMs(m.sentAt - websocket.openedAt)}</td>
              <td>
                {OPCODES[m.opcode] ?? `opcode ${m.opcode}`}
                {m.compressed ? <span className="tag">deflate</span> : null}
                {m.frames > 1 ? <span className="tag">{m.frames} frames</span> : null}
              </td>
              <td className="right mono">{formatBytes(m.decodedSize)}</td>
              <td className="mono preview">{preview(m)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {selected !== null ? <MessageDetail id={selected} /> : null}
    </div>
  );
}

function MessageDetail({ id }: { id: number }) {
  const res = useResource(String(id), (signal) => fetchWsMessage(id, signal));
  if (res.state !== 'ready') return <p className="muted">{res.state === 'error' ? res.message : 'Loading…'}</p>;
  const { message, frames } = res.value;
  const data = message.data;
  const json = data?.encoding === 'utf8' ? tryJson(data.text) : undefined;
  return (
    <section className="ws-message">
      <h3>Message {message.messageIndex + 1}</h3>
      {message.truncated ? <p className="notice warn">Truncated: only part of the payload was stored.</p> : null}
      {data === null ? (
        <p className="muted">No payload.</p>
      ) : json !== undefined ? (
        <pre className="code json">{JSON.stringify(json, null, 2)}</pre>
      ) : data.encoding === 'utf8' ? (
        <pre className="code">{data.text}</pre>
      ) : (
        <pre className="code hex">{hexDump(payloadBytes(data))}</pre>
      )}
      <h3>Frames</h3>
      <table className="grid-table">
        <thead>
          <tr>
            <th>#</th>
            <th>FIN</th>
            <th>RSV</th>
            <th>Opcode</th>
            <th>Mask</th>
            <th className="right">Payload</th>
            <th className="right">On the wire</th>
          </tr>
        </thead>
        <tbody>
          {frames.map((f) => (
            <tr key={f.id}>
              <td>{f.frameIndex + 1}</td>
              <td>{f.fin ? '1' : '0'}</td>
              <td className="mono">{`${+f.rsv1}${+f.rsv2}${+f.rsv3}`}</td>
              <td>{OPCODES[f.opcode] ?? f.opcode}</td>
              <td className="mono">{f.maskKey ?? '—'}</td>
              <td className="right mono">{formatBytes(f.payloadLength)}</td>
              <td className="right mono">{formatBytes(f.wireSize)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
