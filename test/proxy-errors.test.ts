// Failures get a clear answer, are captured with their reason, and cost only their own
// connection: after each one the proxy still serves.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { startTestProxy, type TestProxy } from './helpers/proxy.js';
import { startUpstream, closedPort, startTcpServer, type TestUpstream } from './helpers/upstream.js';
import { proxiedRequest, rawExchange } from './helpers/clients.js';
import { recordEvents, type EventLog } from './helpers/events.js';
import { getConnection, getExchange, listExchanges } from '../packages/core/src/store/queries.js';

describe('proxy errors', { timeout: 30_000 }, () => {
  let proxy: TestProxy;
  let upstream: TestUpstream;
  let log: EventLog;

  before(async () => {
    upstream = await startUpstream((req, res) => {
      if (req.url === '/slow-body') {
        res.writeHead(200, { 'Content-Length': '1000000' });
        res.write(Buffer.alloc(1000, 'x'));
        // never finishes: the test's client goes away mid-body
      } else {
        res.end('ok');
      }
    });
    proxy = await startTestProxy({ responseTimeoutMs: 300 });
    log = recordEvents(proxy.bus);
  });

  after(async () => {
    log.stop();
    await proxy.close();
    await upstream.close();
  });

  const stillServes = async () => {
    const res = await proxiedRequest(proxy, `http://site.test:${upstream.port}/`);
    assert.equal(res.status, 200, 'the proxy keeps serving after the failure');
  };

  const failureOf = async (exchangeId: number) => {
    await log.waitFor((e) => e.kind === 'http.failed' && e.exchangeId === exchangeId);
    await proxy.flush();
    return getExchange(proxy.db, exchangeId)!;
  };

  test('connection refused: 502 naming the target, captured as refused', async () => {
    const port = await closedPort();
    const res = await proxiedRequest(proxy, `http://127.0.0.1:${port}/x`);
    assert.equal(res.status, 502);
    assert.match(res.body.toString(), new RegExp(`connection refused by 127\\.0\\.0\\.1:${port}`));
    const request = log.of('http.request').find((e) => e.port === port)!;
    const exchange = await failureOf(request.exchangeId);
    assert.equal(exchange.state, 'failed');
    assert.equal(exchange.error?.reason, 'refused');
    assert.equal(exchange.error?.code, 'ECONNREFUSED');
    await stillServes();
  });

  test('CONNECT to a refused port: 502 and the connection carries the reason', async () => {
    const port = await closedPort();
    const answer = await rawExchange(proxy, `CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    assert.match(answer, /^HTTP\/1\.1 502 /);
    assert.match(answer, /connection refused/);
    const tunnel = log.of('conn.tunnel').find((e) => e.port === port)!;
    await log.waitFor((e) => e.kind === 'conn.closed' && e.connId === tunnel.connId);
    await proxy.flush();
    assert.equal(getConnection(proxy.db, tunnel.connId)!.error?.reason, 'refused');
    const [row] = listExchanges(proxy.db, { limit: 5, connectionId: tunnel.connId });
    assert.deepEqual([row.method, row.status, row.state, row.errorReason], ['CONNECT', 502, 'failed', 'refused'], 'the failed tunnel is listed as its CONNECT');
    await stillServes();
  });

  test('an upstream that never answers: 504 after the response timeout', async () => {
    const silent = await startTcpServer(() => {});
    try {
      const res = await proxiedRequest(proxy, `http://127.0.0.1:${silent.port}/`);
      assert.equal(res.status, 504);
      assert.match(res.body.toString(), /did not answer in time/);
      const request = log.of('http.request').find((e) => e.port === silent.port)!;
      assert.equal((await failureOf(request.exchangeId)).error?.reason, 'timeout');
    } finally {
      await silent.close();
    }
    await stillServes();
  });

  test('malformed request line: 400 and close, captured on the connection', async () => {
    const answer = await rawExchange(proxy, 'GET\x01 /nope HTTP/1.1\r\n\r\n');
    assert.match(answer, /^HTTP\/1\.1 400 /);
    const closed = await log.waitFor((e) => e.kind === 'conn.closed' && e.error?.reason === 'bad-request');
    assert.ok(closed);
    await stillServes();
  });

  test('origin-form request to the proxy port: 400 explaining absolute-form', async () => {
    const answer = await rawExchange(proxy, 'GET /just-a-path HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(answer, /^HTTP\/1\.1 400 /);
    assert.match(answer, /absolute-form/);
  });

  for (const target of ['example.test', 'example.test:0', 'example.test:70000', '[::1', 'exa mple:80', ':443']) {
    test(`bad CONNECT target "${target}": 400`, async () => {
      const answer = await rawExchange(proxy, `CONNECT ${target} HTTP/1.1\r\nHost: x\r\n\r\n`);
      assert.match(answer, /^HTTP\/1\.1 400 /);
    });
  }

  test('oversized header block: 431', async () => {
    const big = 'X-Big: ' + 'a'.repeat(70 * 1024) + '\r\n';
    const answer = await rawExchange(proxy, `GET http://site.test:${upstream.port}/ HTTP/1.1\r\nHost: site.test\r\n${big}\r\n`);
    assert.match(answer, /^HTTP\/1\.1 431 /);
    await log.waitFor((e) => e.kind === 'conn.closed' && e.error?.reason === 'headers-too-large');
    await stillServes();
  });

  test('a client that vanishes mid-download ends that exchange as aborted', async () => {
    const socket = net.connect(proxy.port, proxy.host);
    socket.write(`GET http://site.test:${upstream.port}/slow-body HTTP/1.1\r\nHost: site.test\r\n\r\n`);
    await once(socket, 'data');
    socket.destroy();
    const request = await log.waitFor((e) => e.kind === 'http.request' && e.target.endsWith('/slow-body'));
    const exchange = await failureOf((request as { exchangeId: number }).exchangeId);
    assert.equal(exchange.error?.reason, 'aborted');
    assert.match(exchange.error?.message ?? '', /client/);
    await stillServes();
  });

  test('an upstream that vanishes mid-body ends that exchange as aborted', async () => {
    const dying = await startTcpServer((socket) => {
      socket.once('data', () => {
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n' + 'y'.repeat(500));
        setImmediate(() => socket.destroy());
      });
    });
    try {
      const outcome = await new Promise<string>((resolve) => {
        const req = http.get({ host: proxy.host, port: proxy.port, path: `http://127.0.0.1:${dying.port}/`, agent: false });
        req.on('response', (res) => {
          res.on('data', () => {});
          res.on('end', () => resolve('end'));
          res.on('error', () => resolve('error'));
          res.on('aborted', () => resolve('aborted'));
        });
        req.on('error', () => resolve('error'));
      });
      assert.notEqual(outcome, 'end', 'the client must not see a truncated body as complete');
      const request = log.of('http.request').find((e) => e.port === dying.port)!;
      const exchange = await failureOf(request.exchangeId);
      assert.equal(exchange.error?.reason, 'aborted');
      assert.equal(exchange.responseBodySize, 500);
    } finally {
      await dying.close();
    }
    await stillServes();
  });
});
