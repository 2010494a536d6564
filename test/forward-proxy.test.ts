// The active HTTP/1 path: absolute-form requests through the proxy port, with real upstream
// servers and real clients (Node's http client and curl), checking what the upstream received
// and what the capture holds.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startTestProxy, type TestProxy } from './helpers/proxy.js';
import { startUpstream, headerPairs, type TestUpstream } from './helpers/upstream.js';
import { proxiedRequest, curl } from './helpers/clients.js';
import { recordEvents, type EventLog } from './helpers/events.js';
import { getExchange } from '../packages/core/src/store/queries.js';

describe('absolute-form forward proxy', { timeout: 30_000 }, () => {
  let proxy: TestProxy;
  let upstream: TestUpstream;
  let log: EventLog;

  before(async () => {
    upstream = await startUpstream((req, res, body) => {
      if (req.url === '/echo') {
        res.writeHead(200, [['Content-Type', 'application/octet-stream'], ['X-Echo-Length', String(body.length)]].flat());
        res.end(body);
      } else if (req.url === '/trailers') {
        res.writeHead(200, { 'Content-Type': 'text/plain', Trailer: 'X-Checksum' });
        res.write('part one;');
        res.addTrailers({ 'X-Checksum': 'abc123' });
        res.end('part two');
      } else if (req.url === '/no-content') {
        res.writeHead(204);
        res.end();
      } else if (req.url === '/not-modified') {
        res.writeHead(304, { ETag: '"v1"' });
        res.end();
      } else {
        res.writeHead(200, ['Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'X-Mixed-Case', 'Yes']);
        res.end('hello from upstream');
      }
    });
    proxy = await startTestProxy();
    log = recordEvents(proxy.bus);
  });

  after(async () => {
    log.stop();
    await proxy.close();
    await upstream.close();
  });

  const origin = () => `http://site.test:${upstream.port}`;

  test('forwards a GET with end-to-end headers in order and hop-by-hop headers removed', async () => {
    const res = await proxiedRequest(proxy, `${origin()}/hello?x=1`, {
      headers: [
        'Host', `site.test:${upstream.port}`,
        'X-First', '1',
        'Proxy-Connection', 'keep-alive',
        'Connection', 'close, X-Private',
        'X-Private', 'secret',
        'Keep-Alive', 'timeout=5',
        'TE', 'trailers',
        'Proxy-Authorization', 'Basic Zm9vOmJhcg==',
        'x-lower', 'a',
        'X-Dup', 'one',
        'X-Dup', 'two',
      ],
    });
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), 'hello from upstream');
    assert.deepEqual(headerPairs(res.rawHeaders).filter(([n]) => n === 'Set-Cookie'), [['Set-Cookie', 'a=1'], ['Set-Cookie', 'b=2']]);

    const seen = upstream.received.at(-1)!;
    assert.equal(seen.url, '/hello?x=1');
    const names = headerPairs(seen.rawHeaders).map(([n]) => n);
    for (const hop of ['Proxy-Connection', 'X-Private', 'Keep-Alive', 'TE', 'Proxy-Authorization']) {
      assert.ok(!names.includes(hop), `${hop} must not be forwarded`);
    }
    const endToEnd = headerPairs(seen.rawHeaders).filter(([n]) => n !== 'Connection');
    assert.deepEqual(endToEnd, [
      ['Host', `site.test:${upstream.port}`],
      ['X-First', '1'],
      ['x-lower', 'a'],
      ['X-Dup', 'one'],
      ['X-Dup', 'two'],
    ]);

    const done = await log.waitFor((e) => e.kind === 'http.completed');
    await proxy.flush();
    const captured = getExchange(proxy.db, (done as { exchangeId: number }).exchangeId)!;
    assert.equal(captured.method, 'GET');
    assert.equal(captured.url, `${origin()}/hello?x=1`);
    assert.equal(captured.status, 200);
    assert.equal(captured.requestHeaders.find(([n]) => n === 'Proxy-Authorization')?.[1], 'Basic Zm9vOmJhcg==', 'capture keeps what the client sent');
    assert.deepEqual(captured.responseHeaders?.filter(([n]) => n === 'X-Mixed-Case'), [['X-Mixed-Case', 'Yes']]);
    assert.equal(captured.responseBody?.data.toString(), 'hello from upstream');
    assert.equal(captured.state, 'complete');
  });

  test('streams a chunked request body with trailers and records both bodies', async () => {
    const payload = Buffer.alloc(300_000, 'abcdefghij');
    const res = await new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
      const req = http.request({
        host: proxy.host,
        port: proxy.port,
        method: 'POST',
        path: `${origin()}/echo`,
        headers: { 'Transfer-Encoding': 'chunked', Trailer: 'X-Sum' },
      });
      req.on('error', reject);
      req.on('response', (r) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, body: Buffer.concat(chunks) }));
      });
      req.write(payload.subarray(0, 100_000));
      req.write(payload.subarray(100_000));
      req.addTrailers({ 'X-Sum': '42' });
      req.end();
    });
    assert.equal(res.status, 200);
    assert.ok(res.body.equals(payload));
    const seen = upstream.received.at(-1)!;
    assert.ok(seen.body.equals(payload), 'upstream got the whole body');
    assert.deepEqual(seen.trailers, ['X-Sum', '42']);

    const done = await log.waitFor((e) => e.kind === 'http.completed' && e.requestBodySize === payload.length);
    await proxy.flush();
    const captured = getExchange(proxy.db, (done as { exchangeId: number }).exchangeId)!;
    assert.ok(captured.requestBody?.data.equals(payload));
    assert.equal(captured.responseBody?.size, payload.length);
    assert.deepEqual(captured.requestTrailers, [['X-Sum', '42']]);
  });

  test('relays response trailers', async () => {
    const res = await proxiedRequest(proxy, `${origin()}/trailers`);
    assert.equal(res.body.toString(), 'part one;part two');
    assert.deepEqual(res.trailers, ['X-Checksum', 'abc123']);
  });

  test('HEAD, 204 and 304 carry no body', async () => {
    const head = await proxiedRequest(proxy, `${origin()}/hello`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    const noContent = await proxiedRequest(proxy, `${origin()}/no-content`);
    assert.equal(noContent.status, 204);
    const notModified = await proxiedRequest(proxy, `${origin()}/not-modified`, { headers: { 'If-None-Match': '"v1"' } });
    assert.equal(notModified.status, 304);
    assert.equal(notModified.body.length, 0);
  });

  test('keeps client connections alive and reuses upstream connections', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const before = upstream.connections;
    const connsBefore = log.of('conn.opened').length;
    for (let i = 0; i < 5; i++) {
      const res = await proxiedRequest(proxy, `${origin()}/hello`, { agent });
      assert.equal(res.status, 200);
    }
    agent.destroy();
    assert.ok(upstream.connections - before <= 1, `upstream saw ${upstream.connections - before} new connections for 5 requests`);
    assert.equal(log.of('conn.opened').length - connsBefore, 1, 'one client connection carried all five requests');
  });

  test('Expect: 100-continue is forwarded and the upstream 100 relayed', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request({
        host: proxy.host,
        port: proxy.port,
        method: 'PUT',
        path: `${origin()}/echo`,
        headers: { Expect: '100-continue', 'Content-Length': '5' },
      });
      req.on('error', reject);
      req.on('continue', () => req.end('12345'));
      req.on('response', (r) => {
        r.resume();
        r.on('end', () => resolve(r.statusCode ?? 0));
      });
    });
    assert.equal(status, 200);
    const seen = upstream.received.at(-1)!;
    assert.equal(seen.body.toString(), '12345');
    assert.ok(headerPairs(seen.rawHeaders).some(([n, v]) => n.toLowerCase() === 'expect' && v === '100-continue'));
  });

  test('curl -x works through the proxy and is captured', async () => {
    const result = await curl(['-x', proxy.proxyUrl, '-H', 'X-From: curl', `${origin()}/hello`]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'hello from upstream');
    const seen = upstream.received.at(-1)!;
    assert.ok(headerPairs(seen.rawHeaders).some(([n, v]) => n === 'X-From' && v === 'curl'));
    const request = await log.waitFor((e) => e.kind === 'http.request' && e.headers.some(([n]) => n === 'X-From'));
    await log.waitFor((e) => e.kind === 'http.completed' && e.exchangeId === (request as { exchangeId: number }).exchangeId);
    await proxy.flush();
    const captured = getExchange(proxy.db, (request as { exchangeId: number }).exchangeId)!;
    assert.equal(captured.status, 200);
    assert.match(captured.requestHeaders.find(([n]) => n === 'User-Agent')?.[1] ?? '', /^curl\//);
  });
});
