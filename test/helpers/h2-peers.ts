// Real HTTP/2 peers for tests: a Node http2 server (TLS with ALPN h2, or cleartext h2c) and a Node
// http2 client session through a CONNECT tunnel of the proxy (TLS trusting the hopscope CA, or h2c
// with prior knowledge), plus a helper that runs one request and collects what the client got.
import http2 from 'node:http2';
import tls from 'node:tls';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import { openTunnel } from './clients.js';
import { upstreamTls } from './upstream.js';

export interface H2Upstream {
  port: number;
  server: http2.Http2Server | http2.Http2SecureServer;
  sessions: Set<http2.ServerHttp2Session>;
  close(): Promise<void>;
}

export type StreamHandler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, session: http2.ServerHttp2Session) => void;

export async function startH2Upstream(
  onStream: StreamHandler,
  options: { tls?: boolean; settings?: http2.Settings } = {},
): Promise<H2Upstream> {
  const server = options.tls === false
    ? http2.createServer({ settings: options.settings })
    : http2.createSecureServer({ ...upstreamTls, settings: options.settings });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.on('error', () => {});
    session.once('close', () => sessions.delete(session));
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    onStream(stream, headers, stream.session as http2.ServerHttp2Session);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    server,
    sessions,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** An HTTP/2 client session to `host:port` through the proxy: TLS trusting `caPem`, or h2c. */
export async function connectThroughProxy(
  proxy: { host: string; port: number },
  host: string,
  port: number,
  options: { caPem?: string; settings?: http2.Settings } = {},
): Promise<http2.ClientHttp2Session> {
  const raw = await openTunnel(proxy, `${host}:${port}`);
  const h2c = options.caPem === undefined;
  const session = http2.connect(`${h2c ? 'http' : 'https'}://${host}:${port}`, {
    settings: options.settings,
    createConnection: () =>
      h2c ? (raw as net.Socket) : tls.connect({ socket: raw, servername: host, ca: options.caPem, ALPNProtocols: ['h2'] }),
  });
  session.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve());
    session.once('error', reject);
  });
  return session;
}

export interface H2Result {
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders | null;
  /** Set when the stream ended with an error (reset, GOAWAY). */
  error: (Error & { code?: string }) | null;
  rstCode: number;
}

/** Sends one request and collects the response, its trailers, or how the stream failed. */
export function h2Request(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body?: Buffer | string,
  options: { waitForTrailers?: (stream: http2.ClientHttp2Stream) => void; onResponse?: (stream: http2.ClientHttp2Stream) => void } = {},
): Promise<H2Result> {
  return new Promise((resolve) => {
    const stream = session.request(headers, { endStream: body === undefined, waitForTrailers: options.waitForTrailers !== undefined });
    if (options.waitForTrailers) stream.on('wantTrailers', () => options.waitForTrailers!(stream));
    const chunks: Buffer[] = [];
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | null = null;
    let error: H2Result['error'] = null;
    stream.on('response', (h) => {
      responseHeaders = h;
      options.onResponse?.(stream);
    });
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', (err) => (error = err));
    stream.on('close', () => resolve({ headers: responseHeaders, body: Buffer.concat(chunks), trailers, error, rstCode: stream.rstCode ?? 0 }));
    if (body !== undefined) stream.end(body);
  });
}
