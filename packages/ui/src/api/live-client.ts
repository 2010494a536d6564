// The live subscription over /api/live: subscribe with a filter, hand snapshots and event batches
// to the caller, acknowledge batches once applied, and reconnect (resuming from the last
// watermark) when the socket drops.
import type { ClientMessage, ServerMessage } from '../../../core/src/inspector/protocol.js';

export type LiveStatus = 'connecting' | 'live' | 'paused' | 'offline';

export interface LiveHandlers {
  onMessage(message: ServerMessage): void;
  onStatus(status: LiveStatus): void;
}

export interface Subscription {
  filter: string;
  afterId: number;
}

export class LiveClient {
  private ws: WebSocket | null = null;
  private subscription: Subscription = { filter: '', afterId: 0 };
  private paused = false;
  private retryMs = 500;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private disposed = false;

  constructor(
    private readonly url: string,
    private readonly handlers: LiveHandlers,
    /** The watermark to resume from after a reconnect (the store's seq), or null for a fresh snapshot. */
    private readonly resumeFrom: () => number | null,
  ) {}

  start(): void {
    this.disposed = false;
    this.connect();
  }

  /** (Re)subscribes; `since` asks for only what changed after a watermark. */
  subscribe(subscription: Subscription, since?: number): void {
    this.subscription = subscription;
    this.paused = false;
    this.send({ type: 'subscribe', filter: subscription.filter, afterId: subscription.afterId || undefined, since });
    if (this.ws?.readyState === WebSocket.OPEN) this.handlers.onStatus('live');
  }

  pause(): void {
    this.paused = true;
    this.send({ type: 'pause' });
    this.handlers.onStatus('paused');
  }

  resume(since: number): void {
    this.subscribe(this.subscription, since);
  }

  ack(n: number): void {
    this.send({ type: 'ack', n });
  }

  dispose(): void {
    this.disposed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.ws?.close();
  }

  private send(message: ClientMessage): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  private connect(): void {
    if (this.disposed) return;
    this.handlers.onStatus('connecting');
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => {
      this.retryMs = 500;
      if (this.paused) {
        this.send({ type: 'pause' });
        this.handlers.onStatus('paused');
        return;
      }
      const since = this.resumeFrom();
      this.subscribe(this.subscription, since ?? undefined);
    };
    ws.onmessage = (event) => {
      let message: ServerMessage;
      try {
        message = JSON.parse(String(event.data)) as ServerMessage;
      } catch {
        return;
      }
      if (message.type === 'resync') {
        // The server dropped our queue: start over with a fresh snapshot.
        this.subscribe(this.subscription);
      }
      this.handlers.onMessage(message);
    };
    ws.onclose = () => {
      if (this.ws !== ws || this.disposed) return;
      this.ws = null;
      this.handlers.onStatus('offline');
      this.retryTimer = setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 5000);
    };
  }
}

export function liveUrl(location: Location): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/live`;
}
