// The live WebSocket hub. It announces only what the store has committed (SqliteSink.onCommitted),
// at most one message per client per interval, and never lets a slow client grow server memory:
// each client has a bounded queue that coalesces by id, a window of unacknowledged batches, and
// a `resync` when it overflows. Protocol: docs/api.md.
import type Database from 'better-sqlite3';
import type { WebSocket } from 'ws';
import type { FilterExpr } from '../filter/ast.js';
import { parseFilter } from '../filter/parser.js';
import type { CommittedInfo } from '../store/sqlite-sink.js';
import { capabilities } from './capabilities.js';
import { changedSince, classifyIds, connectionSummaries, listRows } from './exchange-rows.js';
import { LiveQueue } from './live-queue.js';
import { LIVE_PROTOCOL_VERSION, PAUSED_COUNT_CAP, type ClientMessage, type ServerMessage } from './protocol.js';

export interface LiveHubOptions {
  /** Shortest time between two messages to one client. Default 50 ms. */
  intervalMs?: number;
  /** Queued updates per client before it is told to resync. Default 5000. */
  maxQueue?: number;
  /** Event batches a client may leave unacknowledged. Default 4. */
  maxInFlight?: number;
  /** Bytes waiting in a client's socket beyond which nothing more is sent to it. Default 4 MiB. */
  highWaterBytes?: number;
  /** Rows in a full snapshot unless the client asks for another number (at most 5000). Default 500. */
  snapshotLimit?: number;
  /** Changes a `since` resume may carry before a full snapshot is sent instead. Default 5000. */
  maxDelta?: number;
  /** Exchanges touched within one interval beyond which every client resyncs. Default 20000. */
  maxTouched?: number;
}

interface Client {
  ws: WebSocket;
  subscribed: boolean;
  /** While paused: the newest exchange id at the pause, and the matching exchanges seen after it. */
  paused: { sinceId: number; newIds: Set<number>; told: number } | null;
  filterText: string;
  filter: FilterExpr | null;
  afterId: number;
  queue: LiveQueue;
  nextBatch: number;
  acked: number;
}

export class LiveHub {
  private readonly clients = new Set<Client>();
  private readonly opts: Required<LiveHubOptions>;
  private pendingIds = new Set<number>();
  private pendingConns = new Set<number>();
  private timer: NodeJS.Timeout | null = null;
  private lastTick = 0;
  private closed = false;

  constructor(
    private readonly db: Database.Database,
    private watermark: number,
    options: LiveHubOptions = {},
  ) {
    this.opts = {
      intervalMs: options.intervalMs ?? 50,
      maxQueue: options.maxQueue ?? 5000,
      maxInFlight: options.maxInFlight ?? 4,
      highWaterBytes: options.highWaterBytes ?? 4 * 1024 * 1024,
      snapshotLimit: options.snapshotLimit ?? 500,
      maxDelta: options.maxDelta ?? 5000,
      maxTouched: options.maxTouched ?? 20_000,
    };
  }

  /** Everything up to this sequence number is committed. */
  get seq(): number {
    return this.watermark;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /** Wire to SqliteSink.onCommitted. */
  committed(info: CommittedInfo): void {
    this.watermark = Math.max(this.watermark, info.lastSeq);
    if (!this.anyListening()) return;
    for (const id of info.exchangeIds) this.pendingIds.add(id);
    for (const id of info.connIds) this.pendingConns.add(id);
    this.schedule();
  }

  attach(ws: WebSocket): void {
    const client: Client = { ws, subscribed: false, paused: null, filterText: '', filter: null, afterId: 0, queue: new LiveQueue(), nextBatch: 1, acked: 0 };
    this.clients.add(client);
    ws.on('message', (data, isBinary) => this.receive(client, isBinary ? null : data.toString()));
    ws.on('close', () => this.clients.delete(client));
    ws.on('error', () => ws.terminate());
    this.send(client, { type: 'hello', liveProtocol: LIVE_PROTOCOL_VERSION, seq: this.watermark, capabilities: capabilities(this.db) });
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const c of this.clients) c.ws.terminate();
    this.clients.clear();
  }

  private receive(client: Client, text: string | null): void {
    let msg: ClientMessage;
    try {
      msg = JSON.parse(text ?? '') as ClientMessage;
    } catch {
      this.send(client, { type: 'error', code: 'bad-message', message: 'Messages are JSON text.' });
      return;
    }
    switch (msg?.type) {
      case 'subscribe':
        this.subscribe(client, msg);
        return;
      case 'unsubscribe':
        client.subscribed = false;
        client.paused = null;
        client.queue.clear();
        return;
      case 'pause':
        this.pause(client);
        return;
      case 'ack':
        if (typeof msg.n === 'number') client.acked = Math.max(client.acked, Math.min(msg.n, client.nextBatch - 1));
        if (client.queue.size > 0) this.schedule();
        return;
      default:
        this.send(client, { type: 'error', code: 'bad-message', message: `Unknown message type "${String((msg as { type?: unknown })?.type)}".` });
    }
  }

