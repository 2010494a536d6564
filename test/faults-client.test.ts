// Client faults that proxy-errors.test.ts (a client vanishing mid-download in absolute form) and
// h2-intercept.test.ts (a client cancelling one stream) do not inject already: a client that aborts
// mid-upload (absolute form, and inside an intercepted tunnel), one that vanishes mid-download
// inside a tunnel (HTTP/1.1 and HTTP/2), idle keep-alive connections closed after the keep-alive
// timeout, and slowloris (headers trickled a byte at a time) closed with a 408 after the header
// timeout, with both timeouts also given as command-line flags.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { startTestProxy, testCaDir, type TestProxy } from './helpers/proxy.js';
import { startUpstream, upstreamCaFile, upstreamTls, type TestUpstream } from './helpers/upstream.js';
import { openTunnel, proxiedRequest } from './helpers/clients.js';
import { recordEvents, type EventLog } from './helpers/events.js';
import { startH2Upstream } from './helpers/h2-peers.js';
import { runCli } from './helpers/cli-process.js';
import { getConnection, getExchange, listExchanges } from '../packages/core/src/store/queries.js';
import { openStore } from '../packages/core/src/store/open-store.js';
import type { CaptureEvent, HttpFailed } from '../packages/core/src/capture/events.js';

type RequestEvent = Extract<CaptureEvent, { kind: 'http.request' }>;

/** What an upstream saw of one request whose client went away. */
interface SeenByUpstream {
  bytes: number;
  /** Whether the request body arrived whole. */
  complete: boolean;
  /** The response could not be finished because the connection went away. */
  responseCut: boolean;
}

/**
 * An HTTP(S) upstream for abort tests. Uploads: it reports the first body bytes, then records how
 * the request ended. `/download`: it sends part of a large body and records that it was cut.
 */
