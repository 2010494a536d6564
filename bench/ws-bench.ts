// WebSocket figures for `npm run bench` (called by run.ts with its helpers): round trips/s of small
// messages and MB/s of 64 KiB messages through hopscope (ws:// in a CONNECT tunnel and as an
// absolute-form Upgrade, wss:// intercepted) against direct, and the proxy's memory per idle
// WebSocket (RSS of a fresh proxy before and after 2,000 are held open).
import type { ChildProcess } from 'node:child_process';
import { rssMiB, type Load } from './processes.js';

export interface WsBenchContext {
  seconds: number;
  /** The capturing proxy the other scenarios use (TLS intercepted). */
  proxyPort: number;
  startNode(args: string[]): Promise<{ child: ChildProcess; firstLine: string }>;
  startProxy(name: string, extra?: string[]): Promise<{ child: ChildProcess; port: number }>;
  /** Runs both loads in alternating rounds and reports the medians (run.ts). */
  compare(name: string, direct: () => Promise<Load>, proxied: () => Promise<Load>, unit?: 'rps' | 'mbps'): Promise<void>;
  progress(text: string): void;
}

const IDLE_SOCKETS = 2000;

/** Runs the WebSocket scenarios; returns lines to print under the table. */
export async function runWsBench(b: WsBenchContext): Promise<string[]> {
  const echo = JSON.parse((await b.startNode(['bench/ws-echo-server.ts'])).firstLine) as { ws: number; wss: number };
  const ws = `ws://site.test:${echo.ws}/`;
  const wss = `wss://site.test:${echo.wss}/`;
  const via = `127.0.0.1:${b.proxyPort}`;
  const load = async (url: string, connections: number, size: number, path: string, proxy = '-'): Promise<Load> =>
    JSON.parse((await b.startNode(['bench/ws-load.ts', 'roundtrip', url, String(b.seconds), String(connections), String(size), path, proxy])).firstLine) as Load;

  await b.compare('WS 32 B round trips, ws:// in CONNECT', () => load(ws, 16, 32, 'direct'), () => load(ws, 16, 32, 'connect', via));
  await b.compare('WS 32 B round trips, ws:// absolute-form', () => load(ws, 16, 32, 'direct'), () => load(ws, 16, 32, 'absolute-form', via));
  await b.compare('WS 32 B round trips, wss:// intercepted', () => load(wss, 16, 32, 'direct'), () => load(wss, 16, 32, 'connect', via));
  await b.compare('WS 64 KiB echo MB/s, ws:// in CONNECT', () => load(ws, 4, 65536, 'direct'), () => load(ws, 4, 65536, 'connect', via), 'mbps');
  await b.compare('WS 64 KiB echo MB/s, wss:// intercepted', () => load(wss, 4, 65536, 'direct'), () => load(wss, 4, 65536, 'connect', via), 'mbps');

  const notes: string[] = [];
  for (const [name, url] of [['ws:// in CONNECT', ws], ['wss:// intercepted', wss]] as const) {
    b.progress(`${IDLE_SOCKETS} idle WebSockets, ${name}: proxy RSS before and after`);
    const proxy = await b.startProxy(`ws-idle-${url.slice(0, 3)}`);
    const before = rssMiB(proxy.child.pid!);
    const idle = await b.startNode(['bench/ws-load.ts', 'idle', url, '-', String(IDLE_SOCKETS), '-', 'connect', `127.0.0.1:${proxy.port}`]);
    const { open, errors } = JSON.parse(idle.firstLine) as { open: number; errors: number };
    await new Promise((resolve) => setTimeout(resolve, 2000)); // let the capture settle
    const after = rssMiB(proxy.child.pid!);
    notes.push(
      `${open} idle WebSockets (${name})${errors ? `, ${errors} failed to open` : ''}: proxy RSS ${before.toFixed(0)} → ${after.toFixed(0)} MiB, ` +
        `${(((after - before) * 1024) / Math.max(1, open)).toFixed(1)} KiB each`,
    );
    idle.child.kill('SIGKILL');
    proxy.child.kill('SIGKILL');
  }
  return notes;
}
