// One client's pending live updates, coalesced by id: a row updated ten times while the client
// was busy is sent once, in its latest state. The size is what the hub bounds.
import type { ConnectionSummary, ExchangeRow } from './protocol.js';

export interface LiveBatch {
  exchanges: ExchangeRow[];
  removed: number[];
  connections: ConnectionSummary[];
}

export class LiveQueue {
  private rows = new Map<number, ExchangeRow>();
  private removed = new Set<number>();
  private conns = new Map<number, ConnectionSummary>();

  get size(): number {
    return this.rows.size + this.removed.size + this.conns.size;
  }

  addRows(rows: ExchangeRow[]): void {
    for (const row of rows) {
      const queued = this.rows.get(row.id);
      if (queued && queued.lastSeq > row.lastSeq) continue;
      this.removed.delete(row.id);
      this.rows.set(row.id, row);
    }
  }

  addRemoved(ids: number[]): void {
    for (const id of ids) {
      this.rows.delete(id);
      this.removed.add(id);
    }
  }

  addConnections(conns: ConnectionSummary[]): void {
    for (const c of conns) this.conns.set(c.id, c);
  }

  /** Empties the queue; rows come out in id order. */
  take(): LiveBatch {
    const batch: LiveBatch = {
      exchanges: [...this.rows.values()].sort((a, b) => a.id - b.id),
      removed: [...this.removed].sort((a, b) => a - b),
      connections: [...this.conns.values()],
    };
    this.clear();
    return batch;
  }

  clear(): void {
    this.rows = new Map();
    this.removed = new Set();
    this.conns = new Map();
  }
}
