// WebSocket messages of a handshake exchange, in the form Chrome writes as `_webSocketMessages`,
// read page by page so that a long-lived socket never sits in memory whole.
import type Database from 'better-sqlite3';
import { isWebSocketRequest } from '../filter/index.js';
import { getWebSocket, listWsMessages } from '../store/queries.js';
import type { ExchangeDetail, WebSocketRow, WsMessageRow } from '../store/row-types.js';
import type { HarWebSocket, HarWebSocketMessage } from './har-types.js';

const PAGE = 500;

/** The WebSocket an exchange opened: the store's row, or null with only the handshake to go by. */
export interface WebSocketInfo {
  row: WebSocketRow | null;
}

/**
 * Whether the exchange opened a WebSocket: a successful handshake (101 to an HTTP/1 Upgrade, 2xx
 * to an HTTP/2 extended CONNECT), with the store's row of the socket when it recorded one.
 */
export function webSocketOf(db: Database.Database, ex: ExchangeDetail): WebSocketInfo | null {
  if (ex.status === null) return null;
  const h2 = ex.protocol === 'h2' || ex.protocol === 'h2c';
  const switched = h2 ? ex.method === 'CONNECT' && ex.status >= 200 && ex.status < 300 : ex.status === 101;
  // Only a switched handshake can have a row; most exchanges stop here without a query.
  if (!switched) return null;
  const row = getWebSocket(db, ex.id);
  if (row) return { row };
  return isWebSocketRequest(ex.method, ex.protocol, ex.requestHeaders) ? { row: null } : null;
}

/** The messages of a WebSocket in the order they were decoded, a page at a time. */
export function* webSocketMessagePages(db: Database.Database, exchangeId: number): Generator<HarWebSocketMessage[]> {
  let afterId = 0;
  for (;;) {
    const rows = listWsMessages(db, exchangeId, { afterId, limit: PAGE });
    if (rows.length === 0) return;
    yield rows.map(toHarWebSocketMessage);
    afterId = rows[rows.length - 1].id;
  }
}

type MessageInput = Pick<WsMessageRow, 'side' | 'sentAt' | 'opcode' | 'data' | 'truncated' | 'utf8Valid'>;

/** Text messages as text, everything else (binary, close, ping, pong) as base64 of the payload. */
export function toHarWebSocketMessage(message: MessageInput): HarWebSocketMessage {
  const data = message.data ?? Buffer.alloc(0);
  const text = message.opcode === 1 && message.utf8Valid !== false;
  const har: HarWebSocketMessage = {
    type: message.side === 'client' ? 'send' : 'receive',
    time: message.sentAt / 1000,
    opcode: message.opcode,
    data: text ? data.toString('utf8') : data.toString('base64'),
  };
  if (message.truncated) har._truncated = true;
  return har;
}

/** hopscope's summary of the socket (`_webSocket`): how it was set up and how it ended. */
export function harWebSocket(row: WebSocketRow): HarWebSocket {
  return {
    subprotocol: row.subprotocol,
    extensions: row.extensions,
    closedBy: row.closedBy,
    closeCode: row.closeCode,
    closeReason: row.closeReason,
    clean: row.clean,
    messagesFromClient: row.messagesFromClient,
    messagesFromServer: row.messagesFromServer,
    error: row.error,
  };
}
