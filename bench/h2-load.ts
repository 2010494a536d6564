// An HTTP/2 load generator in its own process: a few TLS connections, each keeping many streams
// in flight, direct to the upstream or through a CONNECT tunnel of the proxy. Prints one JSON line.
//   node --import tsx bench/h2-load.ts URL SECONDS CONNECTIONS STREAMS_PER_CONNECTION [PROXY_HOST:PORT|-]
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const [url, seconds = '5', connections = '4', streams = '32', proxyArg = '-'] = process.argv.slice(2);
const target = new URL(url);
const port = Number(target.port);
const ca = [readFileSync(new URL('../test/fixtures/upstream-ca.pem', import.meta.url)), ...(process.env.BENCH_EXTRA_CA ? [readFileSync(process.env.BENCH_EXTRA_CA)] : [])];
const proxy = proxyArg === '-' ? null : { host: proxyArg.split(':')[0], port: Number(proxyArg.split(':')[1]) };

function tunnel(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(proxy!.port, proxy!.host);
    socket.once('error', reject);
    socket.write(`CONNECT ${target.hostname}:${port} HTTP/1.1\r\nHost: ${target.hostname}:${port}\r\n\r\n`);
    let head = '';
    const onData = (c: Buffer) => {
      head += c.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.removeListener('data', onData);
      if (!head.startsWith('HTTP/1.1 200')) return reject(new Error(head));
      resolve(socket);
    };
    socket.on('data', onData);
  });
}

async function connect(): Promise<http2.ClientHttp2Session> {
  const socket = proxy ? await tunnel() : net.connect(port, '127.0.0.1');
  const secure = tls.connect({ socket, servername: target.hostname, ca, ALPNProtocols: ['h2'] });
  const session = http2.connect(url, { createConnection: () => secure, settings: { enablePush: false } });
  session.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve());
    session.once('error', reject);
  });
  return session;
}

const latencies: number[] = [];
let errors = 0;
let deadline = 0;

function one(session: http2.ClientHttp2Session): Promise<void> {
  const start = performance.now();
  return new Promise((resolve) => {
    const req = session.request({ ':path': target.pathname });
    req.on('data', () => {});
    req.on('end', () => latencies.push(performance.now() - start));
    req.on('error', () => errors++);
    req.on('close', () => resolve());
  });
}

async function worker(session: http2.ClientHttp2Session): Promise<void> {
  while (performance.now() < deadline && !session.destroyed && !session.closed) await one(session);
}

const sessions = await Promise.all(Array.from({ length: Number(connections) }, connect));
const began = performance.now();
deadline = began + Number(seconds) * 1000;
await Promise.all(sessions.flatMap((session) => Array.from({ length: Number(streams) }, () => worker(session))));
const elapsed = (performance.now() - began) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
process.stdout.write(JSON.stringify({ rps: latencies.length / elapsed, p50: pct(50), p99: pct(99), errors }) + '\n');
for (const session of sessions) session.destroy();
