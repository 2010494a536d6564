// The soak's load generator, in its own process: thousands of concurrent connections mixing
// HTTP/1.1 (absolute-form through the proxy), HTTP/2 over TLS (intercepted, in CONNECT tunnels)
// and WebSocket (ws:// in CONNECT tunnels), each sending at a fixed pace so that direct and
// proxied runs offer the same load. Connections are opened first; the clock starts when all are up.
//   node --import tsx bench/soak-load.ts CONFIG_JSON
// Prints progress on stderr and, at the end, one JSON line: per protocol {done, rps, p50, p99, errors}.
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import { connectClient, opened } from '../test/helpers/ws-peers.js';

export interface SoakConfig {
  seconds: number;
  /** Each connection sends one request (or message) per interval. */
  intervalMs: number;
  h1Connections: number;
  h2Connections: number;
  h2StreamsPerConnection: number;
  wsConnections: number;
  upstream: { http: number; h2: number; ws: number };
  /** null: straight to the upstreams. */
  proxy: { host: string; port: number } | null;
  /** hopscope's CA, trusted besides the fixture upstream CA. */
  extraCaPath: string | null;
}

const config = JSON.parse(process.argv[2]) as SoakConfig;
const ca = [
  readFileSync(new URL('../test/fixtures/upstream-ca.pem', import.meta.url), 'utf8'),
  ...(config.extraCaPath ? [readFileSync(config.extraCaPath, 'utf8')] : []),
];

class Stats {
  readonly latencies: number[] = [];
  errors = 0;
  summary(elapsedS: number) {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
    return { done: sorted.length, rps: sorted.length / elapsedS, p50: pct(50), p99: pct(99), errors: this.errors };
  }
}
const stats = { h1: new Stats(), h2: new Stats(), ws: new Stats() };
let running = true;
const closers: Array<() => void> = [];

/** Calls `send` once per interval, starting at a random offset so connections do not beat in step. */
function paced(send: () => Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    const tick = async () => {
      if (!running) return resolve();
      const started = performance.now();
      await send();
      const wait = Math.max(0, config.intervalMs - (performance.now() - started));
      setTimeout(tick, wait);
    };
    setTimeout(tick, Math.random() * config.intervalMs);
  });
}

// ---- HTTP/1.1 -------------------------------------------------------------------------------

const h1Agent = new http.Agent({ keepAlive: true, maxSockets: config.h1Connections, maxFreeSockets: config.h1Connections });
closers.push(() => h1Agent.destroy());

function h1Request(): Promise<void> {
  const started = performance.now();
  const upstreamUrl = `http://site.test:${config.upstream.http}/`;
  const options = config.proxy
    ? { host: config.proxy.host, port: config.proxy.port, path: upstreamUrl, headers: { host: `site.test:${config.upstream.http}` } }
    : { host: '127.0.0.1', port: config.upstream.http, path: '/' };
  return new Promise((resolve) => {
    const req = http.get({ ...options, agent: h1Agent }, (res) => {
      res.resume();
      res.once('end', () => {
        if (res.statusCode === 200) stats.h1.latencies.push(performance.now() - started);
        else stats.h1.errors++;
        resolve();
      });
    });
    req.once('error', () => {
      stats.h1.errors++;
      resolve();
    });
  });
}

// ---- HTTP/2 ---------------------------------------------------------------------------------

function tunnel(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(config.proxy!.port, config.proxy!.host);
    socket.once('error', reject);
    socket.write(`CONNECT site.test:${port} HTTP/1.1\r\nHost: site.test:${port}\r\n\r\n`);
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.removeListener('data', onData);
      if (!head.startsWith('HTTP/1.1 200')) reject(new Error(head.split('\r\n')[0]));
      else resolve(socket);
    };
    socket.on('data', onData);
  });
}

