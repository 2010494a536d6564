// HTTP/2 through the relay with real peers: Node http2 clients and servers and curl --http2, TLS
// intercepted with the client trusting only the hopscope CA, and h2c with prior knowledge inside
// CONNECT. Checks what each peer received and what the capture holds: exchanges per stream, bodies,
// trailers, resets, GOAWAY, server push, and the frames of each stream.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestProxy, type TestProxy } from './helpers/proxy.js';
import { upstreamCaFile } from './helpers/upstream.js';
import { curl } from './helpers/clients.js';
import { recordEvents, type EventLog } from './helpers/events.js';
import { connectThroughProxy, h2Request, startH2Upstream, type H2Upstream } from './helpers/h2-peers.js';
import { getConnection, getExchange, listExchanges, listH2Frames } from '../packages/core/src/store/queries.js';
import type { ExchangeDetail } from '../packages/core/src/store/row-types.js';

const { NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR, NGHTTP2_NO_ERROR } = http2.constants;
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
/** Deterministic bytes, so a corrupted byte anywhere shows. */
const pattern = (size: number) => Buffer.from(Array.from({ length: size }, (_, i) => (i * 31 + (i >> 8)) & 0xff));
const BIG_DOWN = pattern(2 * 1024 * 1024 + 123);

/** One framed gRPC message (RFC-less, as gRPC frames it): flag byte, 4-byte length, payload. */
const grpcMessage = (payload: string) => {
  const body = Buffer.from(payload);
  const out = Buffer.alloc(5 + body.length);
  out.writeUInt32BE(body.length, 1);
  body.copy(out, 5);
  return out;
};

function route(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, session: http2.ServerHttp2Session): void {
  const path = String(headers[':path']);
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  if (path.startsWith('/n/')) {
    stream.respond({ ':status': 200, 'content-type': 'text/plain' });
    stream.end(`stream ${path.slice(3)}`);
  } else if (path === '/echo') {
    stream.on('end', () => {
      const body = Buffer.concat(chunks);
      stream.respond({ ':status': 200, 'x-sha256': sha256(body), 'x-size': String(body.length) });
      stream.end(body);
    });
  } else if (path === '/big-down') {
    stream.respond({ ':status': 200, 'content-length': String(BIG_DOWN.length) });
    stream.end(BIG_DOWN);
  } else if (path === '/trailers') {
    stream.on('end', () => {
      stream.respond({ ':status': 200 }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'x-server-checksum': sha256(Buffer.concat(chunks)) }));
      stream.end('with trailers');
    });
  } else if (path === '/helloworld.Greeter/SayHello') {
    stream.on('end', () => {
      const request = Buffer.concat(chunks).subarray(5).toString();
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'OK' }));
      stream.end(grpcMessage(`hello ${request}`));
    });
  } else if (path === '/reset-mid-body') {
    stream.respond({ ':status': 200 });
    // destroy() resets the stream (INTERNAL_ERROR) at once; close() would end it cleanly first.
    stream.write(pattern(16_384), () => setImmediate(() => stream.destroy(new Error('upstream gave up'))));
  } else if (path === '/push') {
    stream.pushStream({ ':path': '/pushed.css' }, (err, push) => {
      if (err) throw err;
      push.respond({ ':status': 200, 'content-type': 'text/css' });
      push.end('p{}');
      stream.respond({ ':status': 200, 'content-type': 'text/html' });
      stream.end('<link rel=stylesheet href=/pushed.css>');
    });
  } else if (path.startsWith('/hold/')) {
    held.push({ stream, session });
    heldWaiters.splice(0).forEach((w) => w());
  } else {
    stream.respond({ ':status': 404 });
    stream.end();
  }
}

const held: Array<{ stream: http2.ServerHttp2Stream; session: http2.ServerHttp2Session }> = [];
const heldWaiters: Array<() => void> = [];
async function waitForHeld(count: number): Promise<void> {
  while (held.length < count) await new Promise<void>((resolve) => heldWaiters.push(resolve));
}

