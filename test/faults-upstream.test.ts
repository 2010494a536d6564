// Upstream faults that proxy-errors.test.ts, dns-failure.test.ts, forward-https.test.ts,
// tls-intercept.test.ts, h2-intercept.test.ts and ws-paths.test.ts do not inject already: a TCP
// reset mid-response on each path (active, relayed HTTP/1 in CONNECT, intercepted HTTP/2), a TLS
// handshake that fails for another reason than the certificate, a stall past --response-timeout
// given on the command line, an HTTP/2 upstream that sends GOAWAY with an error and drops the
// connection with streams open, and WebSocket peers that vanish on the paths not covered there.
// Each test checks what the client got, what the capture holds, and that the proxy still serves.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { startTestProxy, testCaDir, type TestProxy } from './helpers/proxy.js';
import { runCli } from './helpers/cli-process.js';
import { startTcpServer, startUpstream, upstreamCaFile, upstreamTls, type TestUpstream } from './helpers/upstream.js';
import { openTunnel, proxiedRequest } from './helpers/clients.js';
import { recordEvents, type EventLog } from './helpers/events.js';
import { h2Request, startH2Upstream, type H2Upstream } from './helpers/h2-peers.js';
import { ClientLog, connectClient, opened, startWsServer } from './helpers/ws-peers.js';
import { getConnection, getExchange, getWebSocket, listExchanges, listH2Frames } from '../packages/core/src/store/queries.js';
import { openStore } from '../packages/core/src/store/open-store.js';
import type { CaptureEvent, HttpFailed, WsClosed } from '../packages/core/src/capture/events.js';
import { encodeFrame } from '../packages/core/test/helpers/ws-encode.js';

