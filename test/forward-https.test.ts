// Absolute-form `GET https://…` sent in plain text to the proxy port: hopscope speaks TLS to the
// upstream itself, verifying it like Node's https agent (extra CAs, --upstream-insecure), and
// keeps those connections in its pool like plain ones.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestProxy, type TestProxy } from './helpers/proxy.js';
import { startUpstream, startTcpServer, upstreamCaFile, expiredTls, type TestUpstream } from './helpers/upstream.js';
import { proxiedRequest } from './helpers/clients.js';
import { recordEvents, type EventLog } from './helpers/events.js';
import type { CaptureEvent, HttpCompleted, HttpFailed } from '../packages/core/src/capture/events.js';

const isOutcome = (e: CaptureEvent): e is HttpCompleted | HttpFailed => e.kind === 'http.completed' || e.kind === 'http.failed';

describe('https:// absolute-form targets', { timeout: 30_000 }, () => {
  let upstream: TestUpstream;
  let expired: TestUpstream;
  let proxy: TestProxy;
  let log: EventLog;

  before(async () => {
    upstream = await startUpstream((req, res, body) => res.end(`tls ${req.method} ${req.url} ${body.length}`), { tls: true });
    expired = await startUpstream((_req, res) => res.end('should not be reached'), { tls: expiredTls });
    proxy = await startTestProxy({ upstreamCaFiles: [upstreamCaFile] });
    log = recordEvents(proxy.bus);
  });

  after(async () => {
    log.stop();
    await proxy.close();
    await upstream.close();
    await expired.close();
  });

  const outcomeOf = async (events: EventLog, path: string) => {
    const request = await events.waitFor((e) => e.kind === 'http.request' && e.target.endsWith(path));
    const exchangeId = (request as { exchangeId: number }).exchangeId;
    return events.waitFor((e): e is HttpCompleted | HttpFailed => isOutcome(e) && e.exchangeId === exchangeId);
  };

  test('verified TLS with SNI and ALPN http/1.1, one pooled connection for several requests', async () => {
    const before = upstream.connections;
    for (const path of ['/a', '/b', '/c']) {
      const res = await proxiedRequest(proxy, `https://site.test:${upstream.port}${path}`);
      assert.equal(res.status, 200);
      assert.equal(res.body.toString(), `tls GET ${path} 0`);
    }
    const post = await proxiedRequest(proxy, `https://site.test:${upstream.port}/upload`, { method: 'POST', body: 'x'.repeat(50_000) });
    assert.equal(post.body.toString(), 'tls POST /upload 50000');
    assert.equal(upstream.connections - before, 1, 'all four requests went over one TLS connection');
    assert.deepEqual(upstream.handshakes.at(-1), { alpn: 'http/1.1', servername: 'site.test' });

    const request = log.of('http.request').find((e) => e.target.endsWith('/a'))!;
    assert.equal(request.scheme, 'https');
    assert.equal(request.url, `https://site.test:${upstream.port}/a`);
    const first = await outcomeOf(log, '/a');
    assert.equal(first.kind, 'http.completed');
    assert.equal(typeof first.timings.tlsMs, 'number', 'the first request paid for the handshake');
    const second = await outcomeOf(log, '/b');
    assert.equal(second.timings.tlsMs, null, 'the second reused the connection');
    const response = log.of('http.response').find((e) => e.exchangeId === first.exchangeId)!;
    assert.equal(response.remoteAddress, '127.0.0.1');
    assert.equal(response.remotePort, upstream.port);
  });

  test('an upstream certificate that fails verification: 502 naming the host, captured as upstream-cert', async () => {
    const res = await proxiedRequest(proxy, `https://expired.test:${expired.port}/expired`);
    assert.equal(res.status, 502);
    assert.match(res.body.toString(), /certificate of expired\.test was rejected/);
    const done = await outcomeOf(log, '/expired');
    assert.equal(done.kind, 'http.failed');
    assert.equal((done as HttpFailed).error.reason, 'upstream-cert');
    assert.equal((done as HttpFailed).error.code, 'CERT_HAS_EXPIRED');
  });

  test('a proxy without the extra CA rejects the upstream; --upstream-insecure accepts it', async () => {
    const strict = await startTestProxy();
    const insecure = await startTestProxy({ upstreamInsecure: true });
    const strictLog = recordEvents(strict.bus);
    try {
      const rejected = await proxiedRequest(strict, `https://site.test:${upstream.port}/untrusted`);
      assert.equal(rejected.status, 502);
      const done = await outcomeOf(strictLog, '/untrusted');
      assert.equal((done as HttpFailed).error.reason, 'upstream-cert');
      const accepted = await proxiedRequest(insecure, `https://expired.test:${expired.port}/anyway`);
      assert.equal(accepted.status, 200);
      assert.equal(accepted.body.toString(), 'should not be reached');
    } finally {
      strictLog.stop();
      await strict.close();
      await insecure.close();
    }
  });

  test('an upstream that accepts but never finishes the TLS handshake: 504 after the connect timeout', async () => {
    const silent = await startTcpServer(() => {});
    const impatient = await startTestProxy({ connectTimeoutMs: 300 });
    const events = recordEvents(impatient.bus);
    try {
      const res = await proxiedRequest(impatient, `https://site.test:${silent.port}/never`);
      assert.equal(res.status, 504);
      assert.match(res.body.toString(), /did not answer in time/);
      const done = await outcomeOf(events, '/never');
      assert.equal((done as HttpFailed).error.reason, 'timeout');
      assert.match((done as HttpFailed).error.message, /timed out after 300 ms/);
    } finally {
      events.stop();
      await impatient.close();
      await silent.close();
    }
  });
});
