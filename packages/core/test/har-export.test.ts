// The HAR exporter over captures built through the real bus and sink: the mapping of each field,
// validity against the published HAR 1.2 schema (har-validator), and the streaming writer's
// backpressure.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { Writable } from 'node:stream';
import zlib from 'node:zlib';
import type Database from 'better-sqlite3';
import { CaptureBus } from '../src/capture/bus.js';
import type { ExchangeTimings, HeaderList, NewCaptureEvent } from '../src/capture/events.js';
import { IdAllocator } from '../src/capture/ids.js';
import { openStore } from '../src/store/open-store.js';
import { SqliteSink } from '../src/store/sqlite-sink.js';
import { getExchange } from '../src/store/queries.js';
import { writeHar } from '../src/export/har-writer.js';
import { toHarEntry } from '../src/export/har-entry.js';
import type { HarEntry } from '../src/export/har-types.js';
import { toHarWebSocketMessage } from '../src/export/ws-messages.js';

const harValidator = createRequire(import.meta.url)('har-validator') as { har(data: unknown): Promise<unknown> };

async function assertValidHar(har: unknown): Promise<void> {
  try {
    await harValidator.har(har);
  } catch (err) {
    assert.fail(`not valid HAR 1.2: ${JSON.stringify((err as { errors?: unknown }).errors ?? String(err))}`);
  }
}

const T0 = Date.UTC(2025, 0, 2, 3, 4, 5, 678);

interface ExchangeSpec {
  method?: string;
  target?: string;
  host?: string;
  requestHeaders?: HeaderList;
  requestBody?: Buffer;
  status?: number | null;
  statusText?: string;
  responseHeaders?: HeaderList;
  responseBody?: Buffer;
  /** Offsets from T0 in ms. */
  at?: { request?: number; response?: number; end?: number };
  timings?: Partial<ExchangeTimings>;
  failure?: { reason: 'timeout' | 'refused' | 'dns'; message: string; code?: string };
  remoteAddress?: string;
  /** Events after the exchange ended (e.g. the WebSocket it opened). */
  after?: (exchangeId: number, connId: number) => NewCaptureEvent[];
}

/** A capture with one connection holding the given exchanges, written through bus and sink. */
function captureOf(specs: ExchangeSpec[], connectionEvents: (connId: number) => NewCaptureEvent[] = () => [], bodyCap?: number) {
  const { db } = openStore(':memory:');
  const bus = new CaptureBus();
  const ids = new IdAllocator();
  const sink = new SqliteSink(db, bus, { onError: (err) => assert.fail(err), bodyCap });
  const connId = ids.nextConnId();
  bus.emit({ kind: 'conn.opened', connId, parentId: null, listener: 'proxy', clientAddress: '127.0.0.1', clientPort: 40000, time: T0 });
  for (const e of connectionEvents(connId)) bus.emit(e);
  for (const spec of specs) {
    const exchangeId = ids.nextExchangeId();
    const at = { request: 0, response: 20, end: 30, ...spec.at };
    const host = spec.host ?? 'site.test';
    const target = spec.target ?? '/';
    bus.emit({ kind: 'http.request', exchangeId, connId, streamId: null, protocol: 'HTTP/1.1', method: spec.method ?? 'GET', target,
      url: `http://${host}${target}`, scheme: 'http', host, port: 80, headers: spec.requestHeaders ?? [['Host', host]], time: T0 + at.request });
    if (spec.requestBody) bus.emit({ kind: 'http.body', exchangeId, side: 'client', chunk: spec.requestBody });
    const timings: ExchangeTimings = { dnsMs: null, connectMs: null, tlsMs: null, requestEnd: null, responseStart: null, ...spec.timings };
    const sizes = { requestBodySize: spec.requestBody?.length ?? 0, responseBodySize: spec.responseBody?.length ?? 0 };
    if (spec.status !== null) {
      bus.emit({ kind: 'http.response', exchangeId, protocol: 'HTTP/1.1', status: spec.status ?? 200, statusText: spec.statusText ?? 'OK',
        headers: spec.responseHeaders ?? [], remoteAddress: spec.remoteAddress, remotePort: spec.remoteAddress ? 80 : undefined, time: T0 + at.response });
      if (spec.responseBody) bus.emit({ kind: 'http.body', exchangeId, side: 'server', chunk: spec.responseBody });
    }
    if (spec.failure) bus.emit({ kind: 'http.failed', exchangeId, error: spec.failure, ...sizes, timings, time: T0 + at.end });
    else if (spec.status !== null) bus.emit({ kind: 'http.completed', exchangeId, ...sizes, timings, time: T0 + at.end });
    for (const e of spec.after?.(exchangeId, connId) ?? []) bus.emit(e);
  }
  sink.flush();
  return { db, bus, sink, connId };
}