  private subscribe(client: Client, msg: Extract<ClientMessage, { type: 'subscribe' }>): void {
    const filterText = typeof msg.filter === 'string' ? msg.filter : '';
    const parsed = parseFilter(filterText);
    client.queue.clear();
    client.paused = null;
    client.acked = client.nextBatch - 1;
    if (!parsed.ok) {
      client.subscribed = false;
      this.send(client, { type: 'error', code: 'bad-filter', message: parsed.error.message, start: parsed.error.start, end: parsed.error.end });
      return;
    }
    Object.assign(client, {
      subscribed: true,
      filterText,
      filter: parsed.expr,
      afterId: Number.isSafeInteger(msg.afterId) && msg.afterId! > 0 ? msg.afterId! : 0,
    });
    const seq = this.watermark;
    if (Number.isSafeInteger(msg.since) && msg.since! >= 0 && msg.since! <= seq) {
      const delta = changedSince(this.db, msg.since!, client.filter, this.opts.maxDelta, client.afterId);
      if (delta) {
        const exchanges = delta.matching.reverse();
        this.send(client, { type: 'snapshot', mode: 'delta', seq, filter: filterText, exchanges, removed: delta.removed, hasMore: false });
        return;
      }
    }
    const limit = Number.isSafeInteger(msg.limit) && msg.limit! > 0 ? Math.min(msg.limit!, 5000) : this.opts.snapshotLimit;
    const page = listRows(this.db, { filter: client.filter, limit, order: 'newest', afterId: client.afterId || undefined });
    this.send(client, { type: 'snapshot', mode: 'full', seq, filter: filterText, exchanges: page.rows, removed: [], hasMore: page.hasMore });
  }

  /** Stops the updates but keeps the filter, and counts the matching exchanges that arrive meanwhile. */
  private pause(client: Client): void {
    client.subscribed = false;
    client.queue.clear();
    const newest = this.db.prepare('SELECT coalesce(max(id), 0) AS id FROM exchanges').get() as { id: number };
    client.paused = { sinceId: newest.id, newIds: new Set(), told: 0 };
    this.send(client, { type: 'paused', seq: this.watermark, newExchanges: 0 });
  }

  private anyListening(): boolean {
    for (const c of this.clients) if (c.subscribed || c.paused) return true;
    return false;
  }

  private schedule(): void {
    if (this.timer || this.closed) return;
    const delay = Math.max(0, this.lastTick + this.opts.intervalMs - Date.now());
    this.timer = setTimeout(() => this.tick(), delay);
  }

  private tick(): void {
    this.timer = null;
    this.lastTick = Date.now();
    const ids = [...this.pendingIds];
    const connIds = [...this.pendingConns];
    this.pendingIds = new Set();
    this.pendingConns = new Set();
    const subscribed = [...this.clients].filter((c) => c.subscribed);
    const paused = [...this.clients].filter((c) => c.paused);
    if (ids.length > this.opts.maxTouched) {
      for (const c of subscribed) this.resync(c, 'too-many-changes');
      return;
    }
    if (ids.length > 0) {
      // Clients with the same filter share one query.
      const groups = new Map<string, Client[]>();
      for (const c of [...subscribed, ...paused]) {
        const key = `${c.afterId}\u0000${c.filterText}`;
        groups.set(key, [...(groups.get(key) ?? []), c]);
      }
      for (const members of groups.values()) {
        const { matching, removed } = classifyIds(this.db, ids, members[0].filter, members[0].afterId);
        for (const c of members) {
          if (c.paused) {
            countNew(c.paused, matching);
            continue;
          }
          c.queue.addRows(matching);
          c.queue.addRemoved(removed);
        }
      }
    }
    for (const c of paused) this.tellPaused(c);
    if (connIds.length > 0 && subscribed.length > 0) {
      const conns = connectionSummaries(this.db, connIds);
      for (const c of subscribed) c.queue.addConnections(conns);
    }
    let blocked = false;
    for (const c of subscribed) if (!this.flush(c)) blocked = true;
    // A blocked client is looked at again next interval: it may have caught up, or overflowed.
    if (blocked) this.schedule();
  }

  /** Sends the client's queue as one batch if it can take it; false while it is blocked with data queued. */
  private flush(c: Client): boolean {
    if (c.queue.size === 0) return true;
    const inFlight = c.nextBatch - 1 - c.acked;
    if (inFlight >= this.opts.maxInFlight || c.ws.bufferedAmount > this.opts.highWaterBytes) {
      if (c.queue.size > this.opts.maxQueue) {
        this.resync(c, 'overflow');
        return true;
      }
      return false;
    }
    const n = c.nextBatch++;
    this.send(c, { type: 'events', n, seq: this.watermark, ...c.queue.take() });
    return true;
  }

  /** Tells a paused client how many new exchanges wait for it, when that changed and it can take it. */
  private tellPaused(c: Client): void {
    const p = c.paused!;
    if (p.newIds.size === p.told || c.ws.bufferedAmount > this.opts.highWaterBytes) return;
    p.told = p.newIds.size;
    this.send(c, { type: 'paused', seq: this.watermark, newExchanges: p.told });
  }

  private resync(c: Client, reason: 'overflow' | 'too-many-changes'): void {
    c.queue.clear();
    c.subscribed = false;
    this.send(c, { type: 'resync', reason });
  }

  private send(c: Client, msg: ServerMessage): void {
    if (c.ws.readyState === c.ws.OPEN) c.ws.send(JSON.stringify(msg));
  }
}

function countNew(paused: NonNullable<Client['paused']>, rows: readonly { id: number }[]): void {
  for (const row of rows) {
    if (paused.newIds.size >= PAUSED_COUNT_CAP) return;
    if (row.id > paused.sinceId) paused.newIds.add(row.id);
  }
}
