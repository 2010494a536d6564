// The inspector's HAR download route on a real HTTP server: a valid HAR streamed into the
// response, the filter language applied, bad filters explained, a client that leaves mid-download.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import type Database from 'better-sqlite3';
import { CaptureBus } from '../src/capture/bus.js';
import { IdAllocator } from '../src/capture/ids.js';
import { openStore } from '../src/store/open-store.js';
import { SqliteSink } from '../src/store/sqlite-sink.js';
import { handleHarRoute } from '../src/export/har-route.js';
import type { HarEntry } from '../src/export/har-types.js';

const harValidator = createRequire(import.meta.url)('har-validator') as { har(data: unknown): Promise<unknown> };

function capture(count: number): Database.Database {
  const { db } = openStore(':memory:');
  const bus = new CaptureBus();
  const ids = new IdAllocator();
  const sink = new SqliteSink(db, bus, { onError: (err) => assert.fail(err) });
  const connId = ids.nextConnId();
  bus.emit({ kind: 'conn.opened', connId, parentId: null, listener: 'proxy', clientAddress: '127.0.0.1', clientPort: 1 });
  for (let i = 0; i < count; i++) {
    const exchangeId = ids.nextExchangeId();
    const host = i % 2 ? 'api.test' : 'www.test';
    bus.emit({ kind: 'http.request', exchangeId, connId, streamId: null, protocol: 'HTTP/1.1', method: 'GET', target: `/${i}`,
      url: `http://${host}/${i}`, scheme: 'http', host, port: 80, headers: [['Host', host]] });
    bus.emit({ kind: 'http.response', exchangeId, protocol: 'HTTP/1.1', status: i % 3 ? 200 : 500, statusText: 'X', headers: [['Content-Type', 'text/plain']] });
    bus.emit({ kind: 'http.body', exchangeId, side: 'server', chunk: Buffer.from(`body ${i} `.repeat(100)) });
    bus.emit({ kind: 'http.completed', exchangeId, requestBodySize: 0, responseBodySize: 0, timings: { dnsMs: null, connectMs: null, tlsMs: null, requestEnd: null, responseStart: null } });
  }
  sink.close();
  return db;
}

describe('GET /api/har', { timeout: 20_000 }, () => {
  let server: http.Server;
  let base: string;
  let db: Database.Database;

  before(async () => {
    db = capture(3000);
    server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://inspector.invalid');
      if (!handleHarRoute(db, req, res, url)) {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    db.close();
  });

  test('streams a valid HAR as a download, filtered by the filter language', async () => {
    const res = await fetch(`${base}/api/har?filter=${encodeURIComponent('host:api.test status:500')}`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-disposition') ?? '', /^attachment; filename="hopscope-\d{8}-\d{6}\.har"$/);
    assert.equal(res.headers.get('content-length'), null, 'streamed, not buffered');
    const har = (await res.json()) as { log: { entries: HarEntry[] } };
    await harValidator.har(har);
    const urls = har.log.entries.map((e) => e.request.url);
    assert.equal(urls.length, 500, 'odd ids 3, 9, 15, … : api.test and status 500');
    assert.ok(urls.every((u) => /^http:\/\/api\.test\/\d+$/.test(u) && Number(u.split('/').pop()) % 3 === 0));
  });

  test('explains a bad filter with its position, and leaves other paths alone', async () => {
    const res = await fetch(`${base}/api/har?filter=${encodeURIComponent('status:')}`);
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: { code: string; message: string; start: number; end: number } };
    assert.equal(body.error.code, 'bad-filter');
    assert.equal(typeof body.error.start, 'number');
    assert.equal((await fetch(`${base}/api/exchanges`)).status, 404);
    assert.equal((await fetch(`${base}/api/har`, { method: 'POST' })).status, 405);
  });

  test('a client that leaves mid-download stops the export and the server carries on', async () => {
    const received = await new Promise<number>((resolve, reject) => {
      http.get(`${base}/api/har`, (res) => {
        let bytes = 0;
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes > 64 * 1024) res.destroy();
        });
        res.on('close', () => resolve(bytes));
      }).on('error', reject);
    });
    assert.ok(received > 64 * 1024);
    const again = await fetch(`${base}/api/har?filter=${encodeURIComponent('host:www.test')}`);
    assert.equal(((await again.json()) as { log: { entries: HarEntry[] } }).log.entries.length, 1500);
  });
});
