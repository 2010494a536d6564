// A WebSocket load generator in its own process, direct or through hopscope:
//   node --import tsx bench/ws-load.ts roundtrip URL SECONDS CONNECTIONS SIZE PATH [PROXY_HOST:PORT]
//     every connection sends a SIZE-byte binary message and waits for its echo, again and again;
//     prints {rps: round trips/s, mbps: echoed MB/s, p50, p99, errors} as one JSON line.
//   node --import tsx bench/ws-load.ts idle URL - CONNECTIONS - PATH [PROXY_HOST:PORT]
//     opens CONNECTIONS WebSockets, prints {open, errors} once they are up, and holds them open.
// PATH: direct, absolute-form (ws:// as an absolute-form Upgrade), connect (ws:// or wss:// in a
// CONNECT tunnel). Trusts the fixture upstream CA, and $BENCH_EXTRA_CA (hopscope's) when set.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import { connectClient, opened, type WsPath } from '../test/helpers/ws-peers.js';

const [mode, url, seconds, connections, sizeArg, path, proxyArg = '-'] = process.argv.slice(2);
const target = new URL(url);
const secure = target.protocol === 'wss:';
const upstreamCa = readFileSync(new URL('../test/fixtures/upstream-ca.pem', import.meta.url), 'utf8');
const hopscopeCa = process.env.BENCH_EXTRA_CA ? readFileSync(process.env.BENCH_EXTRA_CA, 'utf8') : '';
const [proxyHost, proxyPort] = proxyArg === '-' ? [] : proxyArg.split(':');

function open(): WebSocket {
  if (path === 'direct') {
    const socket = new WebSocket(url, { perMessageDeflate: false, ca: upstreamCa, lookup: loopback } as never);
    socket.on('error', () => {});
    return socket;
  }
  const wsPath: WsPath = secure ? 'connect-tls' : (path as WsPath);
  return connectClient({
    path: wsPath,
    proxy: { host: proxyHost, port: Number(proxyPort) },
    ca: upstreamCa + hopscopeCa, // intercepted (hopscope's CA) or blind (the upstream's)
    host: target.hostname,
    port: Number(target.port),
    urlPath: target.pathname,
  });
}

// Names in the benchmark all live on loopback (the proxy maps them with --resolve too).
function loopback(_host: string, options: { all?: boolean }, cb: (e: null, a: unknown, f?: number) => void) {
  if (options.all) cb(null, [{ address: '127.0.0.1', family: 4 }]);
  else cb(null, '127.0.0.1', 4);
}

async function roundTrips(): Promise<void> {
  const size = Number(sizeArg);
  const payload = Buffer.alloc(size, 0x61);
  const latencies: number[] = [];
  let bytes = 0;
  let errors = 0;
  const deadline = performance.now() + Number(seconds) * 1000;
  const worker = async () => {
    const socket = open();
    try {
      await opened(socket);
    } catch {
      errors++;
      return;
    }
    await new Promise<void>((resolve) => {
      let sent = 0;
      const next = () => {
        if (performance.now() >= deadline) {
          socket.terminate();
          return resolve();
        }
        sent = performance.now();
        socket.send(payload, { binary: true });
      };
      socket.on('message', (data: Buffer) => {
        latencies.push(performance.now() - sent);
        bytes += data.length;
        next();
      });
      socket.once('close', () => resolve());
      next();
    });
  };
  const began = performance.now();
  await Promise.all(Array.from({ length: Number(connections) }, worker));
  const elapsed = (performance.now() - began) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
  process.stdout.write(JSON.stringify({ rps: latencies.length / elapsed, mbps: bytes / 1e6 / elapsed, p50: pct(50), p99: pct(99), errors }) + '\n');
  process.exit(0);
}

async function idle(): Promise<void> {
  const total = Number(connections);
  const sockets: WebSocket[] = [];
  let errors = 0;
  for (let start = 0; start < total; start += 100) {
    const batch = Array.from({ length: Math.min(100, total - start) }, open);
    sockets.push(...batch);
    const results = await Promise.allSettled(batch.map(opened));
    errors += results.filter((r) => r.status === 'rejected').length;
  }
  process.stdout.write(JSON.stringify({ open: sockets.length - errors, errors }) + '\n');
  setInterval(() => {}, 60_000); // hold them until killed
}

await (mode === 'idle' ? idle() : roundTrips());
