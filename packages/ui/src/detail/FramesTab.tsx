// The HTTP/2 frame timeline of the exchange's connection, both directions, this stream or all;
// HEADERS and PUSH_PROMISE expand to the decoded header list with each field's HPACK representation.
import { Fragment, useState } from 'react';
import type { Capabilities, ExchangeDetailJson } from '../../../core/src/inspector/protocol.js';
import type { H2FrameRow } from '../../../core/src/store/row-types.js';
import { fetchH2Frames } from '../api/rest.js';
import { formatBytes, formatMs } from '../format.js';
import { useLiveResource } from './use-live-resource.js';

function summary(f: H2FrameRow): string {
  const d = f.details;
  if (f.summary) return `${f.frameCount} more ${f.typeName} frames (past the per-connection cap)`;
  if (!d) return '';
  if (d.headerBlock) return `${d.headerBlock.fields.length} fields, ${formatBytes(d.headerBlock.size)} encoded`;
  if (d.settings) return d.settings.map((s) => `${s.name}=${s.value}`).join(', ') || 'empty';
  if (d.increment !== undefined) return `+${d.increment}`;
  if (d.errorName) return `${d.errorName}${d.lastStreamId !== undefined ? ` last stream ${d.lastStreamId}` : ''}${d.debugData ? ` "${d.debugData}"` : ''}`;
  if (d.pingData) return d.pingData;
  if (d.promisedStreamId !== undefined) return `promised stream ${d.promisedStreamId}`;
  if (d.fragmentLength !== undefined) return `${formatBytes(d.fragmentLength)} of header block`;
  return d.payloadHex ?? '';
}

export function FramesTab({ exchange, capabilities, live }: { exchange: ExchangeDetailJson; capabilities: Capabilities | null; live: string }) {
  const [wholeConnection, setWholeConnection] = useState(false);
  const [open, setOpen] = useState<number | null>(null);
  const enabled = capabilities?.h2Frames ?? false;
  const streamId = wholeConnection ? null : exchange.streamId;
  // `live` changes whenever the hub pushes this stream's row again (new frames of the stream) or
  // says the connection changed (connection-level frames: SETTINGS, PING, GOAWAY, …).
  const state = useLiveResource(
    `${exchange.connectionId}:${streamId}:${enabled}`,
    (signal) => (enabled ? fetchH2Frames(exchange.connectionId, streamId, signal) : Promise.resolve(null)),
    live,
  );
  if (!enabled) {
    return (
      <div className="empty small-empty">
        <h3>No HTTP/2 frames captured</h3>
        <p>This capture file has no HTTP/2 frame table (it was written by an older hopscope).</p>
      </div>
    );
  }
  if (state.error) return <p className="notice error">{state.error}</p>;
  if (!state.value) return <p className="muted">Loading…</p>;
  const frames = state.value.frames;
  const t0 = frames[0]?.seenAt ?? 0;
  return (
    <div className="frames">
      <div className="section-bar">
        <span className="muted small">
          {frames.length}
          {state.value.hasMore ? '+' : ''} frames {wholeConnection ? `on connection #${exchange.connectionId}` : `on stream ${exchange.streamId}`}
        </span>
        <div className="segmented" role="tablist" aria-label="Frames shown">
          <button role="tab" aria-selected={!wholeConnection} className={!wholeConnection ? 'on' : ''} onClick={() => setWholeConnection(false)}>
            This stream
          </button>
          <button role="tab" aria-selected={wholeConnection} className={wholeConnection ? 'on' : ''} onClick={() => setWholeConnection(true)}>
            Connection
          </button>
        </div>
      </div>
      {frames.length === 0 ? <p className="muted">No frames recorded {wholeConnection ? 'on this connection' : 'on this stream'}.</p> : null}
      <table className="grid-table h2-frames">
        <thead>
          <tr>
            <th />
            <th>Time</th>
            <th className="right">Stream</th>
            <th>Type</th>
            <th>Flags</th>
            <th className="right">Length</th>
            <th>Details</th>
          </tr>
        </thead>
        <tbody>
          {frames.map((f) => {
            const block = f.details?.headerBlock;
            return (
              <Fragment key={f.id}>
                <tr className={`${f.side}${block ? ' expandable' : ''}${open === f.id ? ' selected' : ''}`} onClick={() => block && setOpen(open === f.id ? null : f.id)}>
                  <td className={`dir ${f.side}`} title={f.side === 'client' ? 'client → server' : 'server → client'}>
                    {f.side === 'client' ? '→' : '←'}
                  </td>
                  <td className="mono">{formatMs(f.seenAt - t0)}</td>
                  <td className="right mono">{f.streamId ?? '*'}</td>
                  <td className="h2-type">{f.typeName}</td>
                  <td className="mono small">{f.flagNames.join(' ')}</td>
                  <td className="right mono">{formatBytes(f.length)}</td>
                  <td className="preview">{summary(f)}</td>
                </tr>
                {block && open === f.id ? (
                  <tr className="frame-headers">
                    <td />
                    <td colSpan={6}>
                      <table className="kv headers-table">
                        <tbody>
                          {block.fields.map((h, i) => (
                            <tr key={i}>
                              <th scope="row">{h.name}</th>
                              <td>
                                {h.value} <span className="tag">{h.representation}{h.huffman ? ', huffman' : ''}</span>
                              </td>
                            </tr>
                          ))}
                        </tbody>
                      </table>
                    </td>
                  </tr>
                ) : null}
              </Fragment>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
