// Streams a capture out as HAR 1.2: the JSON is written piece by piece to a Writable, waiting for
// it to drain, so memory holds one page of exchange summaries and one exchange at a time however
// large the capture is.
//
// Exchanges are read one by one with getExchange between pages of listExchanges rather than with
// iterateExchanges: an open iterator keeps the database connection busy, and the export waits on
// the output between rows, which would block the live sink's writes and the connection look-ups
// on the same connection for as long as the reader of the HAR takes.
import { readFileSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type Database from 'better-sqlite3';
import { getConnection, getExchange, listExchanges } from '../store/queries.js';
import type { ConnectionDetail, ExchangeDetail, ExchangeFilter } from '../store/row-types.js';
import { toHarEntry } from './har-entry.js';
import type { HarCreator } from './har-types.js';
import { webSocketMessagePages, webSocketOf } from './ws-messages.js';
import { LruMap } from '../util/lru-map.js';

export interface WriteHarOptions {
  /** Which exchanges, decided by the store (ids, host, method, status, URL substring). */
  filter?: ExchangeFilter;
  /** A further test on each full exchange (e.g. a compiled filter expression). */
  predicate?: (exchange: ExchangeDetail) => boolean;
  creator?: HarCreator;
  /** Exchange summaries read per query. Default 500. */
  pageSize?: number;
  /** Text gathered before it is written. Default 64 KiB. */
  chunkSize?: number;
  signal?: AbortSignal;
}

export interface WriteHarResult {
  entries: number;
}

const CONNECTION_CACHE = 256;
const WS_TAIL = '"_webSocketMessages":[]}';

export function hopscopeCreator(): HarCreator {
  let version = '0.0.0';
  try {
    // src/export and dist/export are both two levels below the package root.
    version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    // A bundled or relocated copy: keep the placeholder.
  }
  return { name: 'hopscope', version };
}

/**
 * Writes the HAR document of the capture in `db` to `out` and resolves when the last piece was
 * accepted by `out` (the caller ends or keeps `out`). Exchanges committed after the export began
 * are left out, so a live capture exports a consistent set.
 */
export async function writeHar(db: Database.Database, out: Writable, options: WriteHarOptions = {}): Promise<WriteHarResult> {
  const pageSize = options.pageSize ?? 500;
  const chunkSize = options.chunkSize ?? 64 * 1024;
  const newest = listExchanges(db, { limit: 1, order: 'newest' })[0]?.id ?? 0;
  const beforeId = Math.min(newest + 1, options.filter?.beforeId ?? Infinity);
  const connections = new ConnectionCache(db, CONNECTION_CACHE);
  const creator = options.creator ?? hopscopeCreator();
  const output = new ChunkedOutput(out, chunkSize);

  await output.add(`{"log":{"version":"1.2","creator":${JSON.stringify(creator)},"pages":[],"entries":[`);
  let entries = 0;
  let afterId = options.filter?.afterId ?? 0;
  for (;;) {
    options.signal?.throwIfAborted();
    const page = listExchanges(db, { ...options.filter, afterId, beforeId, limit: pageSize, order: 'oldest' });
    if (page.length === 0) break;
    for (const summary of page) {
      const exchange = getExchange(db, summary.id);
      if (!exchange || (options.predicate && !options.predicate(exchange))) continue;
      const webSocket = webSocketOf(db, exchange);
      const entry = toHarEntry(exchange, { connection: connections.get(exchange.connectionId), webSocket });
      const json = JSON.stringify(entry);
      const separator = entries === 0 ? '\n' : ',\n';
      entries++;
      if (!webSocket) {
        await output.add(`${separator}${json}`);
        continue;
      }
      // `_webSocketMessages` is the entry's last field, written empty: stream the messages into it.
      if (!json.endsWith(WS_TAIL)) throw new Error('internal: _webSocketMessages is not the last field of the entry');
      await output.add(`${separator}${json.slice(0, -WS_TAIL.length)}"_webSocketMessages":[`);
      let first = true;
      for (const page of webSocketMessagePages(db, exchange.id)) {
        for (const message of page) {
          await output.add(`${first ? '' : ','}${JSON.stringify(message)}`);
          first = false;
        }
      }
      await output.add(']}');
    }
    afterId = page[page.length - 1].id;
    // Let other work (the proxy, the inspector) run between pages even when `out` never pushes back.
    await nextTurn();
  }
  await output.add(`${entries === 0 ? '' : '\n'}]}}\n`);
  await output.flush();
  return { entries };
}

/** Gathers text into chunks of about `size` and writes them, waiting for `drain` when told to. */
class ChunkedOutput {
  private pending: string[] = [];
  private pendingLength = 0;

  constructor(
    private readonly out: Writable,
    private readonly size: number,
  ) {}

  async add(text: string): Promise<void> {
    this.pending.push(text);
    this.pendingLength += text.length;
    if (this.pendingLength >= this.size) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const chunk = this.pending.join('');
    this.pending = [];
    this.pendingLength = 0;
    if (this.out.errored) throw this.out.errored;
    if (this.out.destroyed || this.out.writableEnded) throw new Error('the HAR output was closed before the export finished');
    if (!this.out.write(chunk)) await drained(this.out);
  }
}

/** Resolves on `drain`; rejects if the stream errors or closes first. */
function drained(out: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = (err?: Error) => {
      out.off('drain', onDrain);
      out.off('error', onError);
      out.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => settle();
    const onError = (err: Error) => settle(err);
    const onClose = () => settle(out.errored ?? new Error('the HAR output was closed before the export finished'));
    out.on('drain', onDrain);
    out.on('error', onError);
    out.on('close', onClose);
  });
}

/** The last few connections looked up: consecutive exchanges mostly share one. */
class ConnectionCache {
  private readonly map: LruMap<number, ConnectionDetail | null>;

  constructor(
    private readonly db: Database.Database,
    limit: number,
  ) {
    this.map = new LruMap(limit);
  }

  get(id: number): ConnectionDetail | null {
    const cached = this.map.get(id);
    if (cached !== undefined) return cached;
    const conn = getConnection(this.db, id);
    this.map.set(id, conn);
    return conn;
  }
}
