// A keep-alive HTTPS load generator in its own process: direct to the upstream, or through a
// CONNECT tunnel of the proxy. Fixed concurrency for a fixed time; prints one JSON line.
//   node --import tsx bench/https-load.ts URL SECONDS CONCURRENCY [PROXY_HOST:PORT|-] [--new-host-each] [MAX_REQUESTS]
// --new-host-each: every request goes to a never-seen host name on a new connection (a full
// CONNECT + TLS handshake), to measure certificate minting and handshake latency.
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const [url, seconds = '5', concurrency = '16', proxyArg = '-', mode = '', maxArg = ''] = process.argv.slice(2);
const proxy = proxyArg === '-' ? '' : proxyArg;
const maxRequests = maxArg ? Number(maxArg) : Infinity;
const target = new URL(url);
const ca = [readFileSync(new URL('../test/fixtures/upstream-ca.pem', import.meta.url)), ...(process.env.BENCH_EXTRA_CA ? [readFileSync(process.env.BENCH_EXTRA_CA)] : [])];
const [proxyHost, proxyPort] = proxy ? proxy.split(':') : [];

function tunnel(host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(proxyPort), proxyHost);
    socket.once('error', reject);
    socket.write(`CONNECT ${host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`);
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

class TunnelAgent extends https.Agent {
  override createConnection(options: https.RequestOptions, cb?: (err: Error | null, s: tls.TLSSocket) => void) {
    const { host, port } = options as { host: string; port: number };
    tunnel(host, port).then(
      (raw) => cb?.(null, tls.connect({ ...(options as tls.ConnectionOptions), socket: raw })),
      (err) => cb?.(err, undefined as never),
    );
    return undefined;
  }
}

const newHostEach = mode === '--new-host-each';
const agent = proxy ? new TunnelAgent({ keepAlive: !newHostEach, ca }) : new https.Agent({ keepAlive: !newHostEach, ca });
const latencies: number[] = [];
let bytes = 0;
let errors = 0;
let counter = 0;
const deadline = performance.now() + Number(seconds) * 1000;

function one(): Promise<void> {
  const host = newHostEach ? `h${process.pid}-${counter++}.site.test` : target.hostname;
  const start = performance.now();
  return new Promise((resolve) => {
    const req = https.get({ host, port: target.port, path: target.pathname, agent, ca, servername: host, headers: { Host: `${host}:${target.port}` },
      lookup: loopbackLookup } as https.RequestOptions, (res) => {
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => {
        latencies.push(performance.now() - start);
        resolve();
      });
    });
    req.on('error', () => {
      errors++;
      resolve();
    });
  });
}

// Names in the benchmark all live on loopback (the proxy maps them with --resolve too).
function loopbackLookup(_host: string, options: { all?: boolean }, cb: (e: null, a: unknown, f?: number) => void) {
  if (options.all) cb(null, [{ address: '127.0.0.1', family: 4 }]);
  else cb(null, '127.0.0.1', 4);
}

let started = 0;
async function worker() {
  while (performance.now() < deadline && started++ < maxRequests) await one();
}

const began = performance.now();
await Promise.all(Array.from({ length: Number(concurrency) }, worker));
const elapsed = (performance.now() - began) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
process.stdout.write(JSON.stringify({ rps: latencies.length / elapsed, p50: pct(50), p99: pct(99), mbps: bytes / 1e6 / elapsed, errors }) + '\n');
agent.destroy();