async function startWatchingUpstream(options: { tls?: boolean } = {}) {
  let firstBytes: () => void = () => {};
  let gone: (seen: SeenByUpstream) => void = () => {};
  const bodyStarted = new Promise<void>((resolve) => (firstBytes = resolve));
  const ended = new Promise<SeenByUpstream>((resolve) => (gone = resolve));
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    let bytes = 0;
    if (req.url?.endsWith('/download')) {
      res.writeHead(200, { 'Content-Length': '10000000' });
      res.write(Buffer.alloc(64 * 1024, 'd'));
      res.once('close', () => gone({ bytes, complete: req.complete, responseCut: !res.writableFinished }));
      return;
    }
    req.on('data', (c: Buffer) => {
      bytes += c.length;
      firstBytes();
    });
    req.once('close', () => gone({ bytes, complete: req.complete, responseCut: !res.writableFinished }));
  };
  const server = options.tls ? https.createServer(upstreamTls, onRequest) : http.createServer(onRequest);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    bodyStarted,
    ended,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('client faults', { timeout: 30_000 }, () => {
  let proxy: TestProxy;
  let log: EventLog;
  let ok: TestUpstream;
  let caPem: string;

  before(async () => {
    ok = await startUpstream((_req, res) => res.end('ok'));
    proxy = await startTestProxy({ upstreamCaFiles: [upstreamCaFile], keepAliveTimeoutMs: 300, headersTimeoutMs: 400 });
    log = recordEvents(proxy.bus);
    caPem = readFileSync(proxy.caCertPath, 'utf8');
  });

  after(async () => {
    log.stop();
    await proxy.close();
    await ok.close();
  });

  const stillServes = async () => {
    const res = await proxiedRequest(proxy, `http://site.test:${ok.port}/`);
    assert.equal(res.status, 200, 'the proxy keeps serving after the fault');
  };

  const requestTo = (port: number, path: string) =>
    log.waitFor((e): e is RequestEvent => e.kind === 'http.request' && e.port === port && e.target.endsWith(path));

  const failureOf = async (exchangeId: number) => {
    await log.waitFor((e): e is HttpFailed => e.kind === 'http.failed' && e.exchangeId === exchangeId);
    await proxy.flush();
    return getExchange(proxy.db, exchangeId)!;
  };

  /** A TLS session inside a CONNECT tunnel, intercepted by the proxy, that closes when either side does. */
  const interceptedTls = async (host: string, port: number, alpn = 'http/1.1') => {
    const raw = await openTunnel(proxy, `${host}:${port}`);
    raw.allowHalfOpen = false; // the TLS socket on top takes this over
    const secure = tls.connect({ socket: raw, servername: host, ca: caPem, ALPNProtocols: [alpn] });
    secure.on('error', () => {});
    await once(secure, 'secureConnect');
    return { raw, secure };
  };

  test('absolute form: a client that aborts mid-upload; the upstream sees the abort, the capture says aborted', async () => {
    const upstream = await startWatchingUpstream();
    try {
      const client = net.connect(proxy.port, proxy.host);
      client.on('error', () => {});
      client.write(`POST http://site.test:${upstream.port}/upload HTTP/1.1\r\nHost: site.test:${upstream.port}\r\nContent-Length: 100000\r\n\r\n`);
      client.write(Buffer.alloc(1000, 'u'));
      await upstream.bodyStarted;
      client.destroy();
      const seen = await upstream.ended;
      assert.deepEqual([seen.complete, seen.bytes], [false, 1000], 'the upstream saw a cut request body');
      const request = await requestTo(upstream.port, '/upload');
      const exchange = await failureOf(request.exchangeId);
      assert.equal(exchange.error?.reason, 'aborted');
      assert.match(exchange.error?.message ?? '', /client/);
      assert.equal(exchange.requestBodySize, 1000);
      assert.equal(exchange.status, null, 'no response was started');
    } finally {
      await upstream.close();
    }
    await stillServes();
  });

  test('intercepted tunnel: a client that aborts mid-upload; the upstream sees the abort, the capture says aborted', async () => {
    const upstream = await startWatchingUpstream({ tls: true });
    try {
      const { secure } = await interceptedTls('upload.site.test', upstream.port);
      secure.write(`POST /upload HTTP/1.1\r\nHost: upload.site.test:${upstream.port}\r\nContent-Length: 100000\r\n\r\n`);
      secure.write(Buffer.alloc(1000, 'u'));
      await upstream.bodyStarted;
      secure.end(); // close_notify and FIN with 99,000 body bytes owed
      const seen = await upstream.ended;
      assert.deepEqual([seen.complete, seen.bytes], [false, 1000], 'the upstream saw a cut request body');
      const request = await requestTo(upstream.port, '/upload');
      const exchange = await failureOf(request.exchangeId);
      assert.equal(exchange.error?.reason, 'aborted');
      assert.match(exchange.error?.message ?? '', /client/);
      assert.equal(exchange.requestBodySize, 1000);
    } finally {
      await upstream.close();
    }
    await stillServes();
  });

  test('intercepted tunnel: a client that resets mid-download; the upstream sees the connection go, the capture says reset', async () => {
    const upstream = await startWatchingUpstream({ tls: true });
    try {
      const { raw, secure } = await interceptedTls('download.site.test', upstream.port);
      secure.write(`GET /download HTTP/1.1\r\nHost: download.site.test:${upstream.port}\r\n\r\n`);
      await once(secure, 'data');
      raw.resetAndDestroy();
      const seen = await upstream.ended;
      assert.equal(seen.responseCut, true, 'the upstream could not finish its response');
      const request = await requestTo(upstream.port, '/download');
      const exchange = await failureOf(request.exchangeId);
      assert.deepEqual([exchange.state, exchange.status, exchange.error?.reason], ['failed', 200, 'reset']);
      assert.ok(exchange.responseBodySize! > 0 && exchange.responseBodySize! < 10_000_000);
      await log.waitFor((e) => e.kind === 'conn.closed' && e.connId === request.connId);
      await proxy.flush();
      assert.equal(getConnection(proxy.db, request.connId)?.error?.reason, 'reset', 'the tunnel says how it ended');
    } finally {
      await upstream.close();
    }
    await stillServes();
  });

  test('intercepted HTTP/2: a client that drops the connection mid-download; the upstream stream is closed, the capture fails it', async () => {
    let upstreamStream: http2.ServerHttp2Stream | null = null;
    const h2 = await startH2Upstream((stream) => {
      upstreamStream = stream;
      stream.respond({ ':status': 200 });
      stream.write(Buffer.alloc(16 * 1024, 'h'));
    });
    try {
      const { raw, secure } = await interceptedTls('h2gone.site.test', h2.port, 'h2');
      const session = http2.connect(`https://h2gone.site.test:${h2.port}`, { createConnection: () => secure });
      session.on('error', () => {});
      const stream = session.request({ ':path': '/h2-download' });
      stream.on('error', () => {});
      await once(stream, 'data');
      raw.destroy();
      const serverSide = upstreamStream as unknown as http2.ServerHttp2Stream;
      if (!serverSide.closed) await once(serverSide, 'close');
      assert.equal(serverSide.aborted, true, 'the upstream saw its stream aborted');
      const request = await requestTo(h2.port, '/h2-download');
      const exchange = await failureOf(request.exchangeId);
      assert.equal(exchange.state, 'failed');
      assert.equal(exchange.error?.reason, 'aborted');
      assert.equal(exchange.error?.message, 'the client closed the connection in the middle of the response');
    } finally {
      await h2.close();
    }
    await stillServes();
  });

  test('an idle keep-alive connection is closed after the keep-alive timeout; its exchange stays complete', async () => {
    const client = net.connect(proxy.port, proxy.host);
    client.write(`GET http://site.test:${ok.port}/idle HTTP/1.1\r\nHost: site.test:${ok.port}\r\n\r\n`);
    const [answer] = (await once(client, 'data')) as [Buffer];
    const answeredAt = performance.now();
    assert.match(answer.toString('latin1'), /^HTTP\/1\.1 200 OK\r\n/);
    client.resume();
    await once(client, 'close');
    const idleMs = performance.now() - answeredAt;
    assert.ok(idleMs >= 250, `closed after ${idleMs.toFixed(0)} ms of idleness, not before the 300 ms timeout`);
    const request = await requestTo(ok.port, '/idle');
    await log.waitFor((e) => e.kind === 'conn.closed' && e.connId === request.connId);
    await proxy.flush();
    assert.equal(getExchange(proxy.db, request.exchangeId)?.state, 'complete');
    const conn = getConnection(proxy.db, request.connId)!;
    assert.equal(conn.error, null, 'an idle close is the proxy tidying up, not a failure');
    assert.ok(conn.closedAt! - getExchange(proxy.db, request.exchangeId)!.completedAt! >= 250);
  });

  test('slowloris: headers trickled a byte at a time get a 408 after the header timeout; others are served meanwhile', async () => {
    const head = `GET http://site.test:${ok.port}/slow HTTP/1.1\r\nHost: site.test:${ok.port}\r\nX-Padding: ${'p'.repeat(200)}\r\n\r\n`;
    const client = net.connect(proxy.port, proxy.host);
    let answer = '';
    client.setEncoding('latin1').on('data', (t: string) => (answer += t));
    client.on('error', () => {});
    let sent = 0;
    const trickle = setInterval(() => {
      if (client.writable && sent < head.length) client.write(head[sent++]);
    }, 20);
    const startedAt = performance.now();
    try {
      await stillServes(); // a well-behaved client is not held up
      await once(client, 'close');
    } finally {
      clearInterval(trickle);
    }
    const tookMs = performance.now() - startedAt;
    assert.match(answer, /^HTTP\/1\.1 408 /);
    assert.match(answer, /request headers took too long/);
    assert.ok(sent < head.length, 'closed before the header block was complete');
    assert.ok(tookMs >= 350 && tookMs < 5_000, `closed after ${tookMs.toFixed(0)} ms (header timeout 400 ms)`);
    const closed = await log.waitFor(
      (e): e is Extract<CaptureEvent, { kind: 'conn.closed' }> => e.kind === 'conn.closed' && e.error?.code === 'ERR_HTTP_REQUEST_TIMEOUT',
    );
    await proxy.flush();
    const conn = getConnection(proxy.db, closed.connId)!;
    assert.equal(conn.error?.reason, 'timeout');
    assert.equal(listExchanges(proxy.db, { limit: 5, connectionId: conn.id }).length, 0, 'no exchange was made of a half request');
  });

  test('headers that arrive slowly but within the header timeout are served', async () => {
    const head = `GET http://site.test:${ok.port}/patient HTTP/1.1\r\nHost: site.test:${ok.port}\r\nConnection: close\r\n\r\n`;
    const client = net.connect(proxy.port, proxy.host);
    let answer = '';
    client.setEncoding('latin1').on('data', (t: string) => (answer += t));
    const closed = once(client, 'close');
    // Four pieces, 50 ms apart: a slow client, yet the whole block is in well before 400 ms.
    const pieces = [0, 1, 2, 3].map((i) => head.slice((i * head.length) / 4, ((i + 1) * head.length) / 4));
    for (const [i, piece] of pieces.entries()) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, 50));
      client.write(piece);
    }
    await closed;
    assert.match(answer, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nok$/);
  });
});

