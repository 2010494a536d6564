// Real WebSocket peers for tests: a `ws` server (plain or TLS) that records what it received and
// obeys a few commands, and `ws` clients that reach it through the proxy on each path:
//   1. absolute-form `GET http://…` with Upgrade on the proxy port,
//   2. ws:// inside a CONNECT tunnel,
//   3. wss:// inside a CONNECT tunnel, TLS intercepted.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { openTunnel } from './clients.js';
import { upstreamTls } from './upstream.js';

export type WsPath = 'absolute-form' | 'connect' | 'connect-tls';

export interface ReceivedMessage {
  data: Buffer;
  binary: boolean;
}

export interface ServerPeer {
  socket: WebSocket;
  request: http.IncomingMessage;
  received: ReceivedMessage[];
  pings: Buffer[];
  /** Resolves with the close code and reason the server saw. */
  closed: Promise<{ code: number; reason: string }>;
}

export interface TestWsServer {
  port: number;
  peers: ServerPeer[];
  /** Resolves with the next peer to connect (or the last one if it already has). */
  nextPeer(): Promise<ServerPeer>;
  close(): Promise<void>;
}

export interface WsServerOptions {
  tls?: boolean;
  perMessageDeflate?: boolean;
  /** Refuse every handshake with this status. */
  refuseWith?: number;
}

/**
 * Echoes every message back as it came (text or binary). Text commands: `fragments` answers with a
 * binary message in three fragments, `close CODE REASON` closes, `ping DATA` pings, `terminate`
 * drops the TCP connection, `reset` resets it.
 */
export async function startWsServer(options: WsServerOptions = {}): Promise<TestWsServer> {
  const server = options.tls ? https.createServer(upstreamTls) : http.createServer();
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  const wss = new WebSocketServer({
    server,
    perMessageDeflate: options.perMessageDeflate ? { threshold: 0 } : false,
    ...(options.refuseWith ? { verifyClient: (_info: unknown, done: (ok: boolean, code?: number) => void) => done(false, options.refuseWith) } : {}),
  } as ConstructorParameters<typeof WebSocketServer>[0]);
  const peers: ServerPeer[] = [];
  let waiters: Array<(peer: ServerPeer) => void> = [];
  wss.on('connection', (socket: WebSocket, request: http.IncomingMessage) => {
    const peer: ServerPeer = {
      socket,
      request,
      received: [],
      pings: [],
      closed: new Promise((resolve) => socket.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() }))),
    };
    socket.on('error', () => {});
    socket.on('ping', (data: Buffer) => peer.pings.push(data));
    socket.on('message', (data: RawData, binary: boolean) => {
      const bytes = toBuffer(data);
      peer.received.push({ data: bytes, binary });
      if (!binary) {
        const text = bytes.toString();
        const close = /^close (\d+) ?(.*)$/.exec(text);
        if (close) return socket.close(Number(close[1]), close[2]);
        if (text === 'fragments') {
          socket.send(Buffer.from('first-'), { binary: true, fin: false });
          socket.send(Buffer.from('second-'), { binary: true, fin: false });
          return socket.send(Buffer.from('third'), { binary: true, fin: true });
        }
        if (text.startsWith('ping ')) return socket.ping(text.slice(5));
        if (text === 'terminate') return socket.terminate();
        if (text === 'reset') return (request.socket as net.Socket).resetAndDestroy();
      }
      socket.send(bytes, { binary });
    });
    peers.push(peer);
    for (const w of waiters) w(peer);
    waiters = [];
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  let taken = 0;
  return {
    port: (server.address() as AddressInfo).port,
    peers,
    nextPeer: () => (peers.length > taken ? Promise.resolve(peers[taken++]) : new Promise((resolve) => waiters.push((p) => (taken++, resolve(p))))),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        wss.close();
        server.close(() => resolve());
      }),
  };
}

export function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** Sends absolute-form requests to the proxy: what an HTTP proxy client does for ws:// (path 1). */
export function absoluteFormAgent(proxy: { host: string; port: number }): http.Agent {
  type AddRequest = (req: http.ClientRequest, options: http.RequestOptions) => void;
  const agent = new http.Agent({ keepAlive: false }) as http.Agent & { addRequest: AddRequest };
  const addRequest = agent.addRequest.bind(agent);
  agent.addRequest = (req, options) => {
    req.path = `http://${req.getHeader('host')}${req.path}`;
    addRequest(req, { ...options, host: proxy.host, port: proxy.port });
  };
  return agent;
}

