// Keeps a long HTTP/2 connection from growing the capture without limit: the first `cap` frames of
// a connection are stored one by one; after that its frames are counted into summary items, one
// per (side, type) and batch, that the writer adds to the connection's summary rows. So a
// connection holds at most `cap` frame rows plus a summary row per side and frame type.
import type { H2FrameSeen } from '../capture/events.js';
import type { H2FrameSummary } from './h2-writer.js';

export const DEFAULT_H2_FRAMES_PER_CONNECTION = 2_000;

export class H2FrameBudget {
  private readonly stored = new Map<number, number>();
  /** Summary items queued in the current batch, still counting. */
  private open = new Map<string, H2FrameSummary>();

  constructor(private readonly cap: number = DEFAULT_H2_FRAMES_PER_CONNECTION) {}

  /**
   * What to queue for a frame: the frame itself while under the cap, else a new summary item, or
   * null when a summary item already queued in this batch now counts it too.
   */
  admit(e: H2FrameSeen): H2FrameSeen | H2FrameSummary | null {
    const count = this.stored.get(e.connId) ?? 0;
    if (count < this.cap) {
      this.stored.set(e.connId, count + 1);
      return e;
    }
    const key = `${e.connId} ${e.side} ${e.type}`;
    const item = this.open.get(key);
    if (item) {
      item.frames++;
      item.bytes += e.length;
      item.lastAt = e.time;
      item.seq = e.seq;
      return null;
    }
    const fresh: H2FrameSummary = {
      kind: 'h2.summary',
      connId: e.connId,
      side: e.side,
      type: e.type,
      typeName: e.typeName,
      frames: 1,
      bytes: e.length,
      firstAt: e.time,
      lastAt: e.time,
      seq: e.seq,
    };
    this.open.set(key, fresh);
    return fresh;
  }

  /** The queued items are being written: later frames start new summary items. */
  sealBatch(): void {
    if (this.open.size > 0) this.open = new Map();
  }

  forget(connId: number): void {
    this.stored.delete(connId);
  }
}
