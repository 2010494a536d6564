// Writes capture events to the store. The bus listener only appends to memory; a flush writes the
// queue in one transaction (every `flushIntervalMs` while events wait, sooner when the queue is
// large), then tells `onCommitted` listeners what is now readable. Forwarding never waits on disk,
// and a failing write is reported and dropped, never thrown into the bus.
import type Database from 'better-sqlite3';
import type { CaptureBus } from '../capture/bus.js';
import type { CaptureEvent, Side } from '../capture/events.js';
import type { BodySide } from './row-types.js';
import { RemoteWriter } from './remote-writer.js';
import { BatchWriter, type QueueItem, type Touched } from './batch-writer.js';
import { H2FrameBudget } from './h2-frame-budget.js';

export interface SqliteSinkOptions {
  /** Body bytes stored per exchange and side; the rest is only counted. Default 10 MiB. */
  bodyCap?: number;
  /** Body bytes held in memory before they are written; beyond it bodies are truncated. Default 64 MiB. */
  pendingBodyLimit?: number;
  /** Longest wait between an event and its commit. Default 100 ms. */
  flushIntervalMs?: number;
  /** Queue length that triggers an early flush (on the next turn of the event loop). Default 2000. */
  maxBatch?: number;
  /** Called with the first error of a failing streak; default: a process warning. */
  onError?: (err: Error) => void;
  /**
   * Capture file to write from a worker thread instead of the caller's connection, so that
   * SQLite never runs on the thread that forwards traffic. Omitted: writes go through `db`.
   */
  workerPath?: string;
  /** HTTP/2 frames stored one by one per connection; later ones are summarised. Default 2,000. */
  h2FrameCap?: number;
}

export interface CommittedInfo {
  /** Every event up to this sequence number is reflected in the file. */
  lastSeq: number;
  exchangeIds: number[];
  connIds: number[];
}

export type CommittedListener = (info: CommittedInfo) => void;

interface BodyAcc {
  chunks: Uint8Array[];
  stored: number;
  seen: number;
  /** Bytes were dropped because too much body data was waiting in memory. */
  dropped: boolean;
  lastSeq: number;
}

interface OpenExchange {
  connId: number;
  client?: BodyAcc;
  server?: BodyAcc;
}

const MiB = 1024 * 1024;
/** Queued body bytes that trigger an early flush. */
const EARLY_FLUSH_BODY_BYTES = 8 * MiB;
/** A write failure is reported at most this often (ms). */
const REPORT_QUIET_MS = 60_000;

export class SqliteSink {
  private readonly bodyCap: number;
  private readonly pendingBodyLimit: number;
  private readonly flushIntervalMs: number;
  private readonly maxBatch: number;
  private readonly onError: (err: Error) => void;