async function h2Session(): Promise<http2.ClientHttp2Session> {
  const port = config.upstream.h2;
  const socket = config.proxy ? await tunnel(port) : net.connect(port, '127.0.0.1');
  const secure = tls.connect({ socket, servername: 'site.test', ca, ALPNProtocols: ['h2'] });
  const session = http2.connect(`https://site.test:${port}`, { createConnection: () => secure, settings: { enablePush: false } });
  session.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve());
    session.once('error', reject);
  });
  closers.push(() => session.destroy());
  return session;
}

function h2Request(session: http2.ClientHttp2Session): Promise<void> {
  const started = performance.now();
  return new Promise((resolve) => {
    let status = 0;
    const req = session.request({ ':path': '/' });
    req.on('response', (headers) => (status = Number(headers[':status'])));
    req.on('data', () => {});
    req.on('end', () => {
      if (status === 200) stats.h2.latencies.push(performance.now() - started);
      else stats.h2.errors++;
    });
    req.on('error', () => stats.h2.errors++);
    req.on('close', () => resolve());
  });
}

// ---- WebSocket ------------------------------------------------------------------------------

async function wsConnection(): Promise<WebSocket> {
  const port = config.upstream.ws;
  const socket = config.proxy
    ? connectClient({ path: 'connect', proxy: config.proxy, host: 'site.test', port, urlPath: '/' })
    : new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
  socket.on('error', () => {});
  await opened(socket);
  closers.push(() => socket.terminate());
  return socket;
}

function wsRoundTrip(socket: WebSocket, payload: Buffer): Promise<void> {
  const started = performance.now();
  return new Promise((resolve) => {
    const onMessage = () => {
      socket.removeListener('close', onClose);
      stats.ws.latencies.push(performance.now() - started);
      resolve();
    };
    const onClose = () => {
      socket.removeListener('message', onMessage);
      stats.ws.errors++;
      resolve();
    };
    socket.once('message', onMessage);
    socket.once('close', onClose);
    socket.send(payload, { binary: true });
  });
}

// ---- the run --------------------------------------------------------------------------------

async function inBatches<T>(count: number, open: () => Promise<T>, label: string): Promise<T[]> {
  const all: T[] = [];
  for (let start = 0; start < count; start += 100) {
    const results = await Promise.allSettled(Array.from({ length: Math.min(100, count - start) }, open));
    for (const r of results) if (r.status === 'fulfilled') all.push(r.value);
  }
  process.stderr.write(`soak-load: ${all.length}/${count} ${label} open\n`);
  if (all.length < count) throw new Error(`only ${all.length} of ${count} ${label} could be opened`);
  return all;
}

const payload = Buffer.alloc(64, 0x61);
// Warm one keep-alive HTTP/1.1 connection per loop before the clock starts (all at once, so the
// agent opens one socket for each).
await Promise.all(Array.from({ length: config.h1Connections }, h1Request));
process.stderr.write(`soak-load: ${stats.h1.latencies.length}/${config.h1Connections} HTTP/1.1 connections open\n`);
if (stats.h1.errors > 0) throw new Error(`${stats.h1.errors} HTTP/1.1 connections failed to open`);
stats.h1.latencies.length = 0;
const sessions = await inBatches(config.h2Connections, h2Session, 'HTTP/2 connections');
const sockets = await inBatches(config.wsConnections, wsConnection, 'WebSockets');
process.stderr.write(`soak-load: ${config.h1Connections + config.h2Connections + config.wsConnections} connections up, running ${config.seconds} s\n`);
process.stdout.write(JSON.stringify({ ready: true }) + '\n');

const began = performance.now();
setTimeout(() => (running = false), config.seconds * 1000);
await Promise.all([
  ...Array.from({ length: config.h1Connections }, () => paced(h1Request)),
  ...sessions.flatMap((session) => Array.from({ length: config.h2StreamsPerConnection }, () => paced(() => h2Request(session)))),
  ...sockets.map((socket) => paced(() => wsRoundTrip(socket, payload))),
]);
const elapsed = (performance.now() - began) / 1000;
process.stdout.write(JSON.stringify({ h1: stats.h1.summary(elapsed), h2: stats.h2.summary(elapsed), ws: stats.ws.summary(elapsed) }) + '\n');
for (const close of closers) close();
process.exit(0);
