// The library's entry point: open the capture file, wire the bus to the store, start the proxy.
// The CLI is a thin layer over this; tests start hopscope the same way.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type Database from 'better-sqlite3';
import { CaptureBus } from './capture/bus.js';
import { IdAllocator } from './capture/ids.js';
import { defaultProxyConfig, type ProxyConfig } from './net/config.js';
import { ConnectionRegistry } from './net/connection-registry.js';
import { lookupWithMap } from './net/dialer.js';
import type { ProxyContext } from './net/proxy-context.js';
import { ProxyServer } from './net/proxy-server.js';
import { ResolveMap } from './net/resolve-map.js';
import { openStore } from './store/open-store.js';
import { SqliteSink } from './store/sqlite-sink.js';

export interface HopscopeOptions extends Partial<ProxyConfig> {
  /** Capture file path, or ':memory:'. */
  dbPath: string;
  /** Upstream certificate checks for `https://` absolute-form requests (on unless turned off). */
  upstreamInsecure?: boolean;
}

export interface Hopscope {
  /** `http://HOST:PORT` of the proxy port, with the real port. */
  proxyUrl: string;
  address: AddressInfo;
  bus: CaptureBus;
  db: Database.Database;
  /** The store's writer: the inspector listens to its `onCommitted` to broadcast committed rows. */
  sink: SqliteSink;
  registry: ConnectionRegistry;
  /** Writes everything captured so far to the file (tests use it before reading). */
  flush(): void;
  /** Graceful stop: in-flight exchanges get the grace period, the store is flushed. */
  close(): Promise<void>;
}

export async function startHopscope(options: HopscopeOptions): Promise<Hopscope> {
  const config: ProxyConfig = { ...defaultProxyConfig, ...stripUndefined(options) };
  const { db, lastIds } = openStore(options.dbPath);
  const bus = new CaptureBus(lastIds.seq + 1);
  const sink = new SqliteSink(db, bus, { bodyCap: config.bodyCaptureLimit });
  const resolveMap = new ResolveMap(config.resolve);
  const lookup = lookupWithMap(resolveMap);
  const ctx: ProxyContext = {
    config,
    bus,
    ids: new IdAllocator(lastIds.connId, lastIds.exchangeId),
    registry: new ConnectionRegistry(),
    resolveMap,
    lookup,
    httpAgent: new http.Agent({ keepAlive: true, scheduling: 'lifo', lookup } as http.AgentOptions),
    httpsAgent: new https.Agent({
      keepAlive: true,
      scheduling: 'lifo',
      lookup,
      rejectUnauthorized: !options.upstreamInsecure,
    } as https.AgentOptions),
  };
  const server = new ProxyServer(ctx);
  let address: AddressInfo;
  try {
    address = await server.listen();
  } catch (err) {
    await sink.close();
    db.close();
    throw err;
  }
  let closing: Promise<void> | null = null;
  return {
    proxyUrl: `http://${formatHost(address.address)}:${address.port}`,
    address,
    bus,
    db,
    sink,
    registry: ctx.registry,
    flush: () => sink.flush(),
    close: () =>
      (closing ??= (async () => {
        await server.close();
        await sink.close();
        db.close();
      })()),
  };
}

function formatHost(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
