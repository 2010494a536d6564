// The library's entry point: open the capture file, wire the bus to the store, start the proxy.
// The CLI is a thin layer over this; tests start hopscope the same way.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import type Database from 'better-sqlite3';
import { loadOrCreateCa } from './ca/ca-store.js';
import { LeafMinter } from './ca/leaf-minter.js';
import { Interception } from './net/interception.js';
import { makeTlsInterceptor } from './net/tls-intercept.js';
import { recordFailedTunnels } from './net/failed-tunnels.js';
import { CaptureBus } from './capture/bus.js';
import { IdAllocator } from './capture/ids.js';
import { defaultProxyConfig, type ProxyConfig } from './net/config.js';
import { ConnectionRegistry } from './net/connection-registry.js';
import { lookupWithMap } from './net/dialer.js';
import type { ProxyContext } from './net/proxy-context.js';
import { ProxyServer } from './net/proxy-server.js';
import { assertListenAllowed } from './net/proxy-auth-gate.js';
import { SocksListener } from './net/socks-listener.js';
import { ReverseListener } from './reverse/reverse-listener.js';
import { TlsProxyListener } from './net/tls-proxy-listener.js';
import { ResolveMap } from './net/resolve-map.js';
import { UpstreamPool } from './net/upstream-pool.js';
import { openStore } from './store/open-store.js';
import { SqliteSink } from './store/sqlite-sink.js';

export interface HopscopeOptions extends Partial<ProxyConfig> {
  /** Capture file path, or ':memory:'. */
  dbPath: string;
  /** Folder of the root CA (created on first use). Default: `ca` in the working directory. */
  caDir?: string;
  /** Decrypt TLS inside CONNECT tunnels (default true). */
  intercept?: boolean;
  /** Only these host globs are intercepted (default: all). */
  interceptHosts?: string[];
  /** These host globs are relayed blind. */
  passthroughHosts?: string[];
  /** Extra PEM files of roots trusted for upstreams, besides Node's store. */
  upstreamCaFiles?: string[];
  /** Turn off upstream certificate verification. */
  upstreamInsecure?: boolean;
  /** NSS key-log file for both TLS legs (default: $SSLKEYLOGFILE). */
  keylogFile?: string | null;
  /** One-line notices for the person at the terminal (e.g. a client rejecting the CA). */
  onNotice?: (message: string) => void;
}

export interface Hopscope {
  /** `http://HOST:PORT` of the proxy port, with the real port. */
  proxyUrl: string;
  address: AddressInfo;
  /** `socks5://HOST:PORT` of the SOCKS-only port (--socks), with the real port; null when not asked for. */
  socksUrl: string | null;
  socksAddress: AddressInfo | null;
  /** `http(s)://HOST:PORT` of the reverse-proxy listener (--reverse), with the real port; null when not asked for. */
  reverseUrl: string | null;
  reverseAddress: AddressInfo | null;
  /** `https://HOST:PORT` of the HTTPS proxy port (--listen-tls), with the real port; null when not asked for. */
  proxyTlsUrl: string | null;
  proxyTlsAddress: AddressInfo | null;
  bus: CaptureBus;
  db: Database.Database;
  /** The store's writer: the inspector listens to its `onCommitted` to broadcast committed rows. */
  sink: SqliteSink;
  registry: ConnectionRegistry;
  /** The root certificate clients must trust (PEM). */
  caCertPath: string;
  /** Writes everything captured so far to the file (tests use it before reading). */
  flush(): Promise<void>;
  /** Graceful stop: in-flight exchanges get the grace period, the store is flushed. */
  close(): Promise<void>;
}

