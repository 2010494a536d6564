// Agents that reach every host through an HTTP proxy with CONNECT: plain HTTP is sent in origin
// form inside the tunnel, HTTPS does its TLS handshake inside it. One mechanism for both keeps the
// agent small and uses only documented Agent hooks (createConnection with a callback).
// This file runs inside the user's Node processes (see register.ts): Node built-ins only.
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { proxyFor, readProxyEnv, type ProxyEnv } from './no-proxy.js';

type ConnectCallback = (err: Error | null, stream: Duplex) => void;

/** Connects to the proxy itself. Not `agent: false`: Node would build that from the global agent's class. */
const directAgent = new http.Agent();

/** `CONNECT host:port` through `proxy`; resolves with the tunnel socket once the proxy said 2xx. */
export function connectThroughProxy(proxy: URL, host: string, port: number): Promise<net.Socket> {
  const authority = `${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
  const headers: Record<string, string> = { Host: authority };
  if (proxy.username) {
    const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
    headers['Proxy-Authorization'] = `Basic ${Buffer.from(credentials).toString('base64')}`;
  }
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: proxy.hostname.replace(/^\[|\]$/g, ''),
      port: Number(proxy.port) || 80,
      method: 'CONNECT',
      path: authority,
      headers,
      agent: directAgent,
    });
    req.once('connect', (res: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      if (res.statusCode === undefined || res.statusCode < 200 || res.statusCode > 299) {
        socket.destroy();
        reject(new Error(`proxy ${proxy.host} refused CONNECT ${authority}: ${res.statusCode} ${res.statusMessage ?? ''}`.trim()));
        return;
      }
      if (head.length > 0) socket.unshift(head);
      resolve(socket);
    });
    req.once('error', reject);
    req.end();
  });
}

export interface TunnellingAgentOptions extends https.AgentOptions {
  /** Where to send what; default: read from this process's environment. */
  proxyEnv?: ProxyEnv;
}

const targetOf = (options: http.ClientRequestArgs, defaultPort: number) => ({
  host: options.host ?? options.hostname ?? 'localhost',
  port: Number(options.port) || defaultPort,
});

/**
 * http.Agent whose connections go through the proxy. Its constructor takes no required argument:
 * Node builds `new globalAgent.constructor()` for requests made with `agent: false`.
 */
export class TunnellingHttpAgent extends http.Agent {
  private readonly proxyEnv: ProxyEnv;

  constructor(options: TunnellingAgentOptions = {}) {
    const { proxyEnv, ...agentOptions } = options;
    super(agentOptions);
    this.proxyEnv = proxyEnv ?? readProxyEnv(process.env);
  }

  override createConnection(options: http.ClientRequestArgs, callback?: ConnectCallback): Duplex | null | undefined {
    const { host, port } = targetOf(options, 80);
    const proxy = options.socketPath ? null : proxyFor(this.proxyEnv, 'http', host, port);
    if (!proxy || !callback) return super.createConnection(options, callback);
    connectThroughProxy(proxy, host, port).then(
      (socket) => callback(null, socket),
      (err: Error) => callback(err, undefined as unknown as Duplex),
    );
    return undefined;
  }
}

export class TunnellingHttpsAgent extends https.Agent {
  private readonly proxyEnv: ProxyEnv;

  constructor(options: TunnellingAgentOptions = {}) {
    const { proxyEnv, ...agentOptions } = options;
    super(agentOptions);
    this.proxyEnv = proxyEnv ?? readProxyEnv(process.env);
  }

  override createConnection(options: https.RequestOptions, callback?: ConnectCallback): Duplex | null | undefined {
    const { host, port } = targetOf(options, 443);
    const proxy = options.socketPath ? null : proxyFor(this.proxyEnv, 'https', host, port);
    if (!proxy || !callback) return super.createConnection(options, callback);
    connectThroughProxy(proxy, host, port).then(
      (socket) => {
        let tlsSocket: Duplex | null | undefined;
        try {
          // https.Agent's own createConnection runs tls.connect over the tunnel, keeping its session cache.
          tlsSocket = super.createConnection({ ...options, socket } as https.RequestOptions);
        } catch (err) {
          socket.destroy();
          callback(err as Error, undefined as unknown as Duplex);
          return;
        }
        callback(null, tlsSocket!);
      },
      (err: Error) => callback(err, undefined as unknown as Duplex),
    );
    return undefined;
  }
}

type RequestFn = typeof http.request;

/**
 * Requests that bring their own `createConnection` and no agent (the `ws` client does) bypass
 * every agent; wraps `request` and `get` of the module so such requests are tunnelled too.
 */
export function tunnelOwnConnections(mod: typeof http | typeof https, scheme: 'http' | 'https', proxyEnv: ProxyEnv): void {
  const original = mod.request as RequestFn;
  const wrapped = function request(this: unknown, ...args: unknown[]) {
    const index = args.findIndex((a) => a !== null && typeof a === 'object' && !(a instanceof URL));
    const options = args[index] as (http.RequestOptions & { createConnection?: unknown }) | undefined;
    if (options && typeof options.createConnection === 'function' && (options.agent === undefined || options.agent === null)) {
      args[index] = { ...options, createConnection: tunnelled(options.createConnection as OwnConnect, scheme, proxyEnv) };
    }
    return (original as (...a: unknown[]) => http.ClientRequest).apply(this, args);
  } as RequestFn;
  mod.request = wrapped;
  mod.get = function get(this: unknown, ...args: unknown[]) {
    const req = (wrapped as (...a: unknown[]) => http.ClientRequest).apply(this, args);
    req.end();
    return req;
  } as typeof http.get;
}

type OwnConnect = (options: http.ClientRequestArgs, callback?: ConnectCallback) => Duplex | null | undefined;

function tunnelled(own: OwnConnect, scheme: 'http' | 'https', proxyEnv: ProxyEnv): OwnConnect {
  return (options, callback) => {
    const { host, port } = targetOf(options, scheme === 'https' ? 443 : 80);
    const proxy = options.socketPath ? null : proxyFor(proxyEnv, scheme, host, port);
    if (!proxy || !callback) return own(options, callback);
    connectThroughProxy(proxy, host, port).then(
      // For https the caller's own connect runs over the tunnel (tls.connect honours `socket`).
      (socket) => callback(null, scheme === 'https' ? own({ ...options, socket } as http.ClientRequestArgs)! : socket),
      (err: Error) => callback(err, undefined as unknown as Duplex),
    );
    return undefined;
  };
}
