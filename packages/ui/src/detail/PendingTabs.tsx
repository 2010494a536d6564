// Tabs whose data arrives with later capture features. They explain what will be here rather than
// showing an empty list that looks like a bug.
import type { Capabilities, ExchangeDetailJson } from '../../../core/src/inspector/protocol.js';

export function WebSocketTab({ exchange, capabilities }: { exchange: ExchangeDetailJson; capabilities: Capabilities | null }) {
  return (
    <div className="empty small-empty">
      <h3>No WebSocket messages captured</h3>
      <p>
        {exchange.status === 101 || (exchange.status === 200 && exchange.websocket)
          ? 'The handshake succeeded. '
          : exchange.status === null
            ? 'The handshake has not been answered. '
            : `The handshake was answered with ${exchange.status}, so no WebSocket was opened. `}
        {capabilities?.wsMessages
          ? 'This capture file can hold WebSocket messages; this inspector version does not list them yet.'
          : 'This hopscope version does not record WebSocket messages yet.'}
      </p>
    </div>
  );
}

export function FramesTab({ capabilities }: { capabilities: Capabilities | null }) {
  return (
    <div className="empty small-empty">
      <h3>No HTTP/2 frames captured</h3>
      <p>
        {capabilities?.h2Frames
          ? 'This capture file can hold HTTP/2 frames; this inspector version does not list them yet.'
          : 'This hopscope version does not record HTTP/2 frames yet. The exchange itself (headers and bodies) is shown in the other tabs.'}
      </p>
    </div>
  );
}
