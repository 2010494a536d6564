// `npm run bench`: every figure as a ratio against the same work done directly, in one run.
// The upstream, the proxy and the load generators each run in their own process.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { runWsBench } from './ws-bench.js';
import { buildHopscope, cleanUp, hopscopeCaPath, peakRssMiB, progress, root, startNode, startProxy, type Load } from './processes.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONCURRENCY = 16;
const H2_CONNECTIONS = 4;
const H2_STREAMS = 32;

function ensureWrk(): void {
  if (spawnSync('wrk', ['--version']).error === undefined) return;
  progress('installing wrk (Debian package) for the plain HTTP load…');
  const install = spawnSync('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk'], { stdio: 'inherit' });
  if (install.status !== 0) throw new Error('bench needs wrk: apt-get install wrk');
}

function wrk(url: string, target?: string): Load {
  const args = ['-t1', `-c${CONCURRENCY}`, `-d${SECONDS}s`, '--latency'];
  if (target) args.push('-s', join(root, 'bench/absolute-form.lua'));
  const run = spawnSync('wrk', [...args, url], { encoding: 'utf8', env: { ...process.env, TARGET: target ?? '' } });
  const out = run.stdout;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const errors = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0) + Number(/Socket errors:.*?(\d+)/.exec(out)?.[1] ?? 0);
  return { rps, p50: wrkPercentile(out, '50%'), p99: wrkPercentile(out, '99%'), errors };
}

function wrkPercentile(out: string, label: string): number {
  const m = new RegExp(`${label}\\s+([\\d.]+)(us|ms|s)`).exec(out);
  if (!m) return NaN;
  const scale = m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1;
  return Number(m[1]) * scale;
}

async function httpsLoad(url: string, proxyPort?: number, options: { newHostEach?: number; concurrency?: number } = {}): Promise<Load> {
  const args = [
    'bench/https-load.ts', url, String(SECONDS), String(options.concurrency ?? CONCURRENCY), proxyPort ? `127.0.0.1:${proxyPort}` : '-',
    ...(options.newHostEach ? ['--new-host-each', String(options.newHostEach)] : []),
  ];
  const { firstLine } = await startNode(args);
  return JSON.parse(firstLine) as Load;
}

/** HTTP/2 over TLS: a few connections with many concurrent streams each (bench/h2-load.ts). */
async function h2Load(url: string, proxyPort?: number): Promise<Load> {
  const args = ['bench/h2-load.ts', url, String(SECONDS), String(H2_CONNECTIONS), String(H2_STREAMS), proxyPort ? `127.0.0.1:${proxyPort}` : '-'];
  const { firstLine } = await startNode(args);
  return JSON.parse(firstLine) as Load;
}

const rows: string[][] = [];
function report(name: string, direct: Load, proxied: Load, unit: 'rps' | 'mbps' | 'latency' = 'rps'): void {
  if (unit === 'latency') {
    rows.push([name, `${direct.p50.toFixed(2)} ms p50`, `${proxied.p50.toFixed(2)} ms p50`, `${((proxied.p50 / direct.p50) * 100).toFixed(0)}% (time)`,
      `${direct.p50.toFixed(2)} / ${direct.p99.toFixed(2)} ms`, `${proxied.p50.toFixed(2)} / ${proxied.p99.toFixed(2)} ms`, String(proxied.errors)]);
    return;
  }
  const d = unit === 'rps' ? direct.rps : direct.mbps ?? NaN;
  const p = unit === 'rps' ? proxied.rps : proxied.mbps ?? NaN;
  rows.push([
    name,
    `${fmt(d)} ${unit === 'rps' ? 'req/s' : 'MB/s'}`,
    `${fmt(p)} ${unit === 'rps' ? 'req/s' : 'MB/s'}`,
    `${((p / d) * 100).toFixed(0)}%`,
    `${direct.p50.toFixed(2)} / ${direct.p99.toFixed(2)} ms`,
    `${proxied.p50.toFixed(2)} / ${proxied.p99.toFixed(2)} ms`,
    String(proxied.errors),
  ]);
}

function fmt(n: number): string {
  return n >= 100 ? n.toFixed(0) : n.toFixed(1);
}

