import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { CaptureBus } from '../src/capture/bus.js';
import type { CertificateInfo, NewCaptureEvent } from '../src/capture/events.js';
import { openStore } from '../src/store/open-store.js';
import { getConnection, getExchange } from '../src/store/queries.js';
import { SqliteSink, type CommittedInfo, type SqliteSinkOptions } from '../src/store/sqlite-sink.js';

const dir = mkdtempSync(join(tmpdir(), 'hopscope-sink-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;
const tempFile = () => join(dir, `capture-${++fileNo}.sqlite`);

const noTimings = { dnsMs: null, connectMs: null, tlsMs: null, requestEnd: null, responseStart: null };

function setup(options: SqliteSinkOptions = {}) {
  const { db } = openStore(':memory:');
  const bus = new CaptureBus();
  const errors: Error[] = [];
  const sink = new SqliteSink(db, bus, { onError: (err) => errors.push(err), ...options });
  const commits: CommittedInfo[] = [];
  sink.onCommitted((info) => commits.push(info));
  const emit = (e: NewCaptureEvent) => bus.emit(e);
  return { db, bus, sink, errors, commits, emit };
}

function openPlainConn(emit: (e: NewCaptureEvent) => void, connId: number) {
  emit({ kind: 'conn.opened', connId, parentId: null, listener: 'proxy', clientAddress: '127.0.0.1', clientPort: 50000 + connId });
  emit({ kind: 'conn.detected', connId, protocol: 'http1', hello: null, intercepted: false });
}

function request(emit: (e: NewCaptureEvent) => void, exchangeId: number, connId: number, method = 'POST') {
  emit({
    kind: 'http.request',
    exchangeId,
    connId,
    streamId: null,
    protocol: 'HTTP/1.1',
    method,
    target: '/api/items?x=1',
    url: 'http://example.test/api/items?x=1',
    scheme: 'http',
    host: 'example.test',
    port: 80,
    headers: [
      ['Host', 'example.test'],
      ['X-Dup', 'a'],
      ['content-type', 'application/json'],
      ['X-Dup', 'b'],
    ],
  });
}

const raw = (db: Database.Database, sql: string, ...params: unknown[]) => db.prepare(sql).get(...params) as Record<string, unknown>;

describe('SqliteSink', { timeout: 10_000 }, () => {
  test('writes a complete exchange with bodies, trailers and timings in one batch', () => {
    const { db, sink, emit, commits } = setup();
    openPlainConn(emit, 1);
    request(emit, 1, 1);
    emit({ kind: 'http.body', exchangeId: 1, side: 'client', chunk: Buffer.from('{"a":') });
    emit({ kind: 'http.body', exchangeId: 1, side: 'client', chunk: Buffer.from('1}') });
    emit({ kind: 'http.response', exchangeId: 1, protocol: 'HTTP/1.1', status: 200, statusText: 'OK', time: 1000.5,
      headers: [['Content-Type', 'text/plain'], ['Trailer', 'X-Sum']], remoteAddress: '10.0.0.2', remotePort: 80 });
    emit({ kind: 'http.body', exchangeId: 1, side: 'server', chunk: new Uint8Array(Buffer.from('hello ')) });
    emit({ kind: 'http.body', exchangeId: 1, side: 'server', chunk: Buffer.from('world') });
    emit({ kind: 'http.trailers', exchangeId: 1, side: 'server', headers: [['X-Sum', 'abc']] });
    emit({ kind: 'http.completed', exchangeId: 1, requestBodySize: 7, responseBodySize: 11, time: 1010,
      timings: { dnsMs: 1.5, connectMs: 2.5, tlsMs: null, requestEnd: 999, responseStart: 1000.25 } });
    emit({ kind: 'conn.closed', connId: 1, bytesFromClient: 200, bytesFromServer: 300, error: null });

    assert.equal(raw(db, 'SELECT count(*) AS n FROM exchanges').n, 0, 'emit must not write synchronously');
    sink.flush();
    assert.equal(commits.length, 1);
    assert.deepEqual(commits[0], { lastSeq: 11, exchangeIds: [1], connIds: [1] });

    const ex = getExchange(db, 1);
    assert.ok(ex);
    assert.equal(ex.state, 'complete');
    assert.equal(ex.status, 200);
    assert.equal(ex.responseContentType, 'text/plain');
    assert.deepEqual(ex.requestHeaders[3], ['X-Dup', 'b']);
    assert.deepEqual(ex.responseTrailers, [['X-Sum', 'abc']]);
    assert.equal(ex.requestTrailers, null);
    assert.equal(ex.remoteAddress, '10.0.0.2');
    assert.equal(ex.responseStartAt, 1000.25);
    assert.equal(ex.requestEndAt, 999);
    assert.equal(ex.completedAt, 1010);
    assert.equal(ex.dnsMs, 1.5);
    assert.equal(ex.tlsMs, null);
    assert.equal(ex.requestBody?.data.toString(), '{"a":1}');
    assert.deepEqual({ ...ex.responseBody, data: ex.responseBody?.data.toString() }, { data: 'hello world', size: 11, truncated: false });
    assert.equal(ex.lastSeq, 10);

    const row = raw(db, 'SELECT request_headers, state, response_body_size, last_seq FROM exchanges WHERE id = 1');
    assert.equal(row.request_headers, '[["Host","example.test"],["X-Dup","a"],["content-type","application/json"],["X-Dup","b"]]');
    assert.deepEqual({ ...row }, { request_headers: row.request_headers, state: 'complete', response_body_size: 11, last_seq: 10 });
    const bodyRow = raw(db, `SELECT CAST(data AS TEXT) AS text, size, truncated, seq FROM bodies WHERE exchange_id = 1 AND side = 'response'`);
    assert.deepEqual({ ...bodyRow }, { text: 'hello world', size: 11, truncated: 0, seq: 10 });
    const conn = raw(db, 'SELECT closed_at IS NOT NULL AS closed, bytes_from_client, error_reason, last_seq FROM connections WHERE id = 1');
    assert.deepEqual({ ...conn }, { closed: 1, bytes_from_client: 200, error_reason: null, last_seq: 11 });
    assert.equal(sink.pendingBytes, 0);
    sink.close();
  });

  test('records a failed exchange with its error and the body seen so far', () => {
    const { db, sink, emit } = setup();
    openPlainConn(emit, 1);
    request(emit, 1, 1, 'PUT');
    emit({ kind: 'http.body', exchangeId: 1, side: 'client', chunk: Buffer.from('partial') });
    emit({ kind: 'http.failed', exchangeId: 1, requestBodySize: 7, responseBodySize: 0, timings: noTimings,
      error: { reason: 'refused', message: 'connect ECONNREFUSED 127.0.0.1:9', code: 'ECONNREFUSED' } });
    sink.flush();
    const ex = getExchange(db, 1);
    assert.ok(ex);
    assert.equal(ex.state, 'failed');
    assert.equal(ex.errorReason, 'refused');
    assert.deepEqual(ex.error, { reason: 'refused', message: 'connect ECONNREFUSED 127.0.0.1:9', code: 'ECONNREFUSED' });
    assert.equal(ex.status, null);
    assert.equal(ex.responseBody, null, 'an empty body has no row');
    assert.equal(ex.requestBody?.data.toString(), 'partial');
    assert.equal(raw(db, `SELECT count(*) AS n FROM bodies`).n, 1);
    sink.close();
  });

  test('truncates a body over the cap, keeps the prefix and the full size', () => {
    const { db, sink, emit } = setup({ bodyCap: 10 });
    openPlainConn(emit, 1);
    request(emit, 1, 1, 'GET');
    emit({ kind: 'http.response', exchangeId: 1, protocol: 'HTTP/1.1', status: 200, statusText: 'OK', headers: [] });
    for (const part of ['abcdef', 'ghijkl', 'mnopqr']) emit({ kind: 'http.body', exchangeId: 1, side: 'server', chunk: Buffer.from(part) });
    // The tap may have counted more than it handed to the bus: the completed event's size wins.
    emit({ kind: 'http.completed', exchangeId: 1, requestBodySize: 0, responseBodySize: 5000, timings: noTimings });
    sink.flush();
    const ex = getExchange(db, 1);
    assert.deepEqual({ ...ex?.responseBody, data: ex?.responseBody?.data.toString() }, { data: 'abcdefghij', size: 5000, truncated: true });
    const row = raw(db, `SELECT length(data) AS stored, size, truncated FROM bodies WHERE exchange_id = 1`);
    assert.deepEqual({ ...row }, { stored: 10, size: 5000, truncated: 1 });
    sink.close();
  });

  test('drops body bytes beyond the pending memory limit and marks them truncated', () => {
    const { db, sink, emit } = setup({ pendingBodyLimit: 8 });
    openPlainConn(emit, 1);
    request(emit, 1, 1);
    request(emit, 2, 1);
    emit({ kind: 'http.body', exchangeId: 1, side: 'client', chunk: Buffer.from('123456') });
    emit({ kind: 'http.body', exchangeId: 2, side: 'client', chunk: Buffer.from('abcdef') }); // over the limit: dropped
    emit({ kind: 'http.body', exchangeId: 1, side: 'client', chunk: Buffer.from('78') });
    emit({ kind: 'http.body', exchangeId: 2, side: 'client', chunk: Buffer.from('g') }); // stays dropped: no gap
    assert.equal(sink.pendingBytes, 8);
    emit({ kind: 'http.completed', exchangeId: 1, requestBodySize: 8, responseBodySize: 0, timings: noTimings });
    emit({ kind: 'http.completed', exchangeId: 2, requestBodySize: 7, responseBodySize: 0, timings: noTimings });
    sink.flush();
    assert.equal(sink.pendingBytes, 0);
    assert.deepEqual({ ...getExchange(db, 1)?.requestBody, data: '' }, { data: '', size: 8, truncated: false });
    const second = getExchange(db, 2)?.requestBody;
    assert.equal(second?.data.length, 0);
    assert.equal(second?.truncated, true);
    assert.equal(second?.size, 7);
    sink.close();
  });

  test('stores a tunnel with both TLS legs, a failed leg and a decode error', () => {
    const { db, sink, emit, commits } = setup();
    const cert: CertificateInfo = {
      subject: 'CN=api.example.test', issuer: 'CN=Test CA', sans: ['DNS:api.example.test'], validFrom: 'Jan 1 00:00:00 2025 GMT',
      validTo: 'Jan 1 00:00:00 2026 GMT', fingerprint256: 'AA:BB', serialNumber: '01',
    };
    emit({ kind: 'conn.opened', connId: 7, parentId: null, listener: 'proxy', clientAddress: '::1', clientPort: 40000, time: 500 });
    emit({ kind: 'conn.tunnel', connId: 7, host: 'api.example.test', port: 443, target: 'api.example.test:443',
      headers: [['Host', 'api.example.test:443'], ['Proxy-Connection', 'keep-alive']] });
    emit({ kind: 'conn.upstream', connId: 7, remoteAddress: '10.1.1.1', remotePort: 443, dnsMs: 0.5, connectMs: 3 });
    emit({ kind: 'conn.detected', connId: 7, protocol: 'tls', intercepted: true,
      hello: { sni: 'api.example.test', alpn: ['h2', 'http/1.1'], version: 0x0303, supportedVersions: [0x0304, 0x0303] } });
    emit({ kind: 'tls.established', connId: 7, leg: 'upstream', sni: 'api.example.test', alpnOffered: ['h2', 'http/1.1'],
      alpn: 'h2', version: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256', handshakeMs: 12.5, certificates: [cert] });
    emit({ kind: 'tls.established', connId: 7, leg: 'client', sni: 'api.example.test', alpnOffered: ['h2', 'http/1.1'],
      alpn: 'h2', version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', handshakeMs: 4, certificates: [] });
    emit({ kind: 'decode.failed', connId: 7, decoder: 'hpack', side: 'server', code: 'HPACK_BAD_INDEX', message: 'index 99', time: 777 });
    emit({ kind: 'conn.closed', connId: 7, bytesFromClient: 1000, bytesFromServer: 2000, time: 900,
      error: { reason: 'reset', message: 'read ECONNRESET', code: 'ECONNRESET' } });
    emit({ kind: 'conn.opened', connId: 8, parentId: 7, listener: 'proxy', clientAddress: '::1', clientPort: 40001 });
    emit({ kind: 'tls.failed', connId: 8, leg: 'client', sni: 'pinned.test', alpnOffered: ['http/1.1'], certificates: [cert],
      error: { reason: 'cert-rejected', message: 'alert 48: unknown ca' } });
    emit({ kind: 'conn.opened', connId: 9, parentId: null, listener: 'socks', clientAddress: '127.0.0.1', clientPort: 5001 });
    emit({ kind: 'conn.tunnel', connId: 9, host: '::1', port: 443, target: '[::1]:443', headers: [], via: 'socks5', user: 'ci' });
    sink.flush();
    assert.deepEqual(commits[0]?.connIds.sort(), [7, 8, 9]);

    const conn = getConnection(db, 7);
    assert.ok(conn);
    assert.deepEqual(conn.tunnel, { host: 'api.example.test', port: 443, target: 'api.example.test:443',
      headers: [['Host', 'api.example.test:443'], ['Proxy-Connection', 'keep-alive']], via: 'connect', user: null });
    const socks = getConnection(db, 9)!;
    assert.equal(socks.listener, 'socks');
    assert.deepEqual(socks.tunnel, { host: '::1', port: 443, target: '[::1]:443', headers: [], via: 'socks5', user: 'ci' });
    assert.deepEqual(conn.upstream, { remoteAddress: '10.1.1.1', remotePort: 443, dnsMs: 0.5, connectMs: 3 });
    assert.deepEqual(conn.hello, { sni: 'api.example.test', alpn: ['h2', 'http/1.1'], version: 0x0303, supportedVersions: [0x0304, 0x0303] });
    assert.equal(conn.intercepted, true);
    assert.equal(conn.detectedProtocol, 'tls');
    assert.deepEqual(conn.tls.upstream, { sni: 'api.example.test', alpnOffered: ['h2', 'http/1.1'], alpn: 'h2', version: 'TLSv1.3',
      cipher: 'TLS_AES_128_GCM_SHA256', handshakeMs: 12.5, certificates: [cert], error: null });
    assert.equal(conn.tls.client?.cipher, 'TLS_AES_256_GCM_SHA384');
    assert.deepEqual(conn.error, { reason: 'reset', message: 'read ECONNRESET', code: 'ECONNRESET' });
    assert.equal(conn.openedAt, 500);
    assert.equal(conn.closedAt, 900);
    assert.deepEqual(conn.decodeErrors.map(({ decoder, side, code, occurredAt, seq }) => ({ decoder, side, code, occurredAt, seq })),
      [{ decoder: 'hpack', side: 'server', code: 'HPACK_BAD_INDEX', occurredAt: 777, seq: 7 }]);

    const failedLeg = getConnection(db, 8);
    assert.equal(failedLeg?.parentId, 7);
    assert.equal(failedLeg?.tls.upstream, null);
    assert.deepEqual(failedLeg?.tls.client, { sni: 'pinned.test', alpnOffered: ['http/1.1'], alpn: null, version: null, cipher: null,
      handshakeMs: null, certificates: [cert], error: { reason: 'cert-rejected', message: 'alert 48: unknown ca' } });

    const row = raw(db, `SELECT upstream_tls_alpn, json_extract(hello_alpn, '$[0]') AS first_alpn,
      json_extract(upstream_tls_certificates, '$[0].subject') AS subject, client_tls_error_reason, last_seq FROM connections WHERE id = 7`);
    assert.deepEqual({ ...row }, { upstream_tls_alpn: 'h2', first_alpn: 'h2', subject: 'CN=api.example.test',
      client_tls_error_reason: null, last_seq: 8 });
    assert.equal(raw(db, 'SELECT client_tls_error_reason AS r FROM connections WHERE id = 8').r, 'cert-rejected');
    sink.close();
  });

  test('flushes on its own within the interval, and early (after emit returns) when the queue is large', async () => {
    // The sink's timer is unref()ed by design; a ref'd one keeps this test's event loop alive.
    const keepAlive = setInterval(() => {}, 1000);
    try {
      await flushesOnItsOwn();
    } finally {
      clearInterval(keepAlive);
    }
  });

  async function flushesOnItsOwn() {
    const timed = setup({ flushIntervalMs: 20 });
    const committed = new Promise<CommittedInfo>((resolve) => timed.sink.onCommitted(resolve));
    openPlainConn(timed.emit, 1);
    assert.equal((await committed).lastSeq, 2);
    assert.equal(raw(timed.db, 'SELECT count(*) AS n FROM connections').n, 1);
    timed.sink.close();

    const big = setup({ flushIntervalMs: 60_000, maxBatch: 4 });
    const early = new Promise<CommittedInfo>((resolve) => big.sink.onCommitted(resolve));
    openPlainConn(big.emit, 1);
    openPlainConn(big.emit, 2);
    assert.equal(raw(big.db, 'SELECT count(*) AS n FROM connections').n, 0, 'never flushes inside emit');
    assert.deepEqual((await early).connIds, [1, 2]);
    big.sink.close();
  }

  test('close() flushes pending events and unfinished bodies, then ignores the bus', () => {
    const { db, bus, sink, emit } = setup({ flushIntervalMs: 60_000 });
    openPlainConn(emit, 1);
    request(emit, 1, 1, 'GET');
    emit({ kind: 'http.response', exchangeId: 1, protocol: 'HTTP/1.1', status: 206, statusText: 'Partial Content', headers: [] });
    emit({ kind: 'http.body', exchangeId: 1, side: 'server', chunk: Buffer.from('stream') });
    sink.close();
    const ex = getExchange(db, 1);
    assert.equal(ex?.state, 'responded');
    assert.deepEqual({ ...ex?.responseBody, data: ex?.responseBody?.data.toString() }, { data: 'stream', size: 6, truncated: false });
    assert.equal(bus.hasListeners, false);
    openPlainConn(emit, 2);
    sink.flush();
    assert.equal(raw(db, 'SELECT count(*) AS n FROM connections').n, 1);
  });

  test('a closed connection writes the bodies of exchanges left open on it', () => {
    const { db, sink, emit } = setup();
    openPlainConn(emit, 3);
    request(emit, 4, 3);
    emit({ kind: 'http.body', exchangeId: 4, side: 'client', chunk: Buffer.from('upload-') });
    emit({ kind: 'http.body', exchangeId: 99, side: 'client', chunk: Buffer.from('stray') }); // no request seen: ignored
    assert.equal(sink.pendingBytes, 7);
    emit({ kind: 'conn.closed', connId: 3, bytesFromClient: 7, bytesFromServer: 0, error: { reason: 'aborted', message: 'gone' } });
    sink.flush();
    assert.equal(getExchange(db, 4)?.requestBody?.data.toString(), 'upload-');
    assert.equal(sink.pendingBytes, 0);
    sink.close();
  });

  test('a bad event (duplicate id) is skipped and reported; the rest of its batch is committed', () => {
    const { db, sink, emit, errors, commits } = setup();
    openPlainConn(emit, 1);
    emit({ kind: 'conn.opened', connId: 1, parentId: null, listener: 'again', clientAddress: '127.0.0.1', clientPort: 1 });
    openPlainConn(emit, 2);
    sink.flush();
    assert.equal(errors.length, 1);
    assert.match(errors[0].message, /UNIQUE|PRIMARY KEY/);
    assert.equal(commits.length, 1);
    assert.equal(raw(db, 'SELECT listener FROM connections WHERE id = 1').listener, 'proxy');
    assert.equal(raw(db, 'SELECT count(*) AS n FROM connections').n, 2);
    sink.close();
  });

  test('writes that fail (read-only file) never throw into emit, are reported once, and the sink keeps going', () => {
    const path = tempFile();
    openStore(path).db.close();
    const { db } = openStore(path, { readonly: true });
    const bus = new CaptureBus();
    const errors: Error[] = [];
    const sink = new SqliteSink(db, bus, { onError: (err) => errors.push(err) });
    let commits = 0;
    sink.onCommitted(() => commits++);
    assert.doesNotThrow(() => openPlainConn((e) => bus.emit(e), 1));
    sink.flush();
    openPlainConn((e) => bus.emit(e), 2);
    sink.flush();
    assert.equal(errors.length, 1, 'one report for a failing streak');
    assert.match(errors[0].message, /readonly/i);
    assert.equal(commits, 0);
    sink.close();
    db.close();

    // Writable file whose writes fail for a while (query_only), then recover.
    const store = openStore(path);
    const bus2 = new CaptureBus();
    const errors2: Error[] = [];
    const sink2 = new SqliteSink(store.db, bus2, { onError: (err) => errors2.push(err) });
    store.db.pragma('query_only = ON');
    request((e) => bus2.emit(e), 1, 1);
    sink2.flush();
    assert.equal(errors2.length, 1);
    store.db.pragma('query_only = OFF');
    openPlainConn((e) => bus2.emit(e), 5);
    sink2.flush();
    assert.equal(raw(store.db, 'SELECT count(*) AS n FROM connections').n, 1);
    assert.equal(raw(store.db, 'SELECT count(*) AS n FROM exchanges').n, 0, 'the failed batch was dropped');
    // Failing again right after (a nearly full disk lets a small batch through now and then): the
    // same trouble, not reported again.
    store.db.pragma('query_only = ON');
    request((e) => bus2.emit(e), 2, 2);
    sink2.flush();
    assert.equal(errors2.length, 1, 'no second report within a minute of the first');
    store.db.pragma('query_only = OFF');
    sink2.close();
    store.db.close();
  });
});
