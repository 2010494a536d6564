// One inspector session: the live subscription, the exchange store it feeds, backfilling older
// pages after a snapshot, pause/resume and clear. No React here; App binds to it.
import type { InfoResponse, ServerMessage } from '../../../core/src/inspector/protocol.js';
import { LiveClient, type LiveStatus } from '../api/live-client.js';
import { fetchExchangePage, fetchInfo } from '../api/rest.js';
import { ExchangeStore } from './exchange-store.js';
import { createFrameFlusher, type FrameFlusher } from './frame-flusher.js';

/** Most rows the view holds; older ones are not paged in beyond this. */
export const MAX_ROWS = 200_000;
/** Connections whose last change is remembered (the oldest are forgotten: their panes just reload). */
const MAX_CONNECTIONS = 10_000;

export interface SessionState {
  status: LiveStatus;
  info: InfoResponse | null;
  /** The filter the server is applying. */
  filter: string;
  /** The server refused the filter (the UI parses first, so this is rare). */
  filterError: { message: string; start?: number; end?: number } | null;
  /** Older rows are still being fetched. */
  backfilling: boolean;
  /** Time from start to the first snapshot being applied, for the curious (and the e2e test). */
  firstRowsMs: number | null;
  /** Sequence number of the last live batch that changed a connection (see connectionVersion). */
  connectionsSeq: number;
  /** While paused: matching exchanges that arrived since the pause (the server stops at PAUSED_COUNT_CAP). */
  pausedNew: number;
}

export class Session {
  readonly store = new ExchangeStore();
  private state: SessionState = { status: 'connecting', info: null, filter: '', filterError: null, backfilling: false, firstRowsMs: null, connectionsSeq: 0, pausedNew: 0 };
  /** Per connection, the last live batch that changed its row or its HTTP/2 frames. */
  private readonly connectionSeqs = new Map<number, number>();
  private readonly listeners = new Set<() => void>();
  private readonly live: LiveClient;
  private readonly flusher: FrameFlusher;
  private lastEventBatch = 0;
  private ackedBatch = 0;
  private generation = 0;
  private readonly startedAt = performance.now();
  private snapshotPending = true;

  constructor(wsUrl: string) {
    this.live = new LiveClient(
      wsUrl,
      { onMessage: (m) => this.receive(m), onStatus: (status) => this.set({ status }) },
      () => (this.store.seq > 0 && !this.snapshotPending ? this.store.seq : null),
    );
    this.flusher = createFrameFlusher(() => this.flush());
  }

  start(): void {
    fetchInfo().then(
      (info) => this.set({ info }),
      () => {},
    );
    this.live.start();
  }

  dispose(): void {
    this.live.dispose();
    this.flusher.dispose();
  }

  getState = (): SessionState => this.state;

  /**
   * Changes whenever the store committed something about the connection: its close, its bytes, its
   * HTTP/2 frames (a GOAWAY after the last stream ended moves no exchange row). Panes that show a
   * connection load again when it changes.
   */
  connectionVersion(id: number): number {
    return this.connectionSeqs.get(id) ?? 0;
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  setFilter(filter: string): void {
    this.generation++;
    this.snapshotPending = true;
    this.set({ filter, filterError: null, backfilling: false });
    this.live.subscribe({ filter, afterId: this.store.clearedThrough });
  }

  pause(): void {
    this.live.pause();
  }

  resume(): void {
    this.set({ pausedNew: 0 });
    this.live.resume(this.store.seq);
  }

  clear(): void {
    this.generation++;
    this.store.clear();
    this.set({ backfilling: false });
    // Later subscriptions (reconnects, filter changes) start after the cleared rows.
    this.live.subscribe({ filter: this.state.filter, afterId: this.store.clearedThrough }, this.store.seq);
  }

  private set(patch: Partial<SessionState>): void {
    this.state = { ...this.state, ...patch };
    for (const l of this.listeners) l();
  }

  private receive(m: ServerMessage): void {
    switch (m.type) {
      case 'hello':
        if (this.state.info) this.set({ info: { ...this.state.info, capabilities: m.capabilities } });
        return;
      case 'snapshot':
        if (m.mode === 'full') {
          this.generation++;
          this.store.enqueue({ kind: 'reset', seq: m.seq, rows: m.exchanges });
          if (m.hasMore && m.exchanges.length > 0) this.backfill(this.generation, m.filter, m.exchanges[m.exchanges.length - 1].id);
        } else {
          this.store.enqueue({ kind: 'upsert', seq: m.seq, rows: m.exchanges, removed: m.removed });
        }
        this.snapshotPending = false;
        this.flusher.request();
        return;
      case 'events':
        this.store.enqueue({ kind: 'upsert', seq: m.seq, rows: m.exchanges, removed: m.removed });
        this.lastEventBatch = m.n;
        this.flusher.request();
        if (m.connections.length > 0) this.connectionsChanged(m.connections.map((c) => c.id), m.seq);
        return;
      case 'paused':
        this.set({ pausedNew: m.newExchanges });
        return;
      case 'error':
        if (m.code === 'bad-filter') this.set({ filterError: { message: m.message, start: m.start, end: m.end } });
        return;
      case 'resync':
        this.snapshotPending = true;
        return;
    }
  }

  private connectionsChanged(ids: number[], seq: number): void {
    for (const id of ids) {
      this.connectionSeqs.delete(id); // re-inserted last: the map stays ordered oldest change first
      this.connectionSeqs.set(id, seq);
    }
    for (const id of this.connectionSeqs.keys()) {
      if (this.connectionSeqs.size <= MAX_CONNECTIONS) break;
      this.connectionSeqs.delete(id);
    }
    this.set({ connectionsSeq: seq });
  }

  private flush(): void {
    this.store.flush();
    if (this.state.firstRowsMs === null && !this.snapshotPending) this.set({ firstRowsMs: performance.now() - this.startedAt });
    if (this.lastEventBatch > this.ackedBatch) {
      this.ackedBatch = this.lastEventBatch;
      this.live.ack(this.lastEventBatch);
    }
  }

  /** Pages older rows in after a full snapshot until all are held (or MAX_ROWS). */
  private async backfill(generation: number, filter: string, beforeId: number): Promise<void> {
    this.set({ backfilling: true });
    try {
      for (;;) {
        const page = await fetchExchangePage({ filter, beforeId, afterId: this.store.clearedThrough || undefined, limit: 5000 });
        if (generation !== this.generation) return;
        this.store.enqueue({ kind: 'upsert', rows: page.exchanges });
        this.flusher.request();
        if (!page.hasMore || page.exchanges.length === 0 || this.store.size + page.exchanges.length >= MAX_ROWS) break;
        beforeId = page.exchanges[page.exchanges.length - 1].id;
      }
    } catch {
      // A failed page leaves the view with what it has; the next snapshot tries again.
    } finally {
      if (generation === this.generation) this.set({ backfilling: false });
    }
  }
}
