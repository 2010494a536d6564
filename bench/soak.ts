// `npm run soak`: thousands of concurrent connections mixing HTTP/1.1, HTTP/2 and WebSocket for
// several minutes (SOAK_SECONDS, default 180), first straight to the upstreams and then through one
// hopscope with capture on. Reports throughput and p99 latency of each protocol as ratios against
// direct, the proxy's RSS over time (it must stay flat once the store's caps are reached, so the
// growth over the second half is printed), and its open file descriptors before, during and after.
import type { SoakConfig } from './soak-load.js';
import { buildHopscope, cleanUp, hopscopeCaPath, openFds, progress, rssMiB, startNode, startProxy, type Load } from './processes.js';

const SECONDS = Number(process.env.SOAK_SECONDS ?? 180);
const SAMPLE_MS = 2_000;
// Idle keep-alive upstream connections are closed after 30 s (swept every 15 s): wait past that.
const FD_SETTLE_MS = 60_000;

type SoakResult = Record<'h1' | 'h2' | 'ws', Load & { done: number }>;

async function runLoad(config: SoakConfig, whileRunning?: () => void): Promise<SoakResult> {
  const load = await startNode(['bench/soak-load.ts', JSON.stringify(config)]);
  if (!JSON.parse(load.firstLine).ready) throw new Error(`unexpected line from soak-load: ${load.firstLine}`);
  const timer = whileRunning ? setInterval(whileRunning, SAMPLE_MS) : undefined;
  try {
    return JSON.parse(await load.nextLine()) as SoakResult;
  } finally {
    clearInterval(timer);
  }
}

async function waitForFds(pid: number, atMost: number): Promise<{ fds: number; seconds: number }> {
  const start = Date.now();
  let fds = openFds(pid);
  while (fds > atMost && Date.now() - start < FD_SETTLE_MS) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    fds = openFds(pid);
  }
  return { fds, seconds: (Date.now() - start) / 1000 };
}

function row(cells: string[], widths: number[]): string {
  return cells.map((c, i) => c.padEnd(widths[i])).join('  ');
}

async function main(): Promise<void> {
  buildHopscope();
  const upstreamPorts = JSON.parse((await startNode(['bench/upstream-server.ts'])).firstLine) as { http: number };
  const h2 = JSON.parse((await startNode(['bench/h2-upstream.ts'])).firstLine) as { port: number };
  const ws = JSON.parse((await startNode(['bench/ws-echo-server.ts'])).firstLine) as { ws: number };
  const base: SoakConfig = {
    seconds: SECONDS,
    intervalMs: Number(process.env.SOAK_INTERVAL_MS ?? 1000),
    h1Connections: Number(process.env.SOAK_H1 ?? 1000),
    h2Connections: Number(process.env.SOAK_H2 ?? 50),
    h2StreamsPerConnection: 8,
    wsConnections: Number(process.env.SOAK_WS ?? 1000),
    upstream: { http: upstreamPorts.http, h2: h2.port, ws: ws.ws },
    proxy: null,
    extraCaPath: null,
  };
  const connections = base.h1Connections + base.h2Connections + base.wsConnections;
  progress(`soak: ${connections} connections (${base.h1Connections} HTTP/1.1, ${base.h2Connections} HTTP/2 × ${base.h2StreamsPerConnection} streams, ` +
    `${base.wsConnections} WebSocket), one request or message each per ${base.intervalMs} ms, ${SECONDS} s per run`);

  progress('soak: direct');
  const direct = await runLoad(base);

  const proxy = await startProxy('soak');
  const pid = proxy.child.pid!;
  const fdsBefore = openFds(pid);
  const samples: Array<{ t: number; rss: number; fds: number }> = [];
  const began = Date.now();
  progress('soak: through hopscope (capture on)');
  const proxied = await runLoad({ ...base, proxy: { host: '127.0.0.1', port: proxy.port }, extraCaPath: hopscopeCaPath }, () => {
    samples.push({ t: (Date.now() - began) / 1000, rss: rssMiB(pid), fds: openFds(pid) });
    if (samples.length % 15 === 0) progress(`soak: ${samples.at(-1)!.t.toFixed(0)} s, proxy RSS ${samples.at(-1)!.rss.toFixed(0)} MiB, ${samples.at(-1)!.fds} fds`);
  });
  progress('soak: load stopped, waiting for the proxy to close what it held');
  const after = await waitForFds(pid, fdsBefore + 5);

  const header = ['protocol', 'direct', 'through hopscope', 'ratio', 'direct p50/p99', 'hopscope p50/p99', 'errors'];
  const lines = (['h1', 'h2', 'ws'] as const).map((k) => {
    const d = direct[k];
    const p = proxied[k];
    return [
      { h1: 'HTTP/1.1 GET (absolute-form)', h2: 'HTTP/2 GET (intercepted)', ws: 'WebSocket 64 B echo (CONNECT)' }[k],
      `${d.rps.toFixed(0)}/s`,
      `${p.rps.toFixed(0)}/s`,
      `${((p.rps / d.rps) * 100).toFixed(0)}%`,
      `${d.p50.toFixed(1)} / ${d.p99.toFixed(1)} ms`,
      `${p.p50.toFixed(1)} / ${p.p99.toFixed(1)} ms`,
      String(p.errors),
    ];
  });
  const widths = header.map((_, i) => Math.max(...[header, ...lines].map((r) => r[i].length)));
  console.log(row(header, widths));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const line of lines) console.log(row(line, widths));

  const rssAt = (fraction: number) => samples[Math.min(samples.length - 1, Math.floor(fraction * samples.length))]?.rss ?? NaN;
  const peak = Math.max(...samples.map((s) => s.rss));
  const half = rssAt(0.5);
  const end = rssAt(1);
  console.log(`\nhopscope RSS: ${rssAt(0.25).toFixed(0)} / ${half.toFixed(0)} / ${rssAt(0.75).toFixed(0)} / ${end.toFixed(0)} MiB ` +
    `at 25/50/75/100% of the run, peak ${peak.toFixed(0)} MiB; second half growth ${(end - half).toFixed(0)} MiB ` +
    `(${(((end - half) / half) * 100).toFixed(0)}%)`);
  console.log(`hopscope file descriptors: ${fdsBefore} before, peak ${Math.max(...samples.map((s) => s.fds))} under load, ` +
    `${after.fds} ${after.seconds.toFixed(0)} s after the load stopped${after.fds > fdsBefore + 5 ? ' (NOT back to baseline)' : ''}`);
  console.log(`connections held: ${connections}; every figure is hopscope against direct in the same run`);
}

main()
  .catch((err) => {
    console.error(`soak: ${(err as Error).message}`);
    process.exitCode = 1;
  })
  .finally(cleanUp);
