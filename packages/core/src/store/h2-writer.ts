// The SQL for HTTP/2 capture events (h2_frames, exchanges.pushed_by), used by the sink's batch
// writer inside its transaction. Runs wherever the batch writer runs (inline or a worker).
import type Database from 'better-sqlite3';
import type { H2FrameSeen, H2PushPromised, Side } from '../capture/events.js';

/**
 * Frames of one connection past its cap, counted per (side, type) since the last flush. Written as
 * an upsert that adds to the connection's summary row for that side and type.
 */
export interface H2FrameSummary {
  kind: 'h2.summary';
  connId: number;
  side: Side;
  type: number;
  typeName: string;
  frames: number;
  /** Payload bytes (frame header lengths) of those frames. */
  bytes: number;
  firstAt: number;
  lastAt: number;
  seq: number;
}

export type H2Item = H2FrameSeen | H2PushPromised | H2FrameSummary;

export interface H2Touched {
  connId?: number;
  exchangeId?: number;
}

export class H2RowWriter {
  private readonly frame: Database.Statement;
  private readonly summary: Database.Statement;
  private readonly push: Database.Statement;

  constructor(db: Database.Database) {
    this.frame = db.prepare(`INSERT INTO h2_frames (connection_id, side, stream_id, type, type_name, flags, flag_names, length,
      pad_length, details, seen_at, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    this.summary = db.prepare(`INSERT INTO h2_frames (connection_id, side, stream_id, type, type_name, flags, flag_names, length,
      summary, frame_count, seen_at, last_seen_at, seq) VALUES (?, ?, NULL, ?, ?, 0, '[]', ?, 1, ?, ?, ?, ?)
      ON CONFLICT (connection_id, side, type) WHERE summary = 1 DO UPDATE SET
        length = length + excluded.length, frame_count = frame_count + excluded.frame_count,
        last_seen_at = excluded.last_seen_at, seq = excluded.seq`);
    this.push = db.prepare('UPDATE exchanges SET pushed_by = ?, last_seq = ? WHERE id = ?');
  }

  /** Writes one item; says which connection or exchange it changed. */
  apply(e: H2Item): H2Touched {
    switch (e.kind) {
      case 'h2.frame':
        this.frame.run(e.connId, e.side, e.streamId, e.type, e.typeName, e.flags, JSON.stringify(e.flagNames), e.length,
          e.padLength, e.details ? JSON.stringify(e.details) : null, e.time, e.seq);
        return { connId: e.connId };
      case 'h2.summary':
        this.summary.run(e.connId, e.side, e.type, e.typeName, e.bytes, e.frames, e.firstAt, e.lastAt, e.seq);
        return { connId: e.connId };
      case 'h2.push':
        return this.push.run(e.parentExchangeId, e.seq, e.exchangeId).changes > 0 ? { exchangeId: e.exchangeId } : {};
    }
  }
}
