// Exporting a large capture streams: 100,000 exchanges (built through the real bus and sink, not
// by traffic) are exported by a separate process whose peak RSS is compared with the same process
// exporting nothing, and with the size of the HAR it wrote.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaptureBus } from '../src/capture/bus.js';
import { IdAllocator } from '../src/capture/ids.js';
import { openStore } from '../src/store/open-store.js';
import { SqliteSink } from '../src/store/sqlite-sink.js';

const EXCHANGES = 100_000;
const MiB = 1024 * 1024;
const harFileModule = new URL('../src/export/har-file.ts', import.meta.url).href;

/** Writes `count` exchanges, ten per connection, through the bus and the sink into `path`. */
async function buildCapture(path: string, count: number): Promise<void> {
  const { db } = openStore(path);
  const bus = new CaptureBus();
  const ids = new IdAllocator();
  const sink = new SqliteSink(db, bus, { onError: (err) => assert.fail(err) });
  const timings = { dnsMs: 0.2, connectMs: 0.5, tlsMs: null, requestEnd: null, responseStart: null };
  let connId = 0;
  for (let i = 0; i < count; i++) {
    if (i % 10 === 0) {
      if (connId) bus.emit({ kind: 'conn.closed', connId, bytesFromClient: 1000, bytesFromServer: 5000, error: null });
      connId = ids.nextConnId();
      bus.emit({ kind: 'conn.opened', connId, parentId: null, listener: 'proxy', clientAddress: '127.0.0.1', clientPort: 40000 + (i % 20000) });
    }
    const exchangeId = ids.nextExchangeId();
    const host = `host${i % 50}.test`;
    bus.emit({ kind: 'http.request', exchangeId, connId, streamId: null, protocol: 'HTTP/1.1', method: 'GET', target: `/api/items/${i}?page=${i % 7}`,
      url: `http://${host}/api/items/${i}?page=${i % 7}`, scheme: 'http', host, port: 80,
      headers: [['Host', host], ['User-Agent', 'load/1.0'], ['Accept', 'application/json'], ['Cookie', `session=${i}; theme=dark`]] });
    bus.emit({ kind: 'http.response', exchangeId, protocol: 'HTTP/1.1', status: i % 13 === 0 ? 404 : 200, statusText: 'OK',
      headers: [['Content-Type', 'application/json'], ['Cache-Control', 'no-store'], ['Set-Cookie', `seen=${i}; Path=/`]], remoteAddress: '127.0.0.1', remotePort: 80 });
    const body = Buffer.from(JSON.stringify({ id: i, name: `item number ${i}`, tags: ['a', 'b', 'c'], filler: 'x'.repeat(200) }));
    bus.emit({ kind: 'http.body', exchangeId, side: 'server', chunk: body });
    bus.emit({ kind: 'http.completed', exchangeId, requestBodySize: 0, responseBodySize: body.length, timings });
    if (i % 2000 === 1999) await sink.flush(); // keep the sink's queue short, as the live timer would
  }
  bus.emit({ kind: 'conn.closed', connId, bytesFromClient: 1000, bytesFromServer: 5000, error: null });
  sink.close();
  db.close();
}

interface ExportRun {
  entries: number;
  /** Peak resident set of the exporting process, bytes. */
  maxRss: number;
  ms: number;
}

/** Exports in a fresh process (tsx-loaded sources) and reports its own peak RSS. */
function exportInChild(capture: string, out: string, filter: object = {}): Promise<ExportRun> {
  const code = `
    const { exportHarFile } = await import(${JSON.stringify(harFileModule)});
    const t0 = performance.now();
    const { entries } = await exportHarFile(${JSON.stringify(capture)}, ${JSON.stringify(out)}, { filter: ${JSON.stringify(filter)} });
    process.stdout.write(JSON.stringify({ entries, maxRss: process.resourceUsage().maxRSS * 1024, ms: performance.now() - t0 }));
  `;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { timeout: 120_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`export failed: ${stderr || err.message}`));
      else resolve(JSON.parse(stdout) as ExportRun);
    });
  });
}

async function countLines(path: string): Promise<number> {
  let lines = 0;
  for await (const chunk of createReadStream(path)) for (const byte of chunk as Buffer) if (byte === 0x0a) lines++;
  return lines;
}

describe('HAR export of a large capture', { timeout: 180_000 }, () => {
  let dir: string;
  let capture: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hopscope-har-memory-'));
    capture = join(dir, 'large.sqlite');
    await buildCapture(capture, EXCHANGES);
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  test(`exports ${EXCHANGES.toLocaleString('en')} exchanges in memory that does not grow with their number`, async () => {
    const out = join(dir, 'large.har');
    const baseline = await exportInChild(capture, join(dir, 'empty.har'), { host: 'nothing.test' });
    const tenth = await exportInChild(capture, join(dir, 'tenth.har'), { beforeId: EXCHANGES / 10 + 1 });
    const full = await exportInChild(capture, out);
    const harSize = statSync(out).size;
    const mib = (n: number) => `${(n / MiB).toFixed(0)} MiB`;
    process.stdout.write(
      `# HAR export of ${full.entries} exchanges: ${mib(harSize)} written in ${(full.ms / 1000).toFixed(1)} s; peak RSS ${mib(full.maxRss)} ` +
        `(${mib(tenth.maxRss)} for the first ${tenth.entries}, ${mib(baseline.maxRss)} exporting nothing)\n`,
    );
    assert.equal(baseline.entries, 0);
    assert.equal(tenth.entries, EXCHANGES / 10);
    assert.equal(full.entries, EXCHANGES);
    assert.equal(await countLines(out), EXCHANGES + 2, 'one line per entry between the head and the tail');
    assert.ok(harSize > 100 * MiB, `the HAR is large (${mib(harSize)})`);
    // Memory that held the HAR would grow tenfold between the two; heap headroom and caches do not.
    assert.ok(full.maxRss - tenth.maxRss < 40 * MiB, `ten times the exchanges took ${mib(full.maxRss - tenth.maxRss)} more`);
    // What remains is V8 letting its old space grow before the first full collection.
    assert.ok(full.maxRss - baseline.maxRss < 100 * MiB, `peak RSS grew by ${mib(full.maxRss - baseline.maxRss)} for a ${mib(harSize)} HAR`);
  });
});
