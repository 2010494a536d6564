// The SQL for WebSocket capture events (websockets, ws_messages, ws_frames), used by the sink's
// batch writer inside its transaction. Runs wherever the batch writer runs (inline or a worker).
import type Database from 'better-sqlite3';
import type { WsClosed, WsMessageDecoded, WsOpened } from '../capture/events.js';

export type WsEvent = WsOpened | WsMessageDecoded | WsClosed;

const flag = (value: boolean) => (value ? 1 : 0);

/** A payload that crossed a worker boundary arrives as a plain Uint8Array; SQLite binds Buffers. */
function blob(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

export class WsRowWriter {
  private readonly opened: Database.Statement;
  private readonly frame: Database.Statement;
  private readonly message: Database.Statement;
  private readonly closed: Database.Statement;

  constructor(db: Database.Database) {
    this.opened = db.prepare(`INSERT INTO websockets (exchange_id, connection_id, opened_at, subprotocol, extensions, deflate, last_seq)
      VALUES (?, ?, ?, ?, ?, ?, ?)`);
    this.frame = db.prepare(`INSERT INTO ws_frames (exchange_id, message_index, frame_index, side, fin, rsv1, rsv2, rsv3,
      opcode, masked, mask_key, payload_length, wire_size, seen_at, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    this.message = db.prepare(`INSERT INTO ws_messages (exchange_id, message_index, side, opcode, fin, frames, wire_size,
      payload_size, decoded_size, compressed, truncated, utf8_valid, close_code, close_reason, sent_at, seq, data)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    this.closed = db.prepare(`UPDATE websockets SET closed_at = ?, closed_by = ?, close_code = ?, close_reason = ?, clean = ?,
      messages_from_client = ?, messages_from_server = ?, bytes_from_client = ?, bytes_from_server = ?,
      error_reason = ?, error_message = ?, error_code = ?, last_seq = ? WHERE exchange_id = ?`);
  }

  /** Writes one event (a message with its frames); returns the number of rows it changed. */
  apply(e: WsEvent): number {
    switch (e.kind) {
      case 'ws.opened':
        return this.opened.run(e.exchangeId, e.connId, e.time, e.subprotocol, e.extensions, e.deflate ? JSON.stringify(e.deflate) : null, e.seq)
          .changes;
      case 'ws.message': {
        let changes = this.message.run(e.exchangeId, e.messageIndex, e.side, e.opcode, flag(e.fin), e.frames, e.wireSize, e.payloadSize,
          e.decodedSize, flag(e.compressed), flag(e.truncated), e.utf8Valid === null ? null : flag(e.utf8Valid), e.closeCode,
          e.closeReason, e.time, e.seq, blob(e.payload)).changes;
        const frames = e.frameHeaders ?? [];
        for (let i = 0; i < frames.length; i++) {
          const f = frames[i];
          changes += this.frame.run(e.exchangeId, e.messageIndex, i, e.side, flag(f.fin), flag(f.rsv1), flag(f.rsv2), flag(f.rsv3), f.opcode,
            flag(f.masked), f.maskKey, f.payloadLength, f.wireSize, f.time, e.seq).changes;
        }
        return changes;
      }
      case 'ws.closed':
        return this.closed.run(e.time, e.closedBy, e.closeCode, e.closeReason, flag(e.clean), e.messagesFromClient, e.messagesFromServer,
          e.bytesFromClient, e.bytesFromServer, e.error?.reason ?? null, e.error?.message ?? null, e.error?.code ?? null, e.seq,
          e.exchangeId).changes;
    }
  }
}
