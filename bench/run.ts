// `npm run bench`: every figure as a ratio against the same work done directly, in one run.
// The upstream, the proxy and the load generators each run in their own process.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { runWsBench } from './ws-bench.js';
import { buildHopscope, caDir, cleanUp, hopscopeCaPath, peakRssMiB, progress, root, startNode, startProxy, type Load } from './processes.js';

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
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
/** BENCH_ONLY=plain,https,big,newhost,h2,ws runs only those groups. */
const only = new Set((process.env.BENCH_ONLY ?? '').split(',').filter(Boolean));
const wants = (group: string) => only.size === 0 || only.has(group);

type Unit = 'rps' | 'mbps' | 'latency';
const metric = (load: Load, unit: Unit) => (unit === 'rps' ? load.rps : unit === 'mbps' ? load.mbps ?? NaN : load.p50);

/**
 * Runs the direct and the proxied load back to back, ROUNDS times, and reports the medians: on two
 * shared cores a single pair can land on a noisy moment, the median of several is what repeats.
 */
async function compare(name: string, direct: () => Promise<Load>, proxied: () => Promise<Load>, unit: Unit = 'rps'): Promise<void> {
  const rounds: Array<[Load, Load]> = [];
  for (let i = 0; i < ROUNDS; i++) {
    progress(`${name}: round ${i + 1} of ${ROUNDS}`);
    rounds.push([await direct(), await proxied()]);
  }
  report(name, rounds, unit);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The round whose value is the median one (so its latency figures go with it). */
function medianLoad(loads: Load[], unit: Unit): Load {
  const target = median(loads.map((l) => metric(l, unit)));
  return loads.reduce((best, l) => (Math.abs(metric(l, unit) - target) < Math.abs(metric(best, unit) - target) ? l : best));
}

function report(name: string, rounds: Array<[Load, Load]>, unit: Unit): void {
  const direct = medianLoad(rounds.map((r) => r[0]), unit);
  const proxied = medianLoad(rounds.map((r) => r[1]), unit);
  const ratios = rounds.map(([d, p]) => (metric(p, unit) / metric(d, unit)) * 100);
  const spread = rounds.length > 1 ? ` (${Math.min(...ratios).toFixed(0)}–${Math.max(...ratios).toFixed(0)})` : '';
  const errors = String(rounds.reduce((n, r) => n + r[1].errors, 0));
  const latency = (l: Load) => `${l.p50.toFixed(2)} / ${l.p99.toFixed(2)} ms`;
  if (unit === 'latency') {
    rows.push([name, `${direct.p50.toFixed(2)} ms p50`, `${proxied.p50.toFixed(2)} ms p50`, `${median(ratios).toFixed(0)}%${spread} (time)`,
      latency(direct), latency(proxied), errors]);
    return;
  }
  const label = unit === 'rps' ? 'req/s' : 'MB/s';
  rows.push([name, `${fmt(metric(direct, unit))} ${label}`, `${fmt(metric(proxied, unit))} ${label}`, `${median(ratios).toFixed(0)}%${spread}`,
    latency(direct), latency(proxied), errors]);
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
  progress(`${SECONDS} s per run, ${ROUNDS} rounds per figure (medians), ${CONCURRENCY} connections, capture on (SQLite file)`);
  const upstream = JSON.parse((await startNode(['bench/upstream-server.ts'])).firstLine) as { http: number; https: number };
  // The CA exists before any proxy starts, as it does for everyone but a first-time user.
  if (spawnSync(process.execPath, ['packages/core/dist/cli/main.js', 'ca', '--ca-dir', caDir], { cwd: root, stdio: 'ignore' }).status !== 0) {
    throw new Error('hopscope ca failed');
  }
  // One proxy per kind of work, so each peak RSS below belongs to one scenario group.
  const peaks: Array<[string, ChildProcess]> = [];
  const proxyFor = async (name: string, label: string, extra: string[] = []) => {
    const started = await startProxy(name, extra);
    peaks.push([label, started.child]);
    return started;
  };
  process.env.BENCH_EXTRA_CA = hopscopeCaPath; // the load generator trusts hopscope's CA
  const https = `https://site.test:${upstream.https}/`;

  if (wants('plain')) {
    const plain = await proxyFor('plain', 'plain HTTP/1.1 proxy');
    await compare(
      'HTTP/1.1 GET, keep-alive',
      async () => wrk(`http://127.0.0.1:${upstream.http}/`),
      async () => wrk(`http://127.0.0.1:${plain.port}/`, `http://site.test:${upstream.http}/`),
    );
  }

  if (wants('https') || wants('big') || wants('newhost')) {
    const blind = await proxyFor('blind', 'CONNECT passthrough proxy', ['--no-intercept']);
    const proxy = await proxyFor('intercept', 'intercepting proxy (HTTPS, 1 MiB bodies stored, new hosts)');
    if (wants('https')) {
      await compare('HTTPS via CONNECT passthrough', () => httpsLoad(https), () => httpsLoad(https, blind.port));
      await compare('HTTPS intercepted (vs direct)', () => httpsLoad(https), () => httpsLoad(https, proxy.port));
      await compare('HTTPS intercepted (vs blind tunnel)', () => httpsLoad(https, blind.port), () => httpsLoad(https, proxy.port));
    }
    if (wants('big')) {
      const big = `${https}1m`;
      await compare('1 MiB HTTPS download, intercepted', () => httpsLoad(big, undefined, { concurrency: 4 }),
        () => httpsLoad(big, proxy.port, { concurrency: 4 }), 'mbps');
      await compare('1 MiB HTTPS download, blind tunnel', () => httpsLoad(big, undefined, { concurrency: 4 }),
        () => httpsLoad(big, blind.port, { concurrency: 4 }), 'mbps');
    }
    if (wants('newhost')) {
      // Each run names 200 hosts of its own (the load generator's pid is in them): every handshake is with a never-seen host.
      const fresh = (port?: number) => httpsLoad(https, port, { newHostEach: 200, concurrency: 1 });
      await compare('new-host handshake + first response', () => fresh(), () => fresh(proxy.port), 'latency');
    }
  }

  if (wants('h2')) {
    const h2Upstream = JSON.parse((await startNode(['bench/h2-upstream.ts'])).firstLine) as { port: number };
    const h2Proxy = await proxyFor('h2', 'HTTP/2 proxy, h2 tap on');
    const h2Blind = await startProxy('h2-tap-off', ['--no-h2-tap']);
    const h2Url = `https://site.test:${h2Upstream.port}/`;
    progress(`HTTP/2 over TLS, ${H2_CONNECTIONS} connections × ${H2_STREAMS} concurrent streams`);
    await compare('HTTP/2 intercepted, h2 tap on (vs direct)', () => h2Load(h2Url), () => h2Load(h2Url, h2Proxy.port));
    await compare('HTTP/2 intercepted, h2 tap on (vs tap off)', () => h2Load(h2Url, h2Blind.port), () => h2Load(h2Url, h2Proxy.port));
  }

  let wsNotes: string[] = [];
  if (wants('ws')) {
    const wsProxy = await proxyFor('ws', 'WebSocket proxy');
    wsNotes = await runWsBench({ seconds: SECONDS, proxyPort: wsProxy.port, startNode, startProxy, compare, progress });
  }

  printTable();
  if (wsNotes.length > 0) {
    console.log('\nWebSocket memory (a fresh intercepting proxy, capture on):');
    for (const line of wsNotes) console.log(`  ${line}`);
  }
  console.log('\nhopscope peak RSS (each proxy process, capture on):');
  for (const [label, child] of peaks) console.log(`  ${`${label}:`.padEnd(64)} ${peakRssMiB(child.pid!).toFixed(0)} MiB`);
}

main()
  .catch((err) => {
    console.error(`bench: ${(err as Error).message}`);
    process.exitCode = 1;
  })
  .finally(cleanUp);