/** The TCP connection to the proxy of each tunnelling agent (beneath TLS for wss://). */
const tunnels = new WeakMap<http.Agent, net.Socket>();

/** Opens each connection as a CONNECT tunnel through the proxy, with TLS inside for wss:// (paths 2 and 3). */
function tunnelAgent(proxy: { host: string; port: number }, ca: string | null): http.Agent {
  const createConnection = function (this: http.Agent, options: tls.ConnectionOptions & { host?: string; port?: number }, done?: (err: Error | null, socket?: net.Socket) => void): undefined {
    openTunnel(proxy, `${options.host}:${options.port}`).then(
      (raw) => {
        tunnels.set(this, raw);
        if (!ca) return done?.(null, raw.resume()); // openTunnel left it paused
        const secure = tls.connect({ socket: raw, servername: options.servername ?? options.host, ca });
        secure.once('secureConnect', () => done?.(null, secure));
        secure.once('error', (err) => done?.(err));
      },
      (err: Error) => done?.(err),
    );
    return undefined;
  };
  const agent = ca ? new https.Agent({ keepAlive: false }) : new http.Agent({ keepAlive: false });
  (agent as unknown as { createConnection: typeof createConnection }).createConnection = createConnection;
  return agent;
}

export interface ClientOptions {
  path: WsPath;
  proxy: { host: string; port: number };
  /** The hopscope CA (PEM), for path 3. */
  ca?: string;
  host: string;
  port: number;
  urlPath?: string;
  perMessageDeflate?: boolean;
}

export function wsUrl(o: Pick<ClientOptions, 'path' | 'host' | 'port' | 'urlPath'>): string {
  return `${o.path === 'connect-tls' ? 'wss' : 'ws'}://${o.host}:${o.port}${o.urlPath ?? '/chat'}`;
}

/** A `ws` client going through the proxy on the given path; not yet open. */
export function connectClient(o: ClientOptions): WebSocket {
  const agent = o.path === 'absolute-form' ? absoluteFormAgent(o.proxy) : tunnelAgent(o.proxy, o.path === 'connect-tls' ? (o.ca ?? null) : null);
  const socket = new WebSocket(wsUrl(o), { agent, perMessageDeflate: o.perMessageDeflate ? { threshold: 0 } : false });
  socket.on('error', () => {});
  agents.set(socket, agent);
  return socket;
}

const agents = new WeakMap<WebSocket, http.Agent>();

/** The client's TCP connection to the proxy, beneath any TLS. */
export function tcpOf(socket: WebSocket): net.Socket {
  const agent = agents.get(socket);
  const tunnel = agent ? tunnels.get(agent) : undefined;
  if (tunnel) return tunnel;
  return (socket as unknown as { _socket: net.Socket })._socket;
}

/** Collects what a client receives, and resolves each expectation as it arrives. */
export class ClientLog {
  readonly messages: ReceivedMessage[] = [];
  readonly pongs: Buffer[] = [];
  readonly pings: Buffer[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: Array<() => void> = [];

  constructor(readonly socket: WebSocket) {
    socket.on('message', (data: RawData, binary: boolean) => {
      this.messages.push({ data: toBuffer(data), binary });
      this.wake();
    });
    socket.on('pong', (data: Buffer) => {
      this.pongs.push(data);
      this.wake();
    });
    socket.on('ping', (data: Buffer) => {
      this.pings.push(data);
      this.wake();
    });
    this.closed = new Promise((resolve) => socket.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })));
  }

  /** Resolves once the check passes (checked after every message, pong and ping). */
  async until(check: () => boolean): Promise<void> {
    while (!check()) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

export function opened(socket: WebSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('unexpected-response', (_req: http.ClientRequest, res: http.IncomingMessage) => reject(new Error(`unexpected response ${res.statusCode}`)));
    socket.once('error', reject);
  });
}

/** Resolves with the status and body of a refused handshake. */
export function refused(socket: WebSocket): Promise<{ status: number; body: string; headers: string[] }> {
  return new Promise((resolve, reject) => {
    socket.once('open', () => reject(new Error('the handshake was not refused')));
    socket.once('unexpected-response', (_req: http.ClientRequest, res: http.IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8').on('data', (t: string) => (body += t));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.rawHeaders }));
    });
  });
}
