// WebSocket messages of a handshake exchange, in the form Chrome writes as `_webSocketMessages`.
import type Database from 'better-sqlite3';
import type { ExchangeDetail } from '../store/row-types.js';
import type { HarWebSocketMessage } from './har-types.js';
import { headerValue } from './har-content.js';

/** One WebSocket message as captured, before it becomes HAR. */
export interface CapturedWsMessage {
  /** True for a message the client sent. */
  fromClient: boolean;
  /** Epoch milliseconds. */
  at: number;
  opcode: number;
  payload: Buffer;
}

/** A 101 that switched to WebSocket (HTTP/1.1 Upgrade) or a 2xx to an extended CONNECT (RFC 8441). */
export function isWebSocketHandshake(ex: Pick<ExchangeDetail, 'status' | 'method' | 'requestHeaders' | 'responseHeaders'>): boolean {
  if (ex.status === 101) return (headerValue(ex.responseHeaders, 'upgrade') ?? '').toLowerCase().includes('websocket');
  return ex.method === 'CONNECT' && ex.status !== null && ex.status >= 200 && ex.status < 300
    && (headerValue(ex.requestHeaders, ':protocol') ?? '').toLowerCase() === 'websocket';
}

/**
 * The messages of one WebSocket handshake exchange, oldest first, or null when the capture has
 * none to give. The store has no `ws_messages` table yet (it arrives with the WebSocket tap):
 * this is the one place that will read it, through the store's query API.
 */
export function readWebSocketMessages(_db: Database.Database, _exchangeId: number): CapturedWsMessage[] | null {
  return null;
}

export function toHarWebSocketMessage(message: CapturedWsMessage): HarWebSocketMessage {
  return {
    type: message.fromClient ? 'send' : 'receive',
    time: message.at / 1000,
    opcode: message.opcode,
    data: message.opcode === 1 ? message.payload.toString('utf8') : message.payload.toString('base64'),
  };
}