describe('client timeouts as command-line flags', { timeout: 30_000 }, () => {
  test('--header-timeout and --keep-alive-timeout reach the proxy port', async () => {
    const ok = await startUpstream((_req, res) => res.end('ok'));
    const dir = mkdtempSync(join(tmpdir(), 'hopscope-client-faults-'));
    const dbPath = join(dir, 'capture.sqlite');
    const cli = runCli(['start', '--listen', '127.0.0.1:0', '--no-ui', '--db', dbPath, '--ca-dir', testCaDir(), '--quiet',
      '--header-timeout', '300', '--keep-alive-timeout', '200']);
    try {
      const url = new URL(await cli.line('proxy'));
      const proxy = { host: url.hostname, port: Number(url.port) };

      // Nothing sent at all: a 408 once the header timeout is over.
      const silent = net.connect(proxy.port, proxy.host);
      let silentAnswer = '';
      silent.setEncoding('latin1').on('data', (t: string) => (silentAnswer += t));
      const silentStart = performance.now();
      await once(silent, 'close');
      assert.match(silentAnswer, /^HTTP\/1\.1 408 /);
      assert.ok(performance.now() - silentStart >= 250);

      // Half a header block, then nothing: a 408 too.
      const half = net.connect(proxy.port, proxy.host);
      let halfAnswer = '';
      half.setEncoding('latin1').on('data', (t: string) => (halfAnswer += t));
      half.write(`GET http://site.test:${ok.port}/half HTTP/1.1\r\nHost: site`);
      await once(half, 'close');
      assert.match(halfAnswer, /^HTTP\/1\.1 408 .*\r\n[\s\S]*request headers took too long/);

      // A keep-alive connection closed after 200 ms of idleness.
      const idle = net.connect(proxy.port, proxy.host);
      idle.write(`GET http://127.0.0.1:${ok.port}/idle HTTP/1.1\r\nHost: 127.0.0.1:${ok.port}\r\n\r\n`);
      await once(idle, 'data');
      const answeredAt = performance.now();
      idle.resume();
      await once(idle, 'close');
      assert.ok(performance.now() - answeredAt >= 150);
    } finally {
      assert.equal(await cli.stop(), 0, cli.stderr());
      await ok.close();
    }
    const { db } = openStore(dbPath, { readonly: true });
    try {
      const rows = db.prepare('SELECT error_reason AS reason, error_code AS code FROM connections ORDER BY id').all() as Array<{ reason: string | null; code: string | null }>;
      assert.deepEqual(rows.map((r) => r.reason), ['timeout', 'timeout', null], 'two timed out; the idle close is no failure');
      const [exchange] = listExchanges(db, { limit: 5 });
      assert.deepEqual([exchange.url, exchange.state], [`http://127.0.0.1:${ok.port}/idle`, 'complete']);
    } finally {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
