// What net/ knows about each open client connection, kept in records looked up by socket
// (never stored on the socket object itself). A connection is usually a net.Socket (or the
// TLSSocket of the HTTPS proxy port); a tunnel inside an HTTP/2 connection is its Http2Stream.
import type { Duplex } from 'node:stream';
import type { Failure } from '../capture/events.js';

export interface ConnectionRecord {
  id: number;
  socket: Duplex;
  /** The front door that accepted it (`proxy`, `proxy-tls`, `socks`, `reverse`). */
  listener: string;
  /** The first failure seen on the connection, reported when it closes. */
  error: Failure | null;
  /** HTTP exchanges on the active path that have not finished yet. */
  inFlight: number;
}

export class ConnectionRegistry {
  private readonly bySocket = new WeakMap<Duplex, ConnectionRecord>();
  private readonly open = new Set<ConnectionRecord>();
  private idleWaiters: Array<() => void> = [];

  add(id: number, socket: Duplex, listener: string): ConnectionRecord {
    const record = this.addNested(id, socket, listener);
    this.bySocket.set(socket, record);
    return record;
  }

  /** A connection nested in another one on the same socket (a tunnel inside the HTTPS proxy port's TLS): not found by socket. */
  addNested(id: number, socket: Duplex, listener: string): ConnectionRecord {
    const record: ConnectionRecord = { id, socket, listener, error: null, inFlight: 0 };
    this.open.add(record);
    return record;
  }

  get(socket: Duplex): ConnectionRecord | undefined {
    return this.bySocket.get(socket);
  }

  remove(record: ConnectionRecord): void {
    this.open.delete(record);
    this.notifyIfIdle();
  }

  get size(): number {
    return this.open.size;
  }

  records(): IterableIterator<ConnectionRecord> {
    return this.open.values();
  }

  exchangeStarted(record: ConnectionRecord): void {
    record.inFlight++;
  }

  exchangeEnded(record: ConnectionRecord): void {
    record.inFlight--;
    this.notifyIfIdle();
  }

  /** Resolves once no active-path exchange is in flight (tunnels do not count). */
  whenNoExchangesInFlight(): Promise<void> {
    if (this.inFlightTotal() === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private inFlightTotal(): number {
    let n = 0;
    for (const r of this.open) n += r.inFlight;
    return n;
  }

  private notifyIfIdle(): void {
    if (this.idleWaiters.length === 0 || this.inFlightTotal() > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
