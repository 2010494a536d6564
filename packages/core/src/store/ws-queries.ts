// Reading WebSockets from a capture file: the socket's own row, its messages, a message's frames.
// Re-exported by queries.ts, the one reading API.
import type Database from 'better-sqlite3';
import type { Failure, FailureReason, Side } from '../capture/events.js';
import type { ListWsMessagesOptions, WebSocketRow, WsFrameRow, WsMessageRow } from './row-types.js';
import { prepared } from './prepared.js';

type Row = Record<string, unknown>;
type Db = Database.Database;

const MESSAGE_COLUMNS = `id, exchange_id, message_index, side, opcode, fin, frames, wire_size, payload_size, decoded_size, compressed,
  truncated, utf8_valid, close_code, close_reason, sent_at, seq`;

/** The WebSocket that a handshake exchange opened, or null when it did not open one. */
export function getWebSocket(db: Db, exchangeId: number): WebSocketRow | null {
  const r = prepared(db, 'SELECT * FROM websockets WHERE exchange_id = ?').get(exchangeId) as Row | undefined;
  if (!r) return null;
  const reason = r.error_reason as FailureReason | null;
  const error: Failure | null = reason === null ? null : { reason, message: (r.error_message as string | null) ?? '' };
  if (error && typeof r.error_code === 'string') error.code = r.error_code;
  return {
    exchangeId: r.exchange_id as number,
    connectionId: r.connection_id as number,
    openedAt: r.opened_at as number,
    closedAt: r.closed_at as number | null,
    subprotocol: r.subprotocol as string | null,
    extensions: r.extensions as string | null,
    deflate: typeof r.deflate === 'string' ? (JSON.parse(r.deflate) as WebSocketRow['deflate']) : null,
    closedBy: r.closed_by as Side | null,
    closeCode: r.close_code as number | null,
    closeReason: r.close_reason as string | null,
    clean: r.clean === null ? null : r.clean === 1,
    messagesFromClient: r.messages_from_client as number | null,
    messagesFromServer: r.messages_from_server as number | null,
    bytesFromClient: r.bytes_from_client as number | null,
    bytesFromServer: r.bytes_from_server as number | null,
    error,
    lastSeq: r.last_seq as number,
  };
}

/** One page of a WebSocket's messages in the order they were decoded; page on with `afterId`. */
export function listWsMessages(db: Db, exchangeId: number, options: ListWsMessagesOptions): WsMessageRow[] {
  const withData = options.includeData ?? true;
  const rows = prepared(
    db,
    `SELECT ${MESSAGE_COLUMNS}${withData ? ', data' : ''} FROM ws_messages WHERE exchange_id = ? AND id > ? ORDER BY id LIMIT ?`,
  ).all(exchangeId, options.afterId ?? 0, Math.max(0, Math.floor(options.limit))) as Row[];
  return rows.map(toMessage);
}

export function getWsMessage(db: Db, id: number): WsMessageRow | null {
  const r = prepared(db, `SELECT ${MESSAGE_COLUMNS}, data FROM ws_messages WHERE id = ?`).get(id) as Row | undefined;
  return r ? toMessage(r) : null;
}

export function countWsMessages(db: Db, exchangeId: number): number {
  return (prepared(db, 'SELECT count(*) AS n FROM ws_messages WHERE exchange_id = ?').get(exchangeId) as { n: number }).n;
}

/** The frames of one message, in wire order. */
export function listWsFrames(db: Db, exchangeId: number, messageIndex: number): WsFrameRow[] {
  const rows = prepared(db, 'SELECT * FROM ws_frames WHERE exchange_id = ? AND message_index = ? ORDER BY frame_index, id').all(
    exchangeId,
    messageIndex,
  ) as Row[];
  return rows.map(toFrame);
}

const bool = (value: unknown) => value === 1;

function toMessage(r: Row): WsMessageRow {
  return {
    id: r.id as number,
    exchangeId: r.exchange_id as number,
    messageIndex: r.message_index as number,
    side: r.side as Side,
    opcode: r.opcode as number,
    fin: bool(r.fin),
    frames: r.frames as number,
    wireSize: r.wire_size as number,
    payloadSize: r.payload_size as number,
    decodedSize: r.decoded_size as number,
    compressed: bool(r.compressed),
    truncated: bool(r.truncated),
    utf8Valid: r.utf8_valid === null ? null : bool(r.utf8_valid),
    closeCode: r.close_code as number | null,
    closeReason: r.close_reason as string | null,
    sentAt: r.sent_at as number,
    seq: r.seq as number,
    data: Buffer.isBuffer(r.data) ? r.data : null,
  };
}

function toFrame(r: Row): WsFrameRow {
  return {
    id: r.id as number,
    exchangeId: r.exchange_id as number,
    messageIndex: r.message_index as number,
    frameIndex: r.frame_index as number,
    side: r.side as Side,
    fin: bool(r.fin),
    rsv1: bool(r.rsv1),
    rsv2: bool(r.rsv2),
    rsv3: bool(r.rsv3),
    opcode: r.opcode as number,
    masked: bool(r.masked),
    maskKey: r.mask_key as string | null,
    payloadLength: r.payload_length as number,
    wireSize: r.wire_size as number,
    seenAt: r.seen_at as number,
    seq: r.seq as number,
  };
}
