// Reading HTTP/2 frames from a capture file: a connection's frames in wire order (per side), with
// the summary rows that stand for the frames past the per-connection cap (those have no stream, so
// a stream filter leaves them out). Re-exported by queries.ts.
import type Database from 'better-sqlite3';
import type { H2FrameDetails, Side } from '../capture/events.js';
import type { H2FrameRow, ListH2FramesOptions } from './row-types.js';
import { prepared } from './prepared.js';

type Row = Record<string, unknown>;
type Db = Database.Database;

/**
 * One page of a connection's HTTP/2 frames in the order they were decoded (ids grow with time);
 * `streamId` keeps one stream's frames (0: the connection's own), `afterId` pages on.
 */
export function listH2Frames(db: Db, connectionId: number, options: ListH2FramesOptions): H2FrameRow[] {
  const byStream = options.streamId !== undefined;
  const sql = `SELECT * FROM h2_frames WHERE connection_id = ?${byStream ? ' AND stream_id = ?' : ''} AND id > ? ORDER BY id LIMIT ?`;
  const params: unknown[] = [connectionId, ...(byStream ? [options.streamId] : []), options.afterId ?? 0];
  const rows = prepared(db, sql).all(...params, Math.max(0, Math.floor(options.limit))) as Row[];
  return rows.map(toFrame);
}

/** Frames a connection carried (summary rows count all they stand for); with `streamId`, its stored frames. */
export function countH2Frames(db: Db, connectionId: number, streamId?: number): number {
  const byStream = streamId !== undefined;
  const row = prepared(
    db,
    `SELECT coalesce(sum(frame_count), 0) AS n FROM h2_frames WHERE connection_id = ?${byStream ? ' AND stream_id = ?' : ''}`,
  ).get(connectionId, ...(byStream ? [streamId] : [])) as { n: number };
  return row.n;
}

function toFrame(r: Row): H2FrameRow {
  return {
    id: r.id as number,
    connectionId: r.connection_id as number,
    side: r.side as Side,
    streamId: r.stream_id as number | null,
    type: r.type as number,
    typeName: r.type_name as string,
    flags: r.flags as number,
    flagNames: JSON.parse(r.flag_names as string) as string[],
    length: r.length as number,
    padLength: r.pad_length as number | null,
    details: typeof r.details === 'string' ? (JSON.parse(r.details) as H2FrameDetails) : null,
    summary: r.summary === 1,
    frameCount: r.frame_count as number,
    seenAt: r.seen_at as number,
    lastSeenAt: r.last_seen_at as number | null,
    seq: r.seq as number,
  };
}