const { NGHTTP2_CANCEL, NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants;

/**
 * An upstream that answers a head and part of the body, then holds the connection until the test
 * resets it: only once the client has the partial body is it sure the proxy read it before the
 * RST (Linux reports a reset that overtakes unread data as a plain end of stream).
 */
interface ResettingUpstream {
  port: number;
  /** Resets the TCP connection of the last request. */
  reset(): void;
  close(): Promise<void>;
}

async function startResettingUpstream(options: { tls?: boolean } = {}): Promise<ResettingUpstream> {
  const raw: net.Socket[] = [];
  const head = 'HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n';
  const answer = (socket: net.Socket | tls.TLSSocket) => socket.once('data', () => socket.write(head + 'y'.repeat(500)));
  const server = options.tls
    ? tls.createServer({ ...upstreamTls, ALPNProtocols: ['http/1.1'] }, (secure) => {
        secure.on('error', () => {});
        answer(secure);
      })
    : net.createServer((socket) => answer(socket));
  server.on('connection', (socket: net.Socket) => {
    socket.on('error', () => {});
    raw.push(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    reset: () => raw.at(-1)!.resetAndDestroy(),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of raw) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** GETs `url` through the proxy in absolute form; calls `onBytes` with each total so far. */
function absoluteGet(proxy: { host: string; port: number }, url: string, onBytes: (total: number) => void): Promise<{ how: string; bytes: number }> {
  return new Promise((resolve) => {
    const req = http.get({ host: proxy.host, port: proxy.port, path: url, agent: false });
    req.on('response', (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => onBytes((bytes += c.length)));
      res.on('end', () => resolve({ how: 'end', bytes }));
      res.on('aborted', () => resolve({ how: 'aborted', bytes }));
      res.on('error', () => resolve({ how: 'error', bytes }));
    });
    req.on('error', (err) => resolve({ how: `request error: ${err.message}`, bytes: 0 }));
  });
}

/** What a client's whole HTTP/1.1 exchange over a socket came to: the bytes, and how it ended. */
function readUntilGone(socket: net.Socket | tls.TLSSocket, onText: (text: string) => void = () => {}): Promise<{ text: string; ending: string }> {
  return new Promise((resolve) => {
    let text = '';
    let ending = 'close';
    socket.setEncoding('latin1');
    socket.on('data', (t: string) => onText((text += t)));
    socket.on('end', () => {
      ending = 'end';
      socket.destroy(); // a tunnel socket is half-open: close our side too
    });
    socket.on('error', (err: NodeJS.ErrnoException) => (ending = err.code ?? err.message));
    socket.on('close', () => resolve({ text, ending }));
    socket.resume();
  });
}

describe('upstream faults', { timeout: 30_000 }, () => {
  let proxy: TestProxy;
  let log: EventLog;
  let ok: TestUpstream;
  let caPem: string;

  before(async () => {
    ok = await startUpstream((_req, res) => res.end('ok'));
    proxy = await startTestProxy({ upstreamCaFiles: [upstreamCaFile] });
    log = recordEvents(proxy.bus);
    caPem = readFileSync(proxy.caCertPath, 'utf8');
  });

  after(async () => {
    log.stop();
    await proxy.close();
    await ok.close();
  });

  /**
   * An HTTP/2 client session through a CONNECT tunnel whose sockets close when the proxy ends the
   * connection, as a browser's or curl's do (openTunnel's socket stays half-open on purpose).
   */
  const h2Session = async (host: string, port: number): Promise<http2.ClientHttp2Session> => {
    const raw = await openTunnel(proxy, `${host}:${port}`);
    raw.allowHalfOpen = false; // the TLS socket on top takes this over
    const session = http2.connect(`https://${host}:${port}`, {
      createConnection: () => tls.connect({ socket: raw, servername: host, ca: caPem, ALPNProtocols: ['h2'] }),
    });
    session.on('error', () => {});
    await once(session, 'connect');
    return session;
  };

  const stillServes = async () => {
    const res = await proxiedRequest(proxy, `http://site.test:${ok.port}/`);
    assert.equal(res.status, 200, 'the proxy keeps serving after the fault');
  };

  const requestTo = (port: number, path?: string) =>
    log.waitFor((e): e is Extract<CaptureEvent, { kind: 'http.request' }> => e.kind === 'http.request' && e.port === port && (!path || e.target.endsWith(path)));

  const failureOf = async (exchangeId: number) => {
    await log.waitFor((e): e is HttpFailed => e.kind === 'http.failed' && e.exchangeId === exchangeId);
    await proxy.flush();
    return getExchange(proxy.db, exchangeId)!;
  };

  const closedConnection = async (connId: number) => {
    await log.waitFor((e) => e.kind === 'conn.closed' && e.connId === connId);
    await proxy.flush();
    return getConnection(proxy.db, connId)!;
  };

  for (const scheme of ['http', 'https'] as const) {
    test(`${scheme}:// absolute-form: an upstream reset mid-response cuts the client response and is captured as reset`, async () => {
      const upstream = await startResettingUpstream({ tls: scheme === 'https' });
      try {
        const outcome = await absoluteGet(proxy, `${scheme}://site.test:${upstream.port}/rst`, (total) => total === 500 && upstream.reset());
        assert.deepEqual(outcome, { how: 'aborted', bytes: 500 }, 'a cut response must not look complete to the client');
        const request = await requestTo(upstream.port);
        const exchange = await failureOf(request.exchangeId);
        assert.deepEqual([exchange.state, exchange.status, exchange.responseBodySize], ['failed', 200, 500]);
        assert.equal(exchange.error?.reason, 'reset');
        assert.equal(exchange.error?.code, 'ECONNRESET');
      } finally {
        await upstream.close();
      }
      await stillServes();
    });
  }

  test('HTTP/1.1 in a CONNECT tunnel: an upstream reset mid-response resets the client, the exchange and the tunnel say reset', async () => {
    const upstream = await startResettingUpstream();
    try {
      const tunnel = await openTunnel(proxy, `site.test:${upstream.port}`);
      tunnel.write(`GET /tunnel-rst HTTP/1.1\r\nHost: site.test:${upstream.port}\r\n\r\n`);
      const got = await readUntilGone(tunnel, (text) => text.endsWith('y'.repeat(500)) && upstream.reset());
      assert.match(got.text, /^HTTP\/1\.1 200 OK\r\n/);
      assert.equal(got.text.length - got.text.indexOf('\r\n\r\n') - 4, 500, 'the relay forwarded every byte before the reset');
      assert.equal(got.ending, 'ECONNRESET', 'the reset is passed on as a reset, not as an end');
      const request = await requestTo(upstream.port, '/tunnel-rst');
      const exchange = await failureOf(request.exchangeId);
      assert.equal(exchange.error?.reason, 'reset');
      assert.equal(exchange.responseBodySize, 500);
      const conn = await closedConnection(request.connId);
      assert.equal(conn.error?.reason, 'reset');
      assert.equal(conn.error?.code, 'ECONNRESET');
    } finally {
      await upstream.close();
    }
    await stillServes();
  });

  test('intercepted HTTP/2: an upstream reset fails the open stream and the connection as reset', async () => {
    const raws: net.Socket[] = [];
    const h2: H2Upstream = await startH2Upstream((stream) => {
      stream.respond({ ':status': 200 });
      stream.write('partial');
    });
    h2.server.on('connection', (s: net.Socket) => raws.push(s));
    try {
      const session = await h2Session('h2rst.site.test', h2.port);
      const result = await h2Request(session, { ':path': '/h2-rst' }, undefined, {
        onResponse: (stream) => stream.once('data', () => raws.at(-1)!.resetAndDestroy()),
      });
      session.destroy();
      assert.equal(result.headers[':status'], 200);
      assert.equal(result.body.toString(), 'partial');
      // Node closes the streams of a session whose connection went away with CANCEL: not ended.
      assert.equal(result.rstCode, NGHTTP2_CANCEL, 'the client stream was cut, not ended');
      const request = await requestTo(h2.port, '/h2-rst');
      const exchange = await failureOf(request.exchangeId);
      assert.equal(exchange.state, 'failed');
      assert.equal(exchange.error?.reason, 'reset');
      assert.equal(exchange.responseBodySize, 7);
      const conn = await closedConnection(request.connId);
      assert.equal(conn.error?.reason, 'reset');
    } finally {
      await h2.close();
    }
    await stillServes();
  });

  test('https:// to an upstream that does not speak TLS: 502 saying why, captured as tls', async () => {
    const res = await proxiedRequest(proxy, `https://site.test:${ok.port}/not-tls`);
    assert.equal(res.status, 502);
    assert.match(res.body.toString(), new RegExp(`site\\.test:${ok.port} failed: .*wrong version number`, 'i'));
    const request = await requestTo(ok.port, '/not-tls');
    const exchange = await failureOf(request.exchangeId);
    assert.equal(exchange.error?.reason, 'tls');
    assert.match(exchange.error?.code ?? '', /WRONG_VERSION_NUMBER/);
    await stillServes();
  });

  test('CONNECT, intercepted, to an upstream that does not speak TLS: the client reads a 502 inside its TLS, the upstream leg says tls', async () => {
    const tunnel = await openTunnel(proxy, `plain.site.test:${ok.port}`);
    tunnel.allowHalfOpen = false;
    const secure = tls.connect({ socket: tunnel, servername: 'plain.site.test', ca: caPem, ALPNProtocols: ['http/1.1'] });
    secure.once('secureConnect', () => secure.write('GET /inside HTTP/1.1\r\nHost: plain.site.test\r\n\r\n'));
    const got = await readUntilGone(secure);
    assert.match(got.text, /^HTTP\/1\.1 502 /);
    assert.match(got.text, /hopscope: plain\.site\.test:\d+ failed: .*wrong version number/i);
    const tunnelEvent = await log.waitFor((e): e is Extract<CaptureEvent, { kind: 'conn.tunnel' }> => e.kind === 'conn.tunnel' && e.host === 'plain.site.test');
    const conn = await closedConnection(tunnelEvent.connId);
    assert.equal(conn.tls.upstream?.error?.reason, 'tls');
    assert.match(conn.tls.upstream?.error?.code ?? '', /WRONG_VERSION_NUMBER/);
    assert.equal(conn.error?.reason, 'tls');
    await stillServes();
  });

  test('an upstream that resets during the TLS handshake: 502 saying it reset, captured as reset', async () => {
    const hangUp = await startTcpServer((socket) => socket.once('data', () => socket.resetAndDestroy()));
    try {
      const res = await proxiedRequest(proxy, `https://site.test:${hangUp.port}/handshake-rst`);
      assert.equal(res.status, 502);
      assert.match(res.body.toString(), new RegExp(`site\\.test:${hangUp.port} reset the connection`));
      const request = await requestTo(hangUp.port);
      const exchange = await failureOf(request.exchangeId);
      assert.equal(exchange.error?.reason, 'reset');
    } finally {
      await hangUp.close();
    }
    await stillServes();
  });

  test('HTTP/2 GOAWAY with an error code, then the upstream drops the connection with streams open', async () => {
    const held: http2.ServerHttp2Stream[] = [];
    let wake = () => {};
    const h2 = await startH2Upstream((stream) => {
      held.push(stream);
      wake();
    });
    try {
      const session = await h2Session('calm.site.test', h2.port);
      const results = [1, 2, 3].map((i) => h2Request(session, { ':path': `/calm/${i}` }));
      while (held.length < 3) await new Promise<void>((resolve) => (wake = resolve));
      const [first] = [...held].sort((a, b) => a.id! - b.id!);
      const upstreamSession = first.session!;
      first.respond({ ':status': 200 });
      first.write('half', () => {
        upstreamSession.goaway(NGHTTP2_ENHANCE_YOUR_CALM, first.id!, Buffer.from('too many requests'));
        upstreamSession.destroy();
      });
      const [r1, r2, r3] = await Promise.all(results);
      session.destroy();
      for (const r of [r1, r2, r3]) {
        assert.equal(r.error?.code, 'ERR_HTTP2_SESSION_ERROR', 'the client failed every stream with the code the upstream sent');
        assert.match(r.error?.message ?? '', /code 11/);
      }

      const request = await requestTo(h2.port, '/calm/1');
      const conn = await closedConnection(request.connId);
      const exchanges = listExchanges(proxy.db, { limit: 10, connectionId: conn.id, order: 'oldest' }).map((e) => getExchange(proxy.db, e.id)!);
      const goaway = listH2Frames(proxy.db, conn.id, { streamId: 0, limit: 100 }).find((f) => f.typeName === 'GOAWAY' && f.side === 'server');
      assert.deepEqual(goaway?.details, { lastStreamId: first.id, errorCode: 11, errorName: 'ENHANCE_YOUR_CALM', debugData: 'too many requests', debugDataLength: 17 });
      const byPath = (path: string) => exchanges.find((e) => e.url.endsWith(path))!;
      const processed = byPath('/calm/1');
      // Cut either by the client's RST_STREAM (it tears its session down on an error GOAWAY) or by the close, whichever the proxy saw first.
      assert.deepEqual([processed.state, processed.status, processed.error?.reason], ['failed', 200, 'reset']);
      assert.equal(processed.responseBody?.data.toString(), 'half');
      for (const path of ['/calm/2', '/calm/3']) {
        const e = byPath(path);
        assert.equal(e.state, 'failed');
        assert.equal(e.error?.code, 'ENHANCE_YOUR_CALM');
        assert.match(e.error?.message ?? '', new RegExp(`the server sent GOAWAY \\(ENHANCE_YOUR_CALM, last stream ${first.id}\\) without processing stream ${e.streamId}`));
      }
    } finally {
      await h2.close();
    }
    await stillServes();
  });

  test('absolute-form WebSocket: the server resets the connection; the client is closed and the capture says reset', async () => {
    const ws = await startWsServer();
    try {
      const socket = connectClient({ path: 'absolute-form', proxy, host: 'site.test', port: ws.port, urlPath: '/ws-gone' });
      const client = new ClientLog(socket);
      await opened(socket);
      socket.send('reset');
      assert.equal((await client.closed).code, 1006, 'the client saw the connection go without a close frame');
      const request = await log.waitFor((e): e is Extract<CaptureEvent, { kind: 'http.request' }> => e.kind === 'http.request' && e.target.endsWith('/ws-gone'));
      const closed = await log.waitFor((e): e is WsClosed => e.kind === 'ws.closed' && e.exchangeId === request.exchangeId);
      assert.deepEqual([closed.closedBy, closed.clean, closed.error?.reason, closed.messagesFromClient], [null, false, 'reset', 1]);
      const conn = await closedConnection(request.connId);
      assert.equal(getWebSocket(proxy.db, request.exchangeId)?.error?.reason, 'reset');
      assert.equal(conn.error?.reason, 'reset');
    } finally {
      await ws.close();
    }
    await stillServes();
  });

  test('WebSocket over HTTP/2: the upstream vanishes; the client stream is cut and the capture says it closed without a close frame', async () => {
    const h2 = await startH2Upstream(
      (stream) => {
        stream.respond({ ':status': 200 });
        stream.once('data', () => stream.write(encodeFrame({ opcode: 1, payload: 'hello' })));
      },
      { settings: { enableConnectProtocol: true } },
    );
    const raws: net.Socket[] = [];
    h2.server.on('connection', (s: net.Socket) => raws.push(s));
    try {
      const session = await h2Session('wsh2.site.test', h2.port);
      if (!session.remoteSettings.enableConnectProtocol) await once(session, 'remoteSettings');
      const stream = session.request(
        { ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'https', ':path': '/ws-h2-gone', ':authority': `wsh2.site.test:${h2.port}`, 'sec-websocket-version': '13' },
        { endStream: false },
      );
      stream.on('error', () => {});
      await once(stream, 'response');
      stream.write(encodeFrame({ opcode: 1, mask: Buffer.from('01020304', 'hex'), payload: 'hi' }));
      await once(stream, 'data'); // the server's message: now it vanishes
      raws.at(-1)!.destroy();
      await once(stream, 'close');
      assert.equal(stream.rstCode, NGHTTP2_CANCEL, 'the client stream was cut, not ended');
      session.destroy();

      const request = await requestTo(h2.port, '/ws-h2-gone');
      const closed = await log.waitFor((e): e is WsClosed => e.kind === 'ws.closed' && e.exchangeId === request.exchangeId);
      assert.deepEqual([closed.closedBy, closed.clean, closed.messagesFromClient, closed.messagesFromServer], [null, false, 1, 1]);
      assert.equal(closed.error?.reason, 'closed');
      assert.match(closed.error?.message ?? '', /closed without a close frame/);
      await closedConnection(request.connId);
      assert.equal(getWebSocket(proxy.db, request.exchangeId)?.error?.reason, 'closed');
    } finally {
      await h2.close();
    }
    await stillServes();
  });
});

describe('--response-timeout on the command line', { timeout: 30_000 }, () => {
  test('an upstream that stalls past it: 504 for the client, timeout in the capture file', async () => {
    const silent = await startTcpServer(() => {});
    const dir = mkdtempSync(join(tmpdir(), 'hopscope-upstream-faults-'));
    const dbPath = join(dir, 'capture.sqlite');
    const cli = runCli(['start', '--listen', '127.0.0.1:0', '--no-ui', '--db', dbPath, '--ca-dir', testCaDir(), '--quiet', '--response-timeout', '300']);
    try {
      const url = new URL(await cli.line('proxy'));
      const startedAt = performance.now();
      const res = await proxiedRequest({ host: url.hostname, port: Number(url.port) }, `http://127.0.0.1:${silent.port}/stall`);
      const tookMs = performance.now() - startedAt;
      assert.equal(res.status, 504);
      assert.match(res.body.toString(), new RegExp(`127\\.0\\.0\\.1:${silent.port} did not answer in time`));
      assert.ok(tookMs >= 250 && tookMs < 5_000, `answered after ${tookMs.toFixed(0)} ms`);
    } finally {
      assert.equal(await cli.stop(), 0, cli.stderr());
      await silent.close();
    }
    const { db } = openStore(dbPath, { readonly: true });
    try {
      const [row] = listExchanges(db, { limit: 5 });
      const exchange = getExchange(db, row.id)!;
      assert.deepEqual([exchange.url, exchange.state, exchange.status, exchange.error?.reason], [`http://127.0.0.1:${silent.port}/stall`, 'failed', null, 'timeout']);
      assert.match(exchange.error?.message ?? '', /no response within 300 ms/);
    } finally {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