/** Collects what the writer writes. */
function collector(): Writable & { text(): string } {
  const chunks: string[] = [];
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString('utf8'));
      cb();
    },
  });
  return Object.assign(w, { text: () => chunks.join('') });
}

async function exportHar(db: Database.Database) {
  const out = collector();
  const result = await writeHar(db, out);
  const har = JSON.parse(out.text()) as { log: { entries: HarEntry[]; version: string; creator: { name: string } } };
  await assertValidHar(har);
  assert.equal(har.log.entries.length, result.entries);
  return har.log;
}

describe('HAR entries', { timeout: 10_000 }, () => {
  test('a form POST answered with gzipped JSON and cookies maps field by field', async () => {
    const json = JSON.stringify({ ok: true, items: Array.from({ length: 50 }, (_, i) => `item ${i}`) });
    const gz = zlib.gzipSync(json);
    const { db } = captureOf([
      {
        method: 'POST',
        target: '/submit?a=1&b=two%20words&a=3',
        requestHeaders: [['Host', 'site.test'], ['Cookie', 'sid=abc; theme=dark'], ['Content-Type', 'application/x-www-form-urlencoded']],
        requestBody: Buffer.from('name=J%C3%BCrgen&x=1+2'),
        status: 302,
        statusText: 'Found',
        responseHeaders: [
          ['Content-Type', 'application/json; charset=utf-8'],
          ['Content-Encoding', 'gzip'],
          ['Set-Cookie', 'sid=new; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=60'],
          ['Set-Cookie', 'old=; Expires=Thu, 01 Jan 1970 00:00:00 GMT'],
          ['Location', '/done'],
        ],
        responseBody: gz,
        remoteAddress: '127.0.0.1',
        timings: { dnsMs: 1.5, connectMs: 2, requestEnd: T0 + 10, responseStart: T0 + 20 },
      },
    ]);
    const log = await exportHar(db);
    assert.equal(log.version, '1.2');
    assert.equal(log.creator.name, 'hopscope');
    const [e] = log.entries;
    assert.equal(e.startedDateTime, '2025-01-02T03:04:05.678Z');
    assert.equal(e.request.method, 'POST');
    assert.equal(e.request.url, 'http://site.test/submit?a=1&b=two%20words&a=3');
    assert.equal(e.request.httpVersion, 'HTTP/1.1');
    assert.deepEqual(e.request.queryString, [
      { name: 'a', value: '1' },
      { name: 'b', value: 'two words' },
      { name: 'a', value: '3' },
    ]);
    assert.deepEqual(e.request.cookies, [{ name: 'sid', value: 'abc' }, { name: 'theme', value: 'dark' }]);
    assert.deepEqual(e.request.headers[1], { name: 'Cookie', value: 'sid=abc; theme=dark' }, 'headers in wire order, case kept');
    assert.deepEqual(e.request.postData, {
      mimeType: 'application/x-www-form-urlencoded',
      text: 'name=J%C3%BCrgen&x=1+2',
      params: [{ name: 'name', value: 'Jürgen' }, { name: 'x', value: '1 2' }],
    });
    assert.equal(e.request.bodySize, 22);
    const requestHead = 'POST /submit?a=1&b=two%20words&a=3 HTTP/1.1\r\nHost: site.test\r\nCookie: sid=abc; theme=dark\r\n'
      + 'Content-Type: application/x-www-form-urlencoded\r\n\r\n';
    assert.equal(e.request.headersSize, requestHead.length);

    assert.equal(e.response.status, 302);
    assert.equal(e.response.statusText, 'Found');
    assert.equal(e.response.redirectURL, '/done');
    assert.deepEqual(e.response.content, {
      size: Buffer.byteLength(json),
      compression: Buffer.byteLength(json) - gz.length,
      mimeType: 'application/json; charset=utf-8',
      text: json,
    });
    assert.equal(e.response.bodySize, gz.length, 'bodySize is what went over the wire');
    assert.deepEqual(e.response.cookies, [
      { name: 'sid', value: 'new', path: '/', httpOnly: true, secure: true, sameSite: 'Lax', expires: new Date(T0 + 20 + 60_000).toISOString() },
      { name: 'old', value: '', expires: '1970-01-01T00:00:00.000Z' },
    ]);
    assert.equal(e.serverIPAddress, '127.0.0.1');
    assert.equal(e.connection, '1');
    assert.deepEqual(e.timings, { blocked: -1, dns: 1.5, connect: 2, send: 6.5, wait: 10, receive: 10, ssl: -1 });
    assert.equal(e.time, 30, 'time is the sum of the measured phases: request head to completion');
    assert.deepEqual(e._protocols, { client: 'HTTP/1.1', upstream: 'HTTP/1.1' });
    assert.equal(e._state, 'complete');
    assert.deepEqual(e._errors, []);
  });

  test('binary, non-UTF-8 and Latin-1 bodies: base64 only when the bytes are not text in their charset', async () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff, 0xfe]);
    const latin1 = Buffer.from('caf\xe9', 'latin1');
    const { db } = captureOf([
      { responseHeaders: [['Content-Type', 'image/png']], responseBody: png },
      { responseHeaders: [['Content-Type', 'text/plain']], responseBody: latin1 },
      { responseHeaders: [['Content-Type', 'text/plain; charset=ISO-8859-1']], responseBody: latin1 },
      { responseHeaders: [], responseBody: Buffer.from('no content type, plain words\n') },
      { method: 'PUT', requestHeaders: [['Host', 'site.test'], ['Content-Type', 'application/octet-stream']], requestBody: png },
    ]);
    const [bin, badUtf8, isoText, untyped, put] = (await exportHar(db)).entries;
    assert.equal(bin.response.content.encoding, 'base64');
    assert.deepEqual(Buffer.from(bin.response.content.text!, 'base64'), png);
    assert.equal(badUtf8.response.content.encoding, 'base64', 'text/plain defaults to UTF-8, and these bytes are not');
    assert.deepEqual(Buffer.from(badUtf8.response.content.text!, 'base64'), latin1);
    assert.equal(isoText.response.content.text, 'café');
    assert.equal(isoText.response.content.encoding, undefined);
    assert.equal(untyped.response.content.text, 'no content type, plain words\n');
    assert.equal(untyped.response.content.mimeType, '');
    assert.equal(put.request.postData?._encoding, 'base64');
    assert.deepEqual(Buffer.from(put.request.postData!.text, 'base64'), png);
  });

  test('a truncated gzip body stays encoded and says so; an unknown coding is kept too', async () => {
    const big = zlib.gzipSync(Buffer.from('x'.repeat(5000) + Math.random()));
    const { db } = captureOf(
      [
        { responseHeaders: [['Content-Type', 'text/plain'], ['Content-Encoding', 'gzip']], responseBody: big },
        { responseHeaders: [['Content-Type', 'text/plain'], ['Content-Encoding', 'zstd']], responseBody: Buffer.from('ab') },
      ],
      () => [],
      16,
    );
    const [cut, zstd] = (await exportHar(db)).entries;
    assert.equal(cut.response.content._truncated, true);
    assert.equal(cut.response.content._contentEncoding, 'gzip');
    assert.equal(cut.response.content.encoding, 'base64');
    assert.deepEqual(Buffer.from(cut.response.content.text!, 'base64'), big.subarray(0, 16));
    assert.equal(cut.response.content.size, big.length, 'the size seen on the wire');
    assert.equal(cut.response.bodySize, big.length);
    assert.equal(zstd.response.content._contentEncoding, 'zstd');
    assert.equal(zstd.response.content._truncated, undefined);
  });

  test('a failed exchange: status 0, the error in _errors and response._error, wait until the failure', async () => {
    const { db } = captureOf([{ status: null, failure: { reason: 'timeout', message: 'upstream did not answer', code: 'ETIMEDOUT' }, at: { end: 50 } }]);
    const [e] = (await exportHar(db)).entries;
    assert.equal(e.response.status, 0);
    assert.equal(e.response.httpVersion, '');
    assert.equal(e.response.bodySize, -1);
    assert.equal(e.response.headersSize, -1);
    assert.equal(e.response._error, 'timeout: upstream did not answer');
    assert.deepEqual(e._errors, [{ source: 'exchange', reason: 'timeout', message: 'upstream did not answer', code: 'ETIMEDOUT' }]);
    assert.equal(e._state, 'failed');
    assert.deepEqual(e.timings, { blocked: -1, dns: -1, connect: -1, send: -1, wait: 50, receive: -1, ssl: -1 });
    assert.equal(e.time, 50);
  });

  test('a pending exchange (no response yet) is exported and valid', async () => {
    const { db } = captureOf([{ status: null }]);
    const [e] = (await exportHar(db)).entries;
    assert.equal(e._state, 'pending');
    assert.equal(e.time, 0);
    assert.deepEqual([e.timings.send, e.timings.wait, e.timings.receive], [-1, -1, -1]);
  });

  test('the TLS legs, tunnel, decoder errors and connection error come from the connection', async () => {
    const cert = { subject: 'CN=site.test', issuer: 'CN=ca', sans: ['DNS:site.test'], validFrom: 'a', validTo: 'b', fingerprint256: 'AA', serialNumber: '01' };
    const { db } = captureOf([{ responseBody: Buffer.from('hi'), responseHeaders: [['Content-Type', 'text/plain']] }], (connId) => [
      { kind: 'conn.tunnel', connId, host: 'site.test', port: 443, target: 'site.test:443', headers: [['Host', 'site.test:443']] },
      { kind: 'conn.upstream', connId, remoteAddress: '127.0.0.9', remotePort: 443, dnsMs: 0, connectMs: 1 },
      { kind: 'conn.detected', connId, protocol: 'tls', hello: { sni: 'site.test', alpn: ['h2', 'http/1.1'], version: 771, supportedVersions: [772] }, intercepted: true },
      { kind: 'tls.established', connId, leg: 'upstream', sni: 'site.test', alpnOffered: ['h2', 'http/1.1'], alpn: 'http/1.1', version: 'TLSv1.3',
        cipher: 'TLS_AES_128_GCM_SHA256', handshakeMs: 3.25, certificates: [cert] },
      { kind: 'tls.established', connId, leg: 'client', sni: 'site.test', alpnOffered: ['h2', 'http/1.1'], alpn: 'http/1.1', version: 'TLSv1.3',
        cipher: 'TLS_AES_256_GCM_SHA384', handshakeMs: 1.5, certificates: [] },
      { kind: 'decode.failed', connId, decoder: 'http1', side: 'server', code: 'BAD_STATUS_LINE', message: 'not HTTP' },
      { kind: 'conn.closed', connId, bytesFromClient: 10, bytesFromServer: 20, error: { reason: 'reset', message: 'socket hang up', code: 'ECONNRESET' } },
    ]);
    const [e] = (await exportHar(db)).entries;
    assert.deepEqual(e._tunnel, { host: 'site.test', port: 443, via: 'connect', intercepted: true });
    assert.equal(e._listener, 'proxy');
    assert.equal(e._upstreamUrl, null, 'only the reverse proxy sends a request elsewhere than its URL');
    assert.equal(e.serverIPAddress, '127.0.0.9', 'the tunnel upstream when the exchange has none of its own');
    assert.deepEqual(e._tls.upstream, {
      sni: 'site.test', alpnOffered: ['h2', 'http/1.1'], alpn: 'http/1.1', version: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256',
      handshakeMs: 3.25, certificates: [cert], error: null,
    });
    assert.equal(e._tls.client?.cipher, 'TLS_AES_256_GCM_SHA384');
    assert.deepEqual(e._errors, [
      { source: 'decoder', reason: 'decode', message: 'not HTTP', code: 'BAD_STATUS_LINE', decoder: 'http1', side: 'server' },
      { source: 'connection', reason: 'reset', message: 'socket hang up', code: 'ECONNRESET' },
    ]);
  });

  test('a WebSocket carries _resourceType, _webSocket and its messages in Chrome\'s _webSocketMessages form', async () => {
    const message = (exchangeId: number, connId: number, messageIndex: number, side: 'client' | 'server', opcode: number, payload: Buffer, extra = {}) => ({
      kind: 'ws.message' as const, exchangeId, connId, side, messageIndex, opcode, fin: true, frames: 1, wireSize: payload.length + 6,
      payloadSize: payload.length, decodedSize: payload.length, compressed: false, payload, truncated: false,
      utf8Valid: opcode === 1 ? true : null, closeCode: null, closeReason: null, time: T0 + 100 + messageIndex, ...extra,
    });
    const { db } = captureOf([
      {
        requestHeaders: [['Host', 'site.test'], ['Upgrade', 'websocket'], ['Connection', 'Upgrade'], ['Sec-WebSocket-Version', '13']],
        status: 101,
        statusText: 'Switching Protocols',
        responseHeaders: [['Upgrade', 'websocket'], ['Connection', 'Upgrade']],
        after: (exchangeId, connId) => [
          { kind: 'ws.opened', exchangeId, connId, subprotocol: 'chat', extensions: null, deflate: null },
          message(exchangeId, connId, 0, 'client', 1, Buffer.from('héllo')),
          message(exchangeId, connId, 1, 'server', 2, Buffer.from([0, 1, 255])),
          message(exchangeId, connId, 2, 'server', 1, Buffer.from('cut sho'), { truncated: true, decodedSize: 100 }),
          message(exchangeId, connId, 3, 'client', 8, Buffer.from([0x03, 0xe8]), { utf8Valid: null, closeCode: 1000, closeReason: '' }),
          { kind: 'ws.closed', exchangeId, connId, closedBy: 'client', closeCode: 1000, closeReason: '', clean: false,
            error: { reason: 'closed', message: 'the server ended the connection without a close frame' },
            messagesFromClient: 2, messagesFromServer: 2, bytesFromClient: 20, bytesFromServer: 30 },
        ],
      },
      // A 101 whose WebSocket the store did not record (an older capture): still a WebSocket entry.
      { requestHeaders: [['Host', 'site.test'], ['Upgrade', 'websocket']], status: 101, responseHeaders: [['Upgrade', 'websocket']] },
      { requestHeaders: [['Host', 'site.test'], ['Upgrade', 'websocket']], status: 400 },
    ]);
    const [ws, unrecorded, refused] = (await exportHar(db)).entries;
    assert.equal(ws._resourceType, 'websocket');
    assert.deepEqual(ws._webSocketMessages, [
      { type: 'send', time: (T0 + 100) / 1000, opcode: 1, data: 'héllo' },
      { type: 'receive', time: (T0 + 101) / 1000, opcode: 2, data: 'AAH/' },
      { type: 'receive', time: (T0 + 102) / 1000, opcode: 1, data: 'cut sho', _truncated: true },
      { type: 'send', time: (T0 + 103) / 1000, opcode: 8, data: 'A+g=' },
    ]);
    assert.deepEqual(ws._webSocket, {
      subprotocol: 'chat', extensions: null, closedBy: 'client', closeCode: 1000, closeReason: '', clean: false,
      messagesFromClient: 2, messagesFromServer: 2, error: { reason: 'closed', message: 'the server ended the connection without a close frame' },
    });
    assert.deepEqual(ws._errors, [{ source: 'websocket', reason: 'closed', message: 'the server ended the connection without a close frame' }]);
    assert.equal(unrecorded._resourceType, 'websocket');
    assert.deepEqual(unrecorded._webSocketMessages, []);
    assert.equal(unrecorded._webSocket, undefined);
    assert.equal(refused._resourceType, undefined, 'a refused handshake is no WebSocket');
    assert.equal(refused._webSocketMessages, undefined);
  });

  test('toHarEntry alone takes the messages it is given', () => {
    const { db } = captureOf([{ requestHeaders: [['Host', 'site.test'], ['Upgrade', 'websocket']], status: 101, responseHeaders: [] }]);
    const messages = [{ side: 'client' as const, sentAt: T0, opcode: 1, data: Buffer.from('hi'), truncated: false, utf8Valid: true }].map(toHarWebSocketMessage);
    const entry = toHarEntry(getExchange(db, 1)!, { connection: null, webSocket: { row: null }, webSocketMessages: messages });
    assert.deepEqual(entry._webSocketMessages, [{ type: 'send', time: T0 / 1000, opcode: 1, data: 'hi' }]);
    assert.equal(Object.keys(entry).at(-1), '_webSocketMessages', 'the last field, where the writer streams');
  });
});

