// The selected exchange: fetched when the selection moves (the previous request is aborted) and
// again when the live row changes, shown in tabs.
import { useEffect, useState } from 'react';
import type { ExchangeRow, InfoResponse } from '../../../core/src/inspector/protocol.js';
import { fetchExchange } from '../api/rest.js';
import { ConnectionTab } from './ConnectionTab.js';
import { CopyAsCurl } from './CopyAsCurl.js';
import { HandshakeTab } from './HandshakeTab.js';
import { MessageTab } from './MessageTab.js';
import { OverviewTab } from './OverviewTab.js';
import { ResendButton } from './ResendButton.js';
import { FramesTab } from './FramesTab.js';
import { TimingTab } from './TimingTab.js';
import { useResource } from './use-resource.js';
import { WebSocketTab } from './WebSocketTab.js';

export type TabId = 'overview' | 'request' | 'response' | 'timing' | 'connection' | 'handshake' | 'websocket' | 'frames';

const LABELS: Record<TabId, string> = {
  overview: 'Overview',
  request: 'Request',
  response: 'Response',
  timing: 'Timing',
  connection: 'Connection',
  handshake: 'Handshake',
  websocket: 'WebSocket',
  frames: 'HTTP/2 frames',
};

interface Props {
  id: number;
  row: ExchangeRow | undefined;
  /** Changes when the exchange's connection changed (Session.connectionVersion). */
  connectionVersion: number;
  info: InfoResponse | null;
  onClose(): void;
  /** Moves the selection (Resend selects the exchange it made). */
  onSelect(id: number): void;
}

export function DetailPane({ id, row, connectionVersion, info, onClose, onSelect }: Props) {
  const [tab, setTab] = useState<TabId>('overview');
  // Refetch when the live row changes (response arrived, completed), keyed by its sequence number.
  const res = useResource(`${id}@${row?.lastSeq ?? 0}`, (signal) => fetchExchange(id, signal));
  const exchange = res.state === 'ready' ? res.value : null;
  const tabs: TabId[] = ['overview', 'request', 'response', 'timing', 'connection'];
  const h2 = row ? row.protocol === 'h2' || row.protocol === 'h2c' : false;
  if (row?.websocket || exchange?.websocket) tabs.push('handshake', 'websocket');
  else if (row?.scheme === 'https') tabs.push('handshake');
  if (h2) tabs.push('frames');
  const current = tabs.includes(tab) ? tab : 'overview';

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape' && !(e.target instanceof HTMLInputElement)) onClose();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [onClose]);

  return (
    <aside className="detail" aria-label={`Exchange ${id}`}>
      <div className="detail-head">
        <div className="detail-title" title={row?.url}>
          <span className="method">{row?.method}</span> <span className="break">{row?.url ?? `#${id}`}</span>
        </div>
        {exchange && info?.replay ? <ResendButton exchange={exchange} onSent={onSelect} /> : null}
        {exchange ? <CopyAsCurl exchange={exchange} /> : null}
        <button className="icon-button" aria-label="Close details" onClick={onClose}>
          ✕
        </button>
      </div>
      <div className="tabs" role="tablist" aria-label="Exchange details">
        {tabs.map((t) => (
          <button key={t} role="tab" aria-selected={current === t} className={current === t ? 'on' : ''} onClick={() => setTab(t)}>
            {LABELS[t]}
          </button>
        ))}
      </div>
      <div className="tab-body" role="tabpanel">
        {res.state === 'error' ? <p className="notice error">Could not load exchange {id}: {res.message}</p> : null}
        {res.state === 'loading' ? <p className="muted">Loading…</p> : null}
        {exchange ? (
          <>
            {current === 'overview' ? <OverviewTab exchange={exchange} row={row} /> : null}
            {current === 'request' ? <MessageTab exchange={exchange} side="request" /> : null}
            {current === 'response' ? <MessageTab exchange={exchange} side="response" /> : null}
            {current === 'timing' ? <TimingTab exchange={exchange} /> : null}
            {current === 'connection' ? <ConnectionTab connectionId={exchange.connectionId} version={`${row?.lastSeq ?? 0}.${connectionVersion}`} info={info} /> : null}
            {current === 'handshake' ? <HandshakeTab exchange={exchange} /> : null}
            {current === 'websocket' ? <WebSocketTab exchange={exchange} capabilities={info?.capabilities ?? null} live={row} /> : null}
            {current === 'frames' ? <FramesTab exchange={exchange} capabilities={info?.capabilities ?? null} live={`${row?.lastSeq ?? 0}.${connectionVersion}`} /> : null}
          </>
        ) : null}
      </div>
    </aside>
  );
}
