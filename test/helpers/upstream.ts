// Real upstream servers on loopback that record exactly what they received.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  url: string;
  httpVersion: string;
  rawHeaders: string[];
  body: Buffer;
  trailers: string[];
  socketId: number;
}

export interface TestUpstream {
  port: number;
  received: ReceivedRequest[];
  /** For TLS upstreams: what each accepted handshake negotiated. */
  handshakes: Array<{ alpn: string | false; servername: string | false }>;
  /** Distinct TCP connections the server accepted. */
  connections: number;
  close(): Promise<void>;
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void;

const fixture = (name: string) => readFileSync(fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url)));
export const upstreamCaPem = fixture('upstream-ca.pem');
export const upstreamTls = { key: fixture('upstream-key.pem'), cert: fixture('upstream-cert.pem') };
export const expiredTls = { key: fixture('expired-key.pem'), cert: fixture('expired-cert.pem') };
export const selfSignedTls = { key: fixture('self-signed-key.pem'), cert: fixture('self-signed-cert.pem') };
export const upstreamCaFile = fileURLToPath(new URL('../fixtures/upstream-ca.pem', import.meta.url));

export type UpstreamTlsOptions = https.ServerOptions;

/** An HTTP (or, with `tls`, HTTPS) server; the handler runs after the whole request body arrived. */
export async function startUpstream(handler: Handler, options: { tls?: boolean | UpstreamTlsOptions } = {}): Promise<TestUpstream> {
  const received: ReceivedRequest[] = [];
  const handshakes: TestUpstream['handshakes'] = [];
  const sockets = new Set<net.Socket>();
  const socketIds = new WeakMap<net.Socket, number>();
  const state = { connections: 0 };
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      received.push({
        method: req.method ?? '',
        url: req.url ?? '',
        httpVersion: req.httpVersion,
        rawHeaders: req.rawHeaders,
        body,
        trailers: req.rawTrailers,
        socketId: socketIds.get(req.socket) ?? -1,
      });
      handler(req, res, body);
    });
  };
  const tlsOptions = options.tls === true ? upstreamTls : options.tls || null;
  const server = tlsOptions ? https.createServer(tlsOptions, onRequest) : http.createServer(onRequest);
  server.on(tlsOptions ? 'secureConnection' : 'connection', (socket: net.Socket) => {
    socketIds.set(socket, ++state.connections);
    if (tlsOptions) {
      const secure = socket as import('node:tls').TLSSocket;
      handshakes.push({ alpn: secure.alpnProtocol ?? false, servername: (secure as { servername?: string | false }).servername ?? false });
    }
  });
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    received,
    handshakes,
    get connections() {
      return state.connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A raw TCP server whose connection handler gets the socket as is. */
export async function startTcpServer(onSocket: (socket: net.Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onSocket(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A loopback port that nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export function headerPairs(raw: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i], raw[i + 1]]);
  return out;
}