describe('HAR writer', { timeout: 10_000 }, () => {
  const many = (n: number) =>
    captureOf(Array.from({ length: n }, (_, i) => ({ target: `/item/${i}`, responseHeaders: [['Content-Type', 'text/plain']] as HeaderList, responseBody: Buffer.from(`body ${i} `.repeat(50)) })));

  test('waits for drain: a slow output never holds more than a chunk and an entry', async () => {
    const { db } = many(300);
    const chunks: string[] = [];
    let maxBuffered = 0;
    let refused = 0;
    const slow = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk.toString());
        setImmediate(cb);
      },
    });
    const write = slow.write.bind(slow);
    slow.write = ((chunk: string) => {
      const ok = write(chunk);
      maxBuffered = Math.max(maxBuffered, slow.writableLength);
      if (!ok) refused++;
      return ok;
    }) as typeof slow.write;
    const { entries } = await writeHar(db, slow, { chunkSize: 4096, pageSize: 50 });
    assert.equal(entries, 300);
    assert.ok(refused > 10, `the output pushed back (${refused} times)`);
    assert.ok(maxBuffered < 4096 + 2048, `at most a chunk plus one entry waited in the stream (${maxBuffered} bytes)`);
    const har = JSON.parse(chunks.join(''));
    await assertValidHar(har);
    assert.deepEqual(har.log.entries.map((e: HarEntry) => e.request.url), Array.from({ length: 300 }, (_, i) => `http://site.test/item/${i}`));
  });

  test('a store filter and a predicate select entries; an empty selection is a valid empty log', async () => {
    const { db } = many(30);
    const out = collector();
    const { entries } = await writeHar(db, out, { filter: { search: '/item/1' }, predicate: (e) => e.id % 2 === 0 });
    const urls = JSON.parse(out.text()).log.entries.map((e: HarEntry) => e.request.url);
    // item/N is exchange N+1: the URL matches item/1 and item/10…19, the predicate keeps even ids.
    assert.deepEqual(urls, [1, 11, 13, 15, 17, 19].map((n) => `http://site.test/item/${n}`));
    assert.equal(entries, urls.length);
    const empty = collector();
    await writeHar(db, empty, { filter: { host: 'nowhere.test' } });
    const har = JSON.parse(empty.text());
    assert.deepEqual(har.log.entries, []);
    await assertValidHar(har);
  });

  test('an output that is destroyed mid-export rejects instead of hanging', async () => {
    const { db } = many(200);
    let written = 0;
    const failing = new Writable({
      highWaterMark: 1024,
      write(_chunk, _enc, cb) {
        if (++written === 3) failing.destroy(new Error('disk full'));
        else setImmediate(cb);
      },
    });
    failing.on('error', () => {});
    await assert.rejects(writeHar(db, failing, { chunkSize: 2048 }), /disk full|closed before the export finished/);
  });
});