  private queue: QueueItem[] = [];
  private queuedBodyBytes = 0;
  /** Body bytes in memory: gathered for open exchanges plus queued for writing. */
  private pendingBodyBytes = 0;
  private lastSeenSeq = 0;
  private readonly open = new Map<number, OpenExchange>();
  private readonly openByConn = new Map<number, Set<number>>();
  private readonly committedListeners = new Set<CommittedListener>();
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private flushing = false;
  private closed = false;
  private errorReported = false;
  private lastReportAt = -Infinity;
  private writer: BatchWriter | null = null;
  private readonly remote: RemoteWriter | null;
  private readonly h2Frames: H2FrameBudget;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly db: Database.Database,
    bus: CaptureBus,
    options: SqliteSinkOptions = {},
  ) {
    this.bodyCap = options.bodyCap ?? 10 * MiB;
    this.pendingBodyLimit = options.pendingBodyLimit ?? 64 * MiB;
    this.flushIntervalMs = options.flushIntervalMs ?? 100;
    this.maxBatch = options.maxBatch ?? 2000;
    this.onError =
      options.onError ?? ((err) => process.emitWarning(`hopscope: capture store write failed: ${err.message}`));
    this.remote = options.workerPath ? new RemoteWriter(options.workerPath) : null;
    this.h2Frames = new H2FrameBudget(options.h2FrameCap);
    this.unsubscribe = bus.subscribe((event) => this.accept(event));
  }

  /** Body bytes currently held in memory (for tests and diagnostics). */
  get pendingBytes(): number {
    return this.pendingBodyBytes;
  }

  onCommitted(listener: CommittedListener): () => void {
    this.committedListeners.add(listener);
    return () => this.committedListeners.delete(listener);
  }

  private accept(event: CaptureEvent): void {
    if (this.closed) return;
    this.lastSeenSeq = event.seq;
    switch (event.kind) {
      case 'ws.message':
        this.enqueue(this.capWsPayload(event));
        return;
      case 'http.body':
        this.gatherBody(event.exchangeId, event.side, event.chunk, event.seq);
        return;
      case 'h2.frame': {
        const item = this.h2Frames.admit(event);
        if (item) this.enqueue(item);
        return;
      }
      case 'http.request':
        this.open.set(event.exchangeId, { connId: event.connId });
        this.byConn(event.connId).add(event.exchangeId);
        this.enqueue(event);
        return;
      case 'http.completed':
      case 'http.failed':
        this.enqueue(event);
        this.finishBodies(event.exchangeId, event.seq, event.requestBodySize, event.responseBodySize);
        return;
      case 'conn.closed':
        this.enqueue(event);
        for (const exchangeId of this.openByConn.get(event.connId) ?? []) this.finishBodies(exchangeId, null);
        this.openByConn.delete(event.connId);
        this.h2Frames.forget(event.connId);
        return;
      default:
        this.enqueue(event);
    }
  }

  /** WebSocket payloads count with body bytes in memory: past the cap or the memory limit they are cut. */
  private capWsPayload(event: Extract<CaptureEvent, { kind: 'ws.message' }>): CaptureEvent {
    const size = event.payload.byteLength;
    let take = Math.min(size, this.bodyCap);
    if (this.pendingBodyBytes + take > this.pendingBodyLimit) take = 0;
    this.pendingBodyBytes += take;
    this.queuedBodyBytes += take;
    return take === size ? event : { ...event, payload: event.payload.subarray(0, take), truncated: true };
  }

  private byConn(connId: number): Set<number> {
    let set = this.openByConn.get(connId);
    if (!set) this.openByConn.set(connId, (set = new Set()));
    return set;
  }

  private gatherBody(exchangeId: number, side: Side, chunk: Uint8Array, seq: number): void {
    // Only exchanges whose request was seen: a stray chunk must not open state nobody closes.
    const open = this.open.get(exchangeId);
    if (!open) return;
    const acc = (open[side] ??= { chunks: [], stored: 0, seen: 0, dropped: false, lastSeq: seq });
    acc.seen += chunk.byteLength;
    acc.lastSeq = seq;
    const take = Math.min(this.bodyCap - acc.stored, chunk.byteLength);
    if (acc.dropped || take <= 0) return;
    if (this.pendingBodyBytes + take > this.pendingBodyLimit) {
      // Keep the stored prefix contiguous: once bytes are dropped, the rest is only counted.
      acc.dropped = true;
      return;
    }
    acc.chunks.push(take === chunk.byteLength ? chunk : chunk.subarray(0, take));
    acc.stored += take;
    this.pendingBodyBytes += take;
  }

  /** Moves the gathered bodies of an exchange to the queue. Sizes default to the bytes seen. */
  private finishBodies(exchangeId: number, seq: number | null, requestSize?: number, responseSize?: number): void {
    const open = this.open.get(exchangeId);
    this.open.delete(exchangeId);
    if (open) this.openByConn.get(open.connId)?.delete(exchangeId);
    this.queueBody(exchangeId, 'request', open?.client, seq, requestSize);
    this.queueBody(exchangeId, 'response', open?.server, seq, responseSize);
  }

  private queueBody(exchangeId: number, side: BodySide, acc: BodyAcc | undefined, seq: number | null, size?: number) {
    const full = size ?? acc?.seen ?? 0;
    if (!acc && full === 0) return;
    const stored = acc?.stored ?? 0;
    this.queuedBodyBytes += stored;
    this.enqueue({
      kind: 'body.write',
      exchangeId,
      side,
      chunks: acc?.chunks ?? [],
      stored,
      size: Math.max(full, stored),
      truncated: full > stored || (acc?.dropped ?? false),
      seq: seq ?? acc?.lastSeq ?? this.lastSeenSeq,
    });
  }

  private enqueue(item: QueueItem): void {
    this.queue.push(item);
    this.timer ??= setTimeout(() => this.flush(), this.flushIntervalMs).unref();
    if (this.immediate === null && (this.queue.length >= this.maxBatch || this.queuedBodyBytes >= EARLY_FLUSH_BODY_BYTES)) {
      this.immediate = setImmediate(() => this.flush());
    }
  }

  /**
   * Writes everything queued in one transaction. Never throws; resolves once what was queued
   * before the call is committed (at once when writing inline).
   */
  flush(): Promise<void> {
    if (this.flushing) return this.remote?.settled() ?? Promise.resolve();
    this.clearTimers();
    if (this.queue.length === 0) return this.remote?.settled() ?? Promise.resolve();
    this.h2Frames.sealBatch();
    const batch = this.queue;
    const bodyBytes = this.queuedBodyBytes;
    const lastSeq = this.lastSeenSeq;
    this.queue = [];
    this.queuedBodyBytes = 0;
    if (this.remote) {
      return this.remote.write(batch).then((result) => {
        this.pendingBodyBytes -= bodyBytes;
        if (result.error) this.report(new Error(result.error));
        for (const err of result.eventErrors) this.report(new Error(err));
        if (result.touched) this.committed(result.touched, lastSeq);
      });
    }
    this.flushing = true;
    let touched: Touched | null = null;
    try {
      this.writer ??= new BatchWriter(this.db);
      touched = this.writer.write(batch, (err) => this.report(err));
    } catch (err) {
      this.report(err);
    } finally {
      this.pendingBodyBytes -= bodyBytes;
      this.flushing = false;
    }
    if (touched) this.committed(touched, lastSeq);
    return Promise.resolve();
  }

  private committed(touched: Touched, lastSeq: number): void {
    if (!touched.eventErrors) this.errorReported = false;
    const info: CommittedInfo = { lastSeq, exchangeIds: [...touched.exchangeIds], connIds: [...touched.connIds] };
    for (const listener of this.committedListeners) {
      try {
        listener(info);
      } catch (err) {
        process.emitWarning(`hopscope: committed listener failed: ${(err as Error).stack ?? err}`);
      }
    }
  }

  /** Stops listening, writes what is pending (bodies of unfinished exchanges as they are) and stops. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.unsubscribe();
    for (const exchangeId of [...this.open.keys()]) this.finishBodies(exchangeId, null);
    this.openByConn.clear();
    this.closed = true;
    await this.flush();
    this.clearTimers();
    await this.remote?.close();
  }

  private clearTimers(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
  }

  private report(err: unknown): void {
    if (this.errorReported) return;
    this.errorReported = true;
    // A nearly full disk lets a small batch through now and then: a new streak right after one
    // that was reported is the same trouble, not news.
    const now = performance.now();
    if (now - this.lastReportAt < REPORT_QUIET_MS) return;
    this.lastReportAt = now;
    const error = err instanceof Error ? err : new Error(String(err));
    try {
      this.onError(error);
    } catch {
      // The reporter itself must not break the sink either.
    }
  }
}