function printTable(): void {
  const header = ['scenario', 'direct', 'through hopscope', 'ratio', 'direct p50/p99', 'hopscope p50/p99', 'errors'];
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  for (const [i, r] of all.entries()) {
    console.log(r.map((c, j) => c.padEnd(widths[j])).join('  '));
    if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
}

async function main(): Promise<void> {
  ensureWrk();
  buildHopscope();
  progress(`${SECONDS} s per run, ${CONCURRENCY} connections, capture on (SQLite file)`);
  const upstream = JSON.parse((await startNode(['bench/upstream-server.ts'])).firstLine) as { http: number; https: number };
  // One proxy per kind of work, so each peak RSS below belongs to one scenario group.
  const plain = await startProxy('plain');
  const blind = await startProxy('blind', ['--no-intercept']);
  const proxy = await startProxy('intercept');
  process.env.BENCH_EXTRA_CA = hopscopeCaPath; // the load generator trusts hopscope's CA

  progress('plain HTTP/1.1 keep-alive GET: direct');
  const plainDirect = wrk(`http://127.0.0.1:${upstream.http}/`);
  progress('plain HTTP/1.1 keep-alive GET: through hopscope');
  const plainProxied = wrk(`http://127.0.0.1:${plain.port}/`, `http://site.test:${upstream.http}/`);
  report('HTTP/1.1 GET, keep-alive', plainDirect, plainProxied);

  progress('HTTPS keep-alive GET: direct');
  const httpsDirect = await httpsLoad(`https://site.test:${upstream.https}/`);
  progress('HTTPS keep-alive GET: CONNECT passthrough (TLS not intercepted)');
  const httpsTunnel = await httpsLoad(`https://site.test:${upstream.https}/`, blind.port);
  report('HTTPS via CONNECT passthrough', httpsDirect, httpsTunnel);
  progress('HTTPS keep-alive GET: intercepted');
  const httpsIntercepted = await httpsLoad(`https://site.test:${upstream.https}/`, proxy.port);
  report('HTTPS intercepted (vs direct)', httpsDirect, httpsIntercepted);
  report('HTTPS intercepted (vs blind tunnel)', httpsTunnel, httpsIntercepted);

  progress('1 MiB HTTPS downloads: direct, intercepted');
  const bigDirect = await httpsLoad(`https://site.test:${upstream.https}/1m`, undefined, { concurrency: 4 });
  const bigIntercepted = await httpsLoad(`https://site.test:${upstream.https}/1m`, proxy.port, { concurrency: 4 });
  report('1 MiB HTTPS download, intercepted', bigDirect, bigIntercepted, 'mbps');

  progress('new host each request (200 names): fresh CONNECT + TLS handshake to first response');
  const freshDirect = await httpsLoad(`https://site.test:${upstream.https}/`, undefined, { newHostEach: 200, concurrency: 1 });
  const freshIntercepted = await httpsLoad(`https://site.test:${upstream.https}/`, proxy.port, { newHostEach: 200, concurrency: 1 });
  report('new-host handshake + first response', freshDirect, freshIntercepted, 'latency');

  progress(`HTTP/2 over TLS, ${H2_CONNECTIONS} connections × ${H2_STREAMS} concurrent streams: direct, intercepted with the h2 tap, with --no-h2-tap`);
  const h2Upstream = JSON.parse((await startNode(['bench/h2-upstream.ts'])).firstLine) as { port: number };
  const h2Proxy = await startProxy('h2');
  const h2Blind = await startProxy('h2-tap-off', ['--no-h2-tap']);
  const h2Url = `https://site.test:${h2Upstream.port}/`;
  const h2Direct = await h2Load(h2Url);
  const h2Tapped = await h2Load(h2Url, h2Proxy.port);
  const h2Untapped = await h2Load(h2Url, h2Blind.port);
  report('HTTP/2 intercepted, h2 tap on (vs direct)', h2Direct, h2Tapped);
  report('HTTP/2 intercepted, h2 tap on (vs tap off)', h2Untapped, h2Tapped);

  const wsProxy = await startProxy('ws');
  const wsNotes = await runWsBench({ seconds: SECONDS, proxyPort: wsProxy.port, startNode, startProxy, report, progress });

  printTable();
  console.log('\nWebSocket memory (a fresh intercepting proxy, capture on):');
  for (const line of wsNotes) console.log(`  ${line}`);
  console.log('\nhopscope peak RSS (each proxy process, capture on):');
  console.log(`  plain HTTP/1.1 proxy:        ${peakRssMiB(plain.child.pid!).toFixed(0)} MiB`);
  console.log(`  CONNECT passthrough proxy:   ${peakRssMiB(blind.child.pid!).toFixed(0)} MiB`);
  console.log(`  intercepting proxy:          ${peakRssMiB(proxy.child.pid!).toFixed(0)} MiB (HTTPS, 1 MiB bodies stored, new hosts)`);
  console.log(`  HTTP/2 proxy, h2 tap on:     ${peakRssMiB(h2Proxy.child.pid!).toFixed(0)} MiB`);
}

main()
  .catch((err) => {
    console.error(`bench: ${(err as Error).message}`);
    process.exitCode = 1;
  })
  .finally(cleanUp);
