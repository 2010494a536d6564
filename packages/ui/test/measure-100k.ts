// Measurement, not a test: time to first rows (and to all rows) with 100,000 captured exchanges,
// and how smooth the page stays while 1,000 exchanges/s arrive. Run from the repository root:
//   npm run build:ui && node --import tsx packages/ui/test/measure-100k.ts
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startHopscope } from '../../core/src/hopscope.js';
import { startInspector } from '../../core/src/inspector/index.js';

const N = Number(process.env.N ?? 100_000);
const dir = mkdtempSync(join(tmpdir(), 'hopscope-measure-'));
const hopscope = await startHopscope({ dbPath: join(dir, 'capture.sqlite'), listenHost: '127.0.0.1', listenPort: 0, caDir: join(dir, 'ca'), keylogFile: null });
const timings = { dnsMs: null, connectMs: null, tlsMs: null, requestEnd: null, responseStart: null };
let nextId = 1_000_000;

function emitExchange(i: number): void {
  const id = ++nextId;
  const { bus } = hopscope;
  bus.emit({ kind: 'conn.opened', connId: id, parentId: null, listener: 'proxy', clientAddress: '127.0.0.1', clientPort: 40000 + (i % 20000) });
  bus.emit({ kind: 'http.request', exchangeId: id, connId: id, streamId: null, protocol: 'HTTP/1.1', method: i % 7 ? 'GET' : 'POST',
    target: `/api/items/${i}?page=${i % 50}`, url: `http://host${i % 40}.test/api/items/${i}?page=${i % 50}`, scheme: 'http',
    host: `host${i % 40}.test`, port: 80, headers: [['Host', `host${i % 40}.test`], ['Accept', 'application/json']] });
  bus.emit({ kind: 'http.response', exchangeId: id, protocol: 'HTTP/1.1', status: i % 13 ? 200 : 404, statusText: 'OK', headers: [['Content-Type', 'application/json']] });
  bus.emit({ kind: 'http.completed', exchangeId: id, requestBodySize: 0, responseBodySize: 100 + (i % 900), timings });
  bus.emit({ kind: 'conn.closed', connId: id, bytesFromClient: 100, bytesFromServer: 300, error: null });
}

let t = performance.now();
for (let i = 0; i < N; i++) {
  emitExchange(i);
  if (i % 5000 === 4999) {
    hopscope.flush();
    await new Promise((r) => setImmediate(r));
  }
}
// The store may write from a worker: flush() resolves once everything queued is committed.
await hopscope.flush();
console.log(`captured ${N} exchanges in ${(performance.now() - t).toFixed(0)} ms`);

const inspector = await startInspector({ db: hopscope.db, sink: hopscope.sink, host: '127.0.0.1', port: 0, proxyUrl: hopscope.proxyUrl });
const browser = await chromium.launch({
  executablePath: process.env.HOPSCOPE_CHROMIUM ?? '/usr/bin/chromium-headless-shell',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
t = performance.now();
await page.goto(inspector.url);
await page.locator('.exchange-list [role=row][data-id]').first().waitFor();
const firstRows = performance.now() - t;
await page.getByTestId('row-count').filter({ hasText: N.toLocaleString('en-US') }).waitFor({ timeout: 120_000 });
const allRows = performance.now() - t;
console.log(`time to first rows: ${firstRows.toFixed(0)} ms; all ${N} rows in the list: ${allRows.toFixed(0)} ms`);

// Scrolling: jump around the 100k-row list and time each frame.
const scroll = (await page.evaluate(`(async () => {
  const el = document.querySelector('.exchange-list');
  const frame = () => new Promise((r) => requestAnimationFrame(r));
  const gaps = [];
  let last = await frame();
  for (let i = 0; i < 120; i++) {
    el.scrollTop = (el.scrollHeight * ((i * 37) % 100)) / 100;
    const now = await frame();
    gaps.push(now - last);
    last = now;
  }
  gaps.sort((a, b) => a - b);
  return { median: gaps[60], p95: gaps[114], max: gaps[119], rowsInDom: document.querySelectorAll('[role=row]').length };
})()`)) as { median: number; p95: number; max: number; rowsInDom: number };
console.log(`scrolling: frame median ${scroll.median.toFixed(1)} ms, p95 ${scroll.p95.toFixed(1)} ms, max ${scroll.max.toFixed(1)} ms; ${scroll.rowsInDom} rows in the DOM`);

// Live load: 1,000 exchanges/s for 5 s while the page follows the tail.
await page.evaluate(`(() => {
  const el = document.querySelector('.exchange-list');
  el.scrollTop = el.scrollHeight;
  window.__gaps = [];
  let last = performance.now();
  const loop = (now) => {
    window.__gaps.push(now - last);
    last = now;
    if (!window.__stop) requestAnimationFrame(loop);
  };
  requestAnimationFrame(loop);
})()`);
t = performance.now();
for (let s = 0; s < 50; s++) {
  for (let i = 0; i < 100; i++) emitExchange(N + s * 100 + i);
  await new Promise((r) => setTimeout(r, Math.max(0, t + (s + 1) * 100 - performance.now())));
}
const target = (N + 5000).toLocaleString('en-US');
await page.getByTestId('row-count').filter({ hasText: target }).waitFor({ timeout: 30_000 });
const lag = performance.now() - t - 5000;
const live = (await page.evaluate(`(() => {
  window.__stop = true;
  const gaps = [...window.__gaps].sort((a, b) => a - b);
  return { frames: gaps.length, median: gaps[Math.floor(gaps.length / 2)], p95: gaps[Math.floor(gaps.length * 0.95)], max: gaps[gaps.length - 1] };
})()`)) as { frames: number; median: number; p95: number; max: number };
console.log(`live 1,000 exchanges/s for 5 s: ${live.frames} frames, frame median ${live.median.toFixed(1)} ms, p95 ${live.p95.toFixed(1)} ms, max ${live.max.toFixed(1)} ms; last row shown ${lag.toFixed(0)} ms after the last was captured`);

await browser.close();
await inspector.close();
await hopscope.close();
rmSync(dir, { recursive: true, force: true });