export async function startHopscope(options: HopscopeOptions): Promise<Hopscope> {
  const config: ProxyConfig = { ...defaultProxyConfig, ...stripUndefined(options) };
  // Library users get the same protection as the command line: no open proxy by accident.
  assertListenAllowed(config.listenHost, config);
  if (config.socksListen) assertListenAllowed(config.socksListen.host, config, 'the SOCKS port');
  if (config.listenTls) assertListenAllowed(config.listenTls.host, config, 'the HTTPS proxy port');
  const ca = await loadOrCreateCa(resolvePath(options.caDir ?? 'ca'), { warn: options.onNotice });
  const upstreamCaPems = (options.upstreamCaFiles ?? []).map((file) => readFileSync(file));
  const interception = new Interception({
    minter: new LeafMinter(ca),
    enabled: options.intercept ?? true,
    interceptHosts: options.interceptHosts ?? [],
    passthroughHosts: options.passthroughHosts ?? [],
    upstreamCaPems,
    verifyUpstream: !options.upstreamInsecure,
    keylogFile: options.keylogFile === undefined ? process.env.SSLKEYLOGFILE || null : options.keylogFile,
    onCertRejected: (host) =>
      options.onNotice?.(
        `a client rejected hopscope's certificate for ${host}: it does not trust the hopscope CA. Trust ${ca.certPath} (run "hopscope ca" for how)`,
      ),
  });
  // One hopscope per capture file: a second one is refused here, with the first one's pid.
  const store = openStore(options.dbPath, { exclusive: true });
  const { db, lastIds } = store;
  const closeStore = () => {
    db.close();
    store.release();
  };
  const bus = new CaptureBus(lastIds.seq + 1);
  const sink = new SqliteSink(db, bus, {
    bodyCap: config.bodyCaptureLimit,
    h2FrameCap: config.h2FramesPerConnection,
    // A file is written from a worker thread; an in-memory capture only exists on this connection.
    ...(options.dbPath === ':memory:' ? {} : { workerPath: options.dbPath }),
    // Disk full, file gone read-only: said once per failing streak, and forwarding carries on.
    onError: (err) =>
      (options.onNotice ?? ((message: string) => process.emitWarning(message)))(
        `cannot write the capture file ${options.dbPath}: ${err.message}. Proxying continues; traffic is not recorded until the file can be written again`,
      ),
  });
  const resolveMap = new ResolveMap(config.resolve);
  const lookup = lookupWithMap(resolveMap);
  const ids = new IdAllocator(lastIds.connId, lastIds.exchangeId);
  recordFailedTunnels(bus, ids);
  const ctx: ProxyContext = {
    config,
    bus,
    ids,
    registry: new ConnectionRegistry(),
    resolveMap,
    lookup,
    upstreams: new UpstreamPool({
      lookup,
      connectTimeoutMs: config.connectTimeoutMs,
      secureContext: interception.upstreamContext,
      rejectUnauthorized: interception.verifyUpstream,
      onTlsSocket: (socket) => interception.watchKeylog(socket),
      maxHeadBytes: config.maxHeaderBytes,
    }),
    httpAgent: new http.Agent({ keepAlive: true, scheduling: 'lifo', lookup } as http.AgentOptions),
    httpsAgent: new https.Agent({
      keepAlive: true,
      scheduling: 'lifo',
      lookup,
      rejectUnauthorized: !options.upstreamInsecure,
      ...(upstreamCaPems.length > 0 ? { ca: [...tls.rootCertificates, ...upstreamCaPems] } : {}),
    } as https.AgentOptions),
  };
  const onTls = makeTlsInterceptor(interception);
  const server = new ProxyServer(ctx, onTls);
  const socks = config.socksListen ? new SocksListener(ctx, server, onTls) : null;
  const tlsProxy = config.listenTls ? new TlsProxyListener(ctx, server, interception, onTls) : null;
  const reverse = config.reverse && config.reverse.rules.length > 0
    ? new ReverseListener({
        ctx,
        config: config.reverse,
        recordConnection: (socket) => server.recordConnection(socket, 'reverse'),
        minter: interception.minter,
        watchKeylog: (socket) => interception.watchKeylog(socket),
        upstreamTls: {
          secureContext: interception.upstreamContext,
          rejectUnauthorized: interception.verifyUpstream,
          onTlsSocket: (socket) => interception.watchKeylog(socket),
        },
      })
    : null;
  /** Stops every front door (each stops accepting; server.close() ends their connections with the rest), then the store. */
  const stop = async (graceMs?: number) => {
    const socksClosed = socks?.close();
    const reverseClosed = reverse?.close(); // then its upstream sessions close
    const tlsProxyClosed = tlsProxy?.close(); // after a GOAWAY to its HTTP/2 clients
    await server.close(graceMs);
    await socksClosed;
    await reverseClosed;
    await tlsProxyClosed;
    ctx.upstreams.destroy();
    await sink.close();
    closeStore();
  };
  let address: AddressInfo;
  let reverseAddress: AddressInfo | null = null;
  let socksAddress: AddressInfo | null = null;
  let proxyTlsAddress: AddressInfo | null = null;
  try {
    address = await server.listen();
    if (reverse) {
      reverseAddress = await reverse.listen().catch((err: Error) => {
        throw new Error(`cannot start the reverse proxy on ${config.reverse!.listenHost}:${config.reverse!.listenPort}: ${err.message}`);
      });
    }
    if (socks && config.socksListen) socksAddress = await socks.listen(config.socksListen.host, config.socksListen.port);
    if (tlsProxy && config.listenTls) proxyTlsAddress = await tlsProxy.listen(config.listenTls.host, config.listenTls.port);
  } catch (err) {
    // Whatever did start is closed again: a failed start leaves no port open and the file unlocked.
    await stop(0);
    throw err;
  }
  let closing: Promise<void> | null = null;
  return {
    proxyUrl: `http://${formatHost(address.address)}:${address.port}`,
    address,
    socksUrl: socksAddress ? `socks5://${formatHost(socksAddress.address)}:${socksAddress.port}` : null,
    socksAddress,
    reverseUrl: reverseAddress ? `${config.reverse?.tls ? 'https' : 'http'}://${formatHost(reverseAddress.address)}:${reverseAddress.port}` : null,
    reverseAddress,
    proxyTlsUrl: proxyTlsAddress ? `https://${formatHost(proxyTlsAddress.address)}:${proxyTlsAddress.port}` : null,
    proxyTlsAddress,
    bus,
    db,
    sink,
    registry: ctx.registry,
    caCertPath: ca.certPath,
    flush: () => sink.flush(),
    close: () => (closing ??= stop()),
  };
}

function formatHost(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