describe('HTTP/2 through the relay', { timeout: 60_000 }, () => {
  let proxy: TestProxy;
  let log: EventLog;
  let caPem: string;
  let secure: H2Upstream;
  let plain: H2Upstream;
  let dir: string;

  before(async () => {
    secure = await startH2Upstream(route);
    plain = await startH2Upstream(route, { tls: false });
    proxy = await startTestProxy({ upstreamCaFiles: [upstreamCaFile] });
    caPem = readFileSync(proxy.caCertPath, 'utf8');
    log = recordEvents(proxy.bus);
    dir = mkdtempSync(join(tmpdir(), 'hopscope-h2-'));
  });

  after(async () => {
    log.stop();
    await proxy.close();
    await Promise.all([secure.close(), plain.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  /** The connection of the tunnel to `host`, once it closed, with its exchanges (oldest first). */
  async function capturedConnection(host: string) {
    const tunnel = await log.waitFor((e) => e.kind === 'conn.tunnel' && e.host === host);
    const connId = (tunnel as { connId: number }).connId;
    await log.waitFor((e) => e.kind === 'conn.closed' && e.connId === connId);
    await proxy.flush();
    const exchanges = listExchanges(proxy.db, { connectionId: connId, order: 'oldest', limit: 1000 }).map((s) => getExchange(proxy.db, s.id)!);
    return { connId, connection: getConnection(proxy.db, connId)!, exchanges };
  }

  const frameLines = (connId: number, streamId: number) =>
    listH2Frames(proxy.db, connId, { streamId, limit: 1000 }).map((f) => `${f.side} ${f.typeName} ${f.flagNames.join('|')}`);
  const byPath = (exchanges: ExchangeDetail[], path: string) => exchanges.find((e) => e.target === path)!;

  test('many concurrent streams and large bodies both ways, frames per stream', async () => {
    const host = 'many.site.test';
    const session = await connectThroughProxy(proxy, host, secure.port, { caPem });
    const up = randomBytes(1024 * 1024 + 7);
    const [gets, echo, down] = await Promise.all([
      Promise.all(Array.from({ length: 100 }, (_, i) => h2Request(session, { ':path': `/n/${i}` }))),
      h2Request(session, { ':method': 'POST', ':path': '/echo', 'content-type': 'application/octet-stream' }, up),
      h2Request(session, { ':path': '/big-down' }),
    ]);
    session.close();
    gets.forEach((r, i) => assert.equal(r.body.toString(), `stream ${i}`));
    assert.equal(echo.headers['x-sha256'], sha256(up), 'the upstream received the upload intact');
    assert.ok(echo.body.equals(up), 'the client received the echo intact');
    assert.ok(down.body.equals(BIG_DOWN));

    const { connId, connection, exchanges } = await capturedConnection(host);
    assert.equal(connection.tls.client?.alpn, 'h2');
    assert.equal(connection.tls.upstream?.alpn, 'h2');
    assert.deepEqual(connection.decodeErrors, []);
    assert.equal(exchanges.length, 102);
    assert.ok(exchanges.every((e) => e.state === 'complete' && e.protocol === 'h2' && e.responseProtocol === 'h2' && e.status === 200));
    assert.equal(new Set(exchanges.map((e) => e.streamId)).size, 102);
    assert.ok(exchanges.every((e) => e.streamId! % 2 === 1));

    const seven = byPath(exchanges, '/n/7');
    assert.equal(seven.url, `https://${host}:${secure.port}/n/7`);
    assert.deepEqual(seven.requestHeaders.filter(([n]) => n.startsWith(':')).map(([n]) => n).sort(), [':authority', ':method', ':path', ':scheme']);
    assert.equal(seven.responseHeaders?.[0][0], ':status', 'pseudo-headers first, as sent');
    assert.equal(seven.responseBody?.data.toString(), 'stream 7');
    assert.deepEqual(frameLines(connId, seven.streamId!), ['client HEADERS END_STREAM|END_HEADERS', 'server HEADERS END_HEADERS', 'server DATA END_STREAM']);

    const upload = byPath(exchanges, '/echo');
    assert.equal(upload.requestBodySize, up.length);
    assert.ok(upload.requestBody?.data.equals(up), 'the request body is captured de-framed');
    assert.ok(upload.responseBody?.data.equals(up));
    const uploadFrames = listH2Frames(proxy.db, connId, { streamId: upload.streamId!, limit: 1000 });
    const sent = uploadFrames.filter((f) => f.side === 'client' && f.typeName === 'DATA');
    assert.equal(sent.reduce((n, f) => n + f.length, 0), up.length, 'DATA frame lengths add up to the body');
    assert.ok(sent.length >= 64, 'a 1 MiB body takes many frames');
    assert.deepEqual(sent.at(-1)?.flagNames, ['END_STREAM']);
    assert.ok(uploadFrames.some((f) => f.side === 'server' && f.typeName === 'WINDOW_UPDATE'), 'flow control is end to end');

    const big = byPath(exchanges, '/big-down');
    assert.equal(big.responseBodySize, BIG_DOWN.length);
    assert.ok(big.responseBody?.data.equals(BIG_DOWN));

    const settings = listH2Frames(proxy.db, connId, { streamId: 0, limit: 10 }).filter((f) => f.typeName === 'SETTINGS' && f.details);
    assert.ok(settings.some((f) => f.side === 'client') && settings.some((f) => f.side === 'server'));
  });

  test('trailers both ways, and a gRPC-style unary call with grpc-status trailers', async () => {
    const host = 'grpc.site.test';
    const session = await connectThroughProxy(proxy, host, secure.port, { caPem });
    const trailed = await h2Request(session, { ':method': 'POST', ':path': '/trailers' }, 'payload', {
      waitForTrailers: (stream) => stream.sendTrailers({ 'x-client-checksum': 'abc' }),
    });
    const rpc = await h2Request(
      session,
      { ':method': 'POST', ':path': '/helloworld.Greeter/SayHello', 'content-type': 'application/grpc', te: 'trailers' },
      grpcMessage('world'),
    );
    session.close();
    assert.equal(trailed.trailers?.['x-server-checksum'], sha256(Buffer.from('payload')));
    assert.equal(rpc.trailers?.['grpc-status'], '0');
    assert.equal(rpc.body.subarray(5).toString(), 'hello world');

    const { connId, exchanges } = await capturedConnection(host);
    const withTrailers = byPath(exchanges, '/trailers');
    assert.deepEqual(withTrailers.requestTrailers, [['x-client-checksum', 'abc']]);
    assert.deepEqual(withTrailers.responseTrailers, [['x-server-checksum', sha256(Buffer.from('payload'))]]);
    assert.equal(withTrailers.requestBody?.data.toString(), 'payload');

    const call = byPath(exchanges, '/helloworld.Greeter/SayHello');
    assert.equal(call.state, 'complete');
    assert.equal(call.responseContentType, 'application/grpc');
    assert.deepEqual(call.responseTrailers, [['grpc-status', '0'], ['grpc-message', 'OK']]);
    assert.ok(call.requestBody?.data.equals(grpcMessage('world')), 'the request message is readable in the body');
    assert.ok(call.responseBody?.data.equals(grpcMessage('hello world')));
    assert.ok(call.requestHeaders.some(([n, v]) => n === 'te' && v === 'trailers'));
    assert.deepEqual(frameLines(connId, call.streamId!).filter((l) => !l.includes('WINDOW_UPDATE')), [
      'client HEADERS END_HEADERS',
      'client DATA END_STREAM',
      'server HEADERS END_HEADERS',
      'server DATA ',
      'server HEADERS END_STREAM|END_HEADERS',
    ]);
  });

  test('a stream reset mid-body fails its exchange with the code; the connection carries on', async () => {
    const host = 'reset.site.test';
    const session = await connectThroughProxy(proxy, host, secure.port, { caPem });
    const reset = await h2Request(session, { ':path': '/reset-mid-body' });
    const base = held.length;
    const cancelled = session.request({ ':path': '/hold/cancel' });
    cancelled.on('error', () => {});
    await waitForHeld(base + 1);
    cancelled.close(NGHTTP2_CANCEL);
    await once(cancelled, 'close');
    const later = await h2Request(session, { ':path': '/n/later' });
    session.close();
    assert.equal(reset.rstCode, NGHTTP2_INTERNAL_ERROR, 'the client saw the reset');
    assert.equal(later.body.toString(), 'stream later');
    assert.equal(held[base].stream.rstCode, NGHTTP2_CANCEL, 'the server saw the client cancel');

    const { connId, exchanges } = await capturedConnection(host);
    const serverReset = byPath(exchanges, '/reset-mid-body');
    assert.equal(serverReset.state, 'failed');
    assert.deepEqual(serverReset.error, { reason: 'reset', message: `the server reset stream ${serverReset.streamId} (INTERNAL_ERROR)`, code: 'INTERNAL_ERROR' });
    assert.equal(serverReset.responseBodySize, reset.body.length, 'the capture counted what the client got');
    assert.equal(frameLines(connId, serverReset.streamId!).at(-1), 'server RST_STREAM ');
    const clientReset = byPath(exchanges, '/hold/cancel');
    assert.deepEqual(clientReset.error, { reason: 'reset', message: `the client reset stream ${clientReset.streamId} (CANCEL)`, code: 'CANCEL' });
    assert.equal(byPath(exchanges, '/n/later').state, 'complete');
  });

  test('GOAWAY with streams open: the ones above its last stream fail, the others finish', async () => {
    const host = 'goaway.site.test';
    const session = await connectThroughProxy(proxy, host, secure.port, { caPem });
    const base = held.length;
    const results = [1, 2, 3].map((i) => h2Request(session, { ':path': `/hold/${i}` }));
    await waitForHeld(base + 3);
    const [first] = held.slice(base).sort((a, b) => a.stream.id! - b.stream.id!);
    first.session.goaway(NGHTTP2_NO_ERROR, first.stream.id!, Buffer.from('shutting down'));
    first.stream.respond({ ':status': 200 });
    first.stream.end('first');
    const [r1, r2, r3] = await Promise.all(results);
    for (const h of held.slice(base)) if (h !== first) h.stream.close(); // the server drops what it never processed
    session.close();
    first.session.close();
    assert.equal(r1.body.toString(), 'first');
    assert.ok(r2.error && r3.error, 'the client failed the streams the server did not process');

    const { connId, exchanges } = await capturedConnection(host);
    assert.equal(byPath(exchanges, '/hold/1').state, 'complete');
    for (const path of ['/hold/2', '/hold/3']) {
      const e = byPath(exchanges, path);
      assert.equal(e.state, 'failed');
      assert.equal(e.error?.reason, 'closed');
      assert.equal(e.error?.code, 'NO_ERROR');
      assert.match(e.error?.message ?? '', new RegExp(`the server sent GOAWAY \\(NO_ERROR, last stream ${first.stream.id}\\) without processing stream ${e.streamId}`));
    }
    const goaway = listH2Frames(proxy.db, connId, { streamId: 0, limit: 100 }).find((f) => f.typeName === 'GOAWAY' && f.side === 'server');
    assert.deepEqual(goaway?.details, { lastStreamId: first.stream.id, errorCode: 0, errorName: 'NO_ERROR', debugData: 'shutting down', debugDataLength: 13 });
  });

  test('server push: the pushed response is its own exchange, linked to the promising stream', async () => {
    const host = 'push.site.test';
    const session = await connectThroughProxy(proxy, host, secure.port, { caPem });
    const pushedBody = new Promise<{ path: string; body: string }>((resolve) => {
      session.once('stream', (stream, headers) => {
        let body = '';
        stream.setEncoding('utf8').on('data', (t: string) => (body += t));
        stream.on('end', () => resolve({ path: String(headers[':path']), body }));
      });
    });
    const page = await h2Request(session, { ':path': '/push' });
    const pushed = await pushedBody;
    session.close();
    assert.match(page.body.toString(), /pushed\.css/);
    assert.deepEqual(pushed, { path: '/pushed.css', body: 'p{}' });

    const { connId, exchanges } = await capturedConnection(host);
    const parent = byPath(exchanges, '/push');
    const child = byPath(exchanges, '/pushed.css');
    assert.equal(child.pushedBy, parent.id);
    assert.equal(parent.pushedBy, null);
    assert.equal(child.streamId! % 2, 0, 'pushed streams are even');
    assert.equal(child.url, `https://${host}:${secure.port}/pushed.css`);
    assert.equal(child.state, 'complete');
    assert.equal(child.responseBody?.data.toString(), 'p{}');
    assert.equal(child.responseContentType, 'text/css');
    const promise = listH2Frames(proxy.db, connId, { streamId: parent.streamId!, limit: 20 }).find((f) => f.typeName === 'PUSH_PROMISE');
    assert.equal(promise?.details?.promisedStreamId, child.streamId);
    assert.ok(promise?.details?.headerBlock?.fields.some((f) => f.name === ':path' && f.value === '/pushed.css'));
  });

  test('an upstream certificate failure reaches an h2-only client as a 502 over HTTP/2 saying why', async () => {
    const strict = await startTestProxy(); // does not trust the fixture upstream's CA
    const strictLog = recordEvents(strict.bus);
    try {
      const session = await connectThroughProxy(strict, 'site.test', secure.port, { caPem });
      const result = await h2Request(session, { ':path': '/anything' });
      session.close();
      assert.equal(result.headers[':status'], 502);
      assert.match(result.body.toString(), /certificate of site\.test was rejected/);
      await strictLog.waitFor((e) => e.kind === 'conn.closed');
      await strict.flush();
      const [row] = listExchanges(strict.db, { limit: 5 });
      assert.ok(row, 'the failed tunnel is listed');
      const connection = getConnection(strict.db, row.connectionId)!;
      assert.equal(connection.tls.upstream?.error?.reason, 'upstream-cert');
      assert.equal(connection.tls.client?.alpn, 'h2');
    } finally {
      strictLog.stop();
      await strict.close();
    }
  });

  test('h2c with prior knowledge inside CONNECT is tapped the same way', async () => {
    const host = 'plain.site.test';
    const session = await connectThroughProxy(proxy, host, plain.port);
    const [one, echo] = await Promise.all([
      h2Request(session, { ':path': '/n/1' }),
      h2Request(session, { ':method': 'POST', ':path': '/echo' }, 'cleartext body'),
    ]);
    session.close();
    assert.equal(one.body.toString(), 'stream 1');
    assert.equal(echo.body.toString(), 'cleartext body');

    const { connId, connection, exchanges } = await capturedConnection(host);
    assert.equal(connection.detectedProtocol, 'h2c');
    assert.equal(exchanges.length, 2);
    const get = byPath(exchanges, '/n/1');
    assert.deepEqual([get.protocol, get.scheme, get.url, get.state], ['h2c', 'http', `http://${host}:${plain.port}/n/1`, 'complete']);
    assert.equal(byPath(exchanges, '/echo').requestBody?.data.toString(), 'cleartext body');
    assert.deepEqual(frameLines(connId, get.streamId!), ['client HEADERS END_STREAM|END_HEADERS', 'server HEADERS END_HEADERS', 'server DATA END_STREAM']);
  });

  test('curl --http2 trusting the hopscope CA: GET and a POST upload', async () => {
    const host = 'curl.site.test';
    const file = join(dir, 'upload.bin');
    const upload = pattern(300_000);
    writeFileSync(file, upload);
    const base = ['--http2', '-x', proxy.proxyUrl, '--cacert', proxy.caCertPath];
    const result = await curl([
      ...base, '-w', '\n%{http_version}', `https://${host}:${secure.port}/n/5`,
      '--next', ...base, '--data-binary', `@${file}`, '-H', 'content-type: application/octet-stream', '-o', '/dev/null',
      '-w', '\n%{http_version} %{size_download}', `https://${host}:${secure.port}/echo`,
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, `stream 5\n2\n2 ${upload.length}`);

    const { exchanges } = await capturedConnection(host);
    assert.equal(exchanges.length, 2, 'curl reused the connection');
    const get = byPath(exchanges, '/n/5');
    assert.equal(get.protocol, 'h2');
    assert.ok(get.requestHeaders.some(([n, v]) => n === 'user-agent' && v.startsWith('curl/')));
    const post = byPath(exchanges, '/echo');
    assert.equal(post.method, 'POST');
    assert.ok(post.requestBody?.data.equals(upload));
    assert.ok(post.responseBody?.data.equals(upload));
  });

  test('with the h2 tap off, HTTP/2 is relayed blind and only counted', async () => {
    const blind = await startTestProxy({ upstreamCaFiles: [upstreamCaFile], h2Tap: false });
    const blindLog = recordEvents(blind.bus);
    try {
      const result = await curl(['--http2', '-x', blind.proxyUrl, '--cacert', blind.caCertPath, `https://off.site.test:${secure.port}/n/9`]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, 'stream 9');
      const closed = await blindLog.waitFor((e) => e.kind === 'conn.closed');
      assert.ok(closed.kind === 'conn.closed' && closed.bytesFromServer > 0);
      assert.deepEqual(blindLog.events.filter((e) => e.kind.startsWith('http.') || e.kind.startsWith('h2.')), []);
    } finally {
      blindLog.stop();
      await blind.close();
    }
  });
});
