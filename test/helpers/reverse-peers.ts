// Backends for the reverse-proxy tests: an HTTP/1.1 server and HTTP/2-only servers (TLS without
// allowHTTP1, and h2c), all answering the same way by the last path segment, recording what they got:
//   /echo       the request body back, with x-got-host, x-got-cookie and x-got-path
//   /trailers   "abc" then trailer x-checksum: 42 (and echoes the request's trailers as x-got-*)
//   /trailers-length  the same with Content-Length: 3 (HTTP/2 backends)
//   /hints      a 103 Early Hints, then 200
//   /head       "hello" with Content-Length (for HEAD)
//   /not-modified  304
//   /reset      half a body, then the connection (HTTP/1.1) or stream (HTTP/2) is reset
//   anything else: "<name> <path>"
import http from 'node:http';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { upstreamTls } from './upstream.js';

export interface BackendRequest {
  method: string;
  path: string;
  /** Raw header list as received, HTTP/2 pseudo-headers included. */
  headers: Array<[string, string]>;
  body: Buffer;
  trailers: Array<[string, string]>;
}

export interface Backend {
  port: number;
  name: string;
  received: BackendRequest[];
  close(): Promise<void>;
}

function pairs(raw: readonly string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i], String(raw[i + 1])]);
  return out;
}

/** Backends answer by the last path segment, whatever prefix routed the request to them. */
const lastSegment = (target: string) => `/${target.split('?')[0].split('/').pop()}`;

const headerOf = (headers: Array<[string, string]>, name: string) =>
  headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v).join(' | ');

export async function startH1Backend(name = 'h1'): Promise<Backend> {
  const received: BackendRequest[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: BackendRequest = { method: req.method ?? '', path: req.url ?? '', headers: pairs(req.rawHeaders), body: Buffer.concat(chunks), trailers: pairs(req.rawTrailers) };
      received.push(r);
      const path = lastSegment(req.url ?? '');
      if (path === '/echo') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-got-host': headerOf(r.headers, 'host'), 'x-got-cookie': headerOf(r.headers, 'cookie'), 'x-got-path': r.path });
        return res.end(r.body);
      }
      if (path === '/trailers') {
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum', 'x-got-trailers': r.trailers.map(([n, v]) => `${n}=${v}`).join(',') });
        res.write('abc');
        res.addTrailers({ 'x-checksum': '42' });
        return res.end();
      }
      if (path === '/hints') {
        res.writeEarlyHints({ link: '</style.css>; rel=preload' });
        return res.end('after hints');
      }
      if (path === '/head') {
        res.writeHead(200, { 'content-length': '5', 'content-type': 'text/plain' });
        return res.end(req.method === 'HEAD' ? undefined : 'hello');
      }
      if (path === '/not-modified') {
        res.writeHead(304, { etag: '"v1"' });
        return res.end();
      }
      if (path === '/reset') {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100000' });
        res.write(Buffer.alloc(1000, 0x61));
        return setImmediate(() => (req.socket as net.Socket).resetAndDestroy());
      }
      res.writeHead(200, { 'content-type': 'text/plain', 'set-cookie': ['a=1', 'b=2'] });
      res.end(`${name} ${r.path}`);
    });
  });
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    name,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** An HTTP/2-only server: TLS with ALPN h2 and no HTTP/1.1 fallback, or h2c (prior knowledge). */
export async function startH2Backend(options: { tls: boolean; name?: string; settings?: http2.Settings }): Promise<Backend & { server: http2.Http2Server | http2.Http2SecureServer }> {
  const name = options.name ?? (options.tls ? 'h2' : 'h2c');
  const received: BackendRequest[] = [];
  const limits = { settings: options.settings, maxHeaderListPairs: 1024 };
  const server = options.tls ? http2.createSecureServer({ ...upstreamTls, ...limits }) : http2.createServer(limits);
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s: http2.ServerHttp2Session) => {
    sessions.add(s);
    s.on('error', () => {});
    s.once('close', () => sessions.delete(s));
  });
  server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, raw: string[]) => {
    stream.on('error', () => {});
    if (headers[':method'] === 'CONNECT') return; // left to the WebSocket tests' own handler
    const chunks: Buffer[] = [];
    let trailers: Array<[string, string]> = [];
    stream.on('trailers', (_t: unknown, _f: unknown, rawTrailers: string[]) => (trailers = pairs(rawTrailers)));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const r: BackendRequest = { method: String(headers[':method']), path: String(headers[':path']), headers: pairs(raw), body: Buffer.concat(chunks), trailers };
      received.push(r);
      const path = lastSegment(r.path);
      if (path === '/echo') {
        stream.respond({ ':status': 200, 'content-type': 'application/octet-stream', 'x-got-host': headerOf(r.headers, ':authority'), 'x-got-cookie': headerOf(r.headers, 'cookie'), 'x-got-path': r.path });
        return stream.end(r.body);
      }
      if (path === '/trailers' || path === '/trailers-length') {
        const length = path === '/trailers-length' ? { 'content-length': '3' } : {};
        stream.respond({ ':status': 200, 'content-type': 'text/plain', ...length, 'x-got-trailers': r.trailers.map(([n, v]) => `${n}=${v}`).join(',') }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': '42' }));
        return stream.end('abc');
      }
      if (path === '/hints') {
        stream.additionalHeaders({ ':status': 103, link: '</style.css>; rel=preload' });
        stream.respond({ ':status': 200 });
        return stream.end('after hints');
      }
      if (path === '/head') {
        stream.respond({ ':status': 200, 'content-length': '5', 'content-type': 'text/plain' });
        return stream.end(r.method === 'HEAD' ? undefined : 'hello');
      }
      if (path === '/not-modified') {
        stream.respond({ ':status': 304, etag: '"v1"' });
        return stream.end();
      }
      if (path === '/reset') {
        stream.respond({ ':status': 200, 'content-type': 'text/plain' });
        stream.write(Buffer.alloc(1000, 0x61));
        // close(code) would end the stream first; destroy() sends RST_STREAM INTERNAL_ERROR alone.
        return setImmediate(() => stream.destroy(new Error('reset by the test backend')));
      }
      stream.respond({ ':status': 200, 'content-type': 'text/plain', 'set-cookie': ['a=1', 'b=2'] });
      stream.end(`${name} ${r.path}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    name,
    received,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Reads one header of a raw list as the backend saw it, joined with " | " when repeated. */
export { headerOf };
