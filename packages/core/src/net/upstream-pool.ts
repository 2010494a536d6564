// Keep-alive upstream connections of the active path, per origin (scheme, host, port); http://
// requests through an upstream proxy share one set of connections to that proxy.
// One exchange at a time per connection (no pipelining); the most recently used idle
// connection is reused first, so surplus ones age out and a periodic sweep closes them.
// TLS sessions are resumed per origin.
import type { LookupFunction } from 'node:net';
import type tls from 'node:tls';
import { UpstreamConnection, type UpstreamTarget } from './upstream-connection.js';

export interface UpstreamPoolOptions {
  lookup: LookupFunction;
  /** Upper bound for TCP connect plus TLS handshake. */
  connectTimeoutMs: number;
  secureContext?: tls.SecureContext;
  /** False only with --upstream-insecure. */
  rejectUnauthorized: boolean;
  onTlsSocket?: (socket: tls.TLSSocket) => void;
  /** Idle connections kept per origin (default 256). */
  maxIdlePerOrigin?: number;
  /** An idle connection is closed after this long (default 30 s). */
  idleTimeoutMs?: number;
  /** Largest CONNECT answer head accepted from an upstream proxy (default 64 KiB). */
  maxHeadBytes?: number;
}

const MAX_SESSIONS = 100;

export class UpstreamPool {
  private readonly idle = new Map<string, UpstreamConnection[]>();
  private readonly all = new Set<UpstreamConnection>();
  private readonly sessions = new Map<string, Buffer>();
  private readonly maxIdle: number;
  private readonly idleTimeoutMs: number;
  private destroyed = false;
  private sweepTimer: NodeJS.Timeout | null = null;

  constructor(private readonly options: UpstreamPoolOptions) {
    this.maxIdle = options.maxIdlePerOrigin ?? 256;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
  }

  /** An idle connection to the target's origin, now owned by the caller, or null. */
  acquire(target: UpstreamTarget): UpstreamConnection | null {
    // An emptied stack stays in the map (the sweep drops it): no churn at low concurrency.
    return this.idle.get(target.key)?.pop() ?? null;
  }

  /** A new connection to the target, owned by the caller; it reports readiness to its owner. */
  dial(target: UpstreamTarget): UpstreamConnection {
    const { options } = this;
    const secure = target.scheme === 'https';
    const session = secure ? this.sessions.get(target.key) : undefined;
    const conn = new UpstreamConnection(
      target,
      {
        lookup: options.lookup,
        connectTimeoutMs: options.connectTimeoutMs,
        rejectUnauthorized: options.rejectUnauthorized,
        ...(options.maxHeadBytes ? { maxHeadBytes: options.maxHeadBytes } : {}),
        ...(options.secureContext ? { secureContext: options.secureContext } : {}),
        ...(options.onTlsSocket ? { onTlsSocket: options.onTlsSocket } : {}),
        ...(session ? { session } : {}),
        ...(secure ? { onSession: (s: Buffer) => this.keepSession(target.key, s) } : {}),
      },
      (closed) => this.forget(closed),
    );
    this.all.add(conn);
    if (this.destroyed) conn.destroy();
    return conn;
  }

  /** Takes back a connection whose exchange ended cleanly and that both sides let live on. */
  release(conn: UpstreamConnection): void {
    conn.owner = null;
    conn.uses++;
    const { socket } = conn;
    if (this.destroyed || conn.closed || socket.destroyed || !socket.writable) {
      conn.destroy();
      return;
    }
    let stack = this.idle.get(conn.target.key);
    if (!stack) this.idle.set(conn.target.key, (stack = []));
    if (stack.length >= this.maxIdle) {
      conn.destroy();
      return;
    }
    // A paused socket would not notice the upstream closing it.
    if (socket.isPaused()) socket.resume();
    conn.idleSince = Date.now();
    stack.push(conn);
    this.sweepTimer ??= setInterval(() => this.sweep(), Math.max(1000, this.idleTimeoutMs / 2)).unref();
  }

  /** Idle connections per origin key (tests and diagnostics). */
  idleCount(key?: string): number {
    if (key !== undefined) return this.idle.get(key)?.length ?? 0;
    let n = 0;
    for (const stack of this.idle.values()) n += stack.length;
    return n;
  }

  /** Closes every connection, idle or in use; later dials close at once. */
  destroy(): void {
    this.destroyed = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    for (const conn of this.all) conn.destroy();
    this.idle.clear();
  }

  /** Closes connections idle for longer than the idle timeout (the oldest sit at the bottom). */
  private sweep(): void {
    const oldest = Date.now() - this.idleTimeoutMs;
    for (const [key, stack] of [...this.idle]) {
      while (stack.length > 0 && stack[0].idleSince <= oldest) stack.shift()!.destroy();
      if (stack.length === 0) this.idle.delete(key);
    }
    if (this.idleCount() === 0 && this.sweepTimer) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = null;
    }
  }

  private forget(conn: UpstreamConnection): void {
    this.all.delete(conn);
    const stack = this.idle.get(conn.target.key);
    if (!stack) return;
    const i = stack.indexOf(conn);
    if (i >= 0) stack.splice(i, 1);
  }

  private keepSession(key: string, session: Buffer): void {
    this.sessions.delete(key);
    if (this.sessions.size >= MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value as string);
    this.sessions.set(key, session);
  }
}
