// Which optional capture tables this file has. HTTP/2 frames and WebSocket messages arrive with
// later schema versions; until then the UI shows their tabs with an explanation instead of data.
import type Database from 'better-sqlite3';
import type { Capabilities } from './protocol.js';

export function capabilities(db: Database.Database): Capabilities {
  const rows = db
    .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('h2_frames', 'ws_messages')`)
    .all() as Array<{ name: string }>;
  const names = new Set(rows.map((r) => r.name));
  return { h2Frames: names.has('h2_frames'), wsMessages: names.has('ws_messages') };
}
