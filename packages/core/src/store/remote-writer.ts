// The main-thread side of the writer worker: batches go to a worker thread that owns its own
// SQLite connection, so a large transaction (1 MiB bodies, thousands of rows) never holds up the
// thread that forwards traffic. Results come back in order.
import { Worker } from 'node:worker_threads';
import type { QueueItem, Touched } from './batch-writer.js';
import { encodeBatch } from './batch-codec.js';

export interface RemoteResult {
  touched: Touched | null;
  /** Set when the whole batch failed (e.g. disk full, read-only file). */
  error?: string;
  /** Events skipped one by one (e.g. a duplicate id). */
  eventErrors: string[];
}

export class RemoteWriter {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly waiting = new Map<number, (result: RemoteResult) => void>();
  private last: Promise<unknown> = Promise.resolve();
  private exited: Promise<void>;

  constructor(path: string) {
    this.worker = startWorker(new URL(import.meta.url.endsWith('.ts') ? './writer-worker.ts' : './writer-worker.js', import.meta.url), { path });
    this.worker.on('message', (message: RemoteResult & { id: number }) => {
      const resolve = this.waiting.get(message.id);
      this.waiting.delete(message.id);
      resolve?.(message);
    });
    this.worker.on('error', (err) => this.failAll(`capture writer stopped: ${err.message}`));
    this.exited = new Promise((resolve) => this.worker.once('exit', () => {
      this.failAll('capture writer exited');
      resolve();
    }));
  }

  write(batch: QueueItem[]): Promise<RemoteResult> {
    const id = this.nextId++;
    const encoded = encodeBatch(batch);
    const result = new Promise<RemoteResult>((resolve) => this.waiting.set(id, resolve));
    this.worker.postMessage({ id, batch: encoded }, [encoded.bytes]);
    this.last = result;
    return result;
  }

  /** Resolves once every batch written so far has been answered. */
  async settled(): Promise<void> {
    await this.last;
  }

  async close(): Promise<void> {
    await this.settled();
    this.worker.postMessage({ close: true });
    await this.exited;
  }

  private failAll(error: string): void {
    for (const resolve of this.waiting.values()) resolve({ touched: null, error, eventErrors: [] });
    this.waiting.clear();
  }
}

/**
 * Once built, the worker is plain JavaScript. Run from source (tests and the benchmark go
 * through tsx), a worker thread does not inherit tsx's loader, so it registers it first.
 */
function startWorker(entry: URL, workerData: unknown): Worker {
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry, { workerData });
  const bootstrap = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(bootstrap, { eval: true, workerData });
}
