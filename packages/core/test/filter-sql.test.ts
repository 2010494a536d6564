// The SQL translation and the in-memory evaluator must agree on every exchange: the inspector
// filters with SQL, the exporters and the UI may evaluate in memory.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { CaptureBus } from '../src/capture/bus.js';
import type { HeaderList, HttpProtocol } from '../src/capture/events.js';
import { filterToSql, matchesFilter, parseFilterOrThrow, formatFilter, type FilterExpr } from '../src/filter/index.js';
import { openStore } from '../src/store/open-store.js';
import { getExchange } from '../src/store/queries.js';
import { decodedBody } from '../src/store/decoded-body.js';
import { SqliteSink } from '../src/store/sqlite-sink.js';

interface Spec {
  protocol?: HttpProtocol;
  method?: string;
  host: string;
  path?: string;
  headers?: HeaderList;
  status?: number | null;
  responseHeaders?: HeaderList;
  requestBody?: Uint8Array;
  responseBody?: Uint8Array;
  fail?: 'timeout' | 'reset';
  duration?: number;
  pending?: boolean;
}

/** Hex of `n` pseudo-random bytes: text gzip cannot shrink much, so a cut really truncates it. */
function noise(n: number): string {
  let x = 1;
  return Array.from({ length: n }, () => (((x = (x * 1103515245 + 12345) & 0x7fffffff) >> 16) & 0xff).toString(16).padStart(2, '0')).join('');
}

const specs: Spec[] = [
  { host: 'api.example.com', path: '/v1/Users?id=7', headers: [['Accept', 'application/json']], status: 200,
    responseHeaders: [['Content-Type', 'application/json; charset=utf-8']], responseBody: Buffer.from('{"User":"Ada","id":7}'), duration: 12.5 },
  { host: 'API.Example.com', method: 'POST', path: '/v1/login', headers: [['Content-Type', 'text/plain'], ['X-Trace', 'ABC']],
    requestBody: Buffer.from('Password=Secret'), status: 401, responseHeaders: [['WWW-Authenticate', 'Basic']], duration: 3 },
  { host: 'cdn.example.org', path: '/img/logo.png', status: 304, responseHeaders: [['ETag', '"v1"']], duration: 250 },
  { host: 'cdn.example.org', path: '/big.bin', status: 200, responseHeaders: [['Content-Type', 'application/octet-stream']],
    responseBody: Uint8Array.from([0, 0xff, 0xfe, 0x00, 0x41, 0x62, 0x43, 0x80]), duration: 1200 },
  { host: 'ws.test', path: '/socket', headers: [['Upgrade', 'WebSocket'], ['Connection', 'Upgrade'], ['Sec-WebSocket-Version', '13']],
    status: 101, responseHeaders: [['Upgrade', 'websocket']], duration: 1 },
  { protocol: 'h2', method: 'CONNECT', host: 'ws.test', path: '/chat', headers: [['sec-websocket-version', '13']], status: 200, duration: 2 },
  { protocol: 'h2', method: 'GET', host: 'h2.test', path: '/page', headers: [['upgrade', 'websocket']], status: 503,
    responseHeaders: [['content-type', 'text/html']], responseBody: gzipSync('<h1>Down for Maintenance</h1>'), duration: 40 },
  { protocol: 'h2c', host: 'h2c.test', path: '/', status: null, fail: 'reset', duration: 5000 },
  { protocol: 'HTTP/1.0', host: 'old.test', path: '/index.html', status: 500, responseHeaders: [['Server', 'Apache']],
    responseBody: Buffer.from('Internal ERROR: état'), duration: 0.25 },
  { host: 'slow.test', path: '/wait', pending: true },
  { host: 'slow.test', method: 'put', path: '/x_y%z', status: null, fail: 'timeout', requestBody: Buffer.from('x'.repeat(3000)), duration: 10_000 },
  { host: 'under_score.test', path: '/a*b', status: 204, duration: 0 },
  // Content codings, undone for body: (13–17).
  { host: 'coded.test', path: '/gzip', status: 200, responseHeaders: [['Content-Encoding', 'gzip']], responseBody: gzipSync('Compressed NEEDLE in gzip'), duration: 1 },
  { protocol: 'h2', host: 'coded.test', path: '/br', status: 200, responseHeaders: [['content-encoding', 'br']], responseBody: brotliCompressSync('brotli needle'), duration: 1 },
  { host: 'coded.test', path: '/cut', status: 200, responseHeaders: [['Content-Encoding', 'gzip']],
    responseBody: gzipSync(`needle first, then ${noise(4000)}`).subarray(0, 600), duration: 1 },
  { host: 'coded.test', method: 'POST', path: '/upload', headers: [['Content-Encoding', 'deflate']], requestBody: deflateSync('upload needle'), status: 200, duration: 1 },
  { host: 'coded.test', path: '/liar', status: 200, responseHeaders: [['Content-Encoding', 'gzip']], responseBody: Buffer.from('plain needle, not gzip'), duration: 1 },
];

function populate() {
  const { db } = openStore(':memory:');
  const bus = new CaptureBus();
  const sink = new SqliteSink(db, bus, { onError: (err) => assert.fail(err) });
  const t0 = 1_700_000_000_000;
  specs.forEach((spec, i) => {
    const connId = i + 1;
    const exchangeId = i + 1;
    const protocol = spec.protocol ?? 'HTTP/1.1';
    bus.emit({ kind: 'conn.opened', connId, parentId: null, listener: 'proxy', clientAddress: '127.0.0.1', clientPort: 1000 + i, time: t0 });
    bus.emit({
      kind: 'http.request', exchangeId, connId, streamId: protocol.startsWith('h2') ? 1 : null, protocol, method: spec.method ?? 'GET',
      target: spec.path ?? '/', url: `${i % 2 ? 'https' : 'http'}://${spec.host}${spec.path ?? '/'}`, scheme: i % 2 ? 'https' : 'http',
      host: spec.host, port: 80, headers: [['Host', spec.host], ...(spec.headers ?? [])], time: t0 + i,
    });
    if (spec.requestBody) bus.emit({ kind: 'http.body', exchangeId, side: 'client', chunk: spec.requestBody });
    if (spec.pending) return;
    if (spec.status !== null && spec.status !== undefined) {
      bus.emit({ kind: 'http.response', exchangeId, protocol, status: spec.status, statusText: 'X', headers: spec.responseHeaders ?? [] });
    }
    if (spec.responseBody) bus.emit({ kind: 'http.body', exchangeId, side: 'server', chunk: spec.responseBody });
    const sizes = { requestBodySize: spec.requestBody?.length ?? 0, responseBodySize: spec.responseBody?.length ?? 0 };
    const timings = { dnsMs: null, connectMs: null, tlsMs: null, requestEnd: null, responseStart: null };
    const time = t0 + i + (spec.duration ?? 0);
    if (spec.fail) bus.emit({ kind: 'http.failed', exchangeId, error: { reason: spec.fail, message: spec.fail }, ...sizes, timings, time });
    else bus.emit({ kind: 'http.completed', exchangeId, ...sizes, timings, time });
  });
  sink.close();
  return db;
}

const LEAVES = [
  'example', 'API', 'url:"/v1/"', '"x_y%z"', 'https', '"a*b"',
  'host:api.example.com', 'host:*.example.*', 'host:under_score.test', 'host:*.TEST', 'host:ws.test', 'host:*',
  'method:GET', 'method:put', 'method:CONNECT',
  'status:200', 'status:4xx', 'status:5xx', 'status:>=300', 'status:<200', 'status:100-204',
  'protocol:http1', 'protocol:http/1.0', 'protocol:h2', 'protocol:h2c', 'protocol:http2', 'protocol:ws', 'protocol:ws-h2', 'protocol:ws-h1',
  'scheme:https', 'has:websocket', 'has:error', 'has:response', 'has:request-body', 'has:response-body',
  'state:pending', 'state:complete', 'state:failed', 'error:timeout', 'error:reset',
  'header:accept', 'header:content-type=JSON', 'reqheader:x-trace=abc', 'resheader:etag', 'resheader:server=apache', 'header:upgrade=websocket',
  'body:needle', 'resbody:needle', 'reqbody:needle', 'body:ada', 'body:password', 'reqbody:secret', 'resbody:error', 'resbody:"é"', 'body:"a\\u"', 'resbody:abc', 'resbody:maintenance', 'body:xxxx',
  'type:json', 'type:text', 'size:>10', 'size:0', 'reqsize:>=3000', 'size:1b-1kb',
  'duration:>=1s', 'duration:<1', 'duration:0.25', 'duration:12.5', 'conn:3', 'conn:99',
];

function randomExpr(rand: (n: number) => number, depth: number): string {
  const r = rand(depth > 3 ? 1 : 5);
  if (r === 0) return LEAVES[rand(LEAVES.length)];
  const a = randomExpr(rand, depth + 1);
  const b = randomExpr(rand, depth + 1);
  return [`(${a} or ${b})`, `(${a} and ${b})`, `not ${a}`, `${a} ${b}`][r - 1];
}

describe('filter SQL translation agrees with the evaluator', { timeout: 10_000 }, () => {
  const db = populate();
  const details = specs.map((_, i) => getExchange(db, i + 1)!);
  const viaSql = (expr: FilterExpr | null) => {
    const { sql, params } = filterToSql(expr);
    return (db.prepare(`SELECT e.id FROM exchanges e WHERE ${sql} ORDER BY e.id`).all(...params) as Array<{ id: number }>).map((r) => r.id);
  };
  const viaEval = (expr: FilterExpr | null) => details.filter((d) => matchesFilter(expr, d, decodedBody)).map((d) => d.id);

  test('each leaf agrees on its own', () => {
    for (const source of LEAVES) {
      const expr = parseFilterOrThrow(source);
      assert.deepEqual(viaSql(expr), viaEval(expr), source);
    }
  });

  test('known answers', () => {
    const ids = (source: string) => viaSql(parseFilterOrThrow(source));
    assert.deepEqual(ids('has:websocket'), [5, 6], 'an HTTP/1 Upgrade and an h2 extended CONNECT; not an h2 GET with an upgrade header');
    assert.deepEqual(ids('protocol:ws-h2'), [6]);
    assert.deepEqual(ids('host:api.example.com'), [1, 2], 'host match is ASCII case-insensitive');
    assert.deepEqual(ids('status:4xx or status:5xx'), [2, 7, 9]);
    assert.deepEqual(ids('not status:200'), [2, 3, 5, 7, 8, 9, 10, 11, 12], 'an exchange without a status is not 200');
    assert.deepEqual(ids('resbody:abc'), [4], 'binary bodies are searched byte-wise with ASCII folding');
    assert.deepEqual(ids('resbody:maintenance'), [], 'a gzip body whose headers do not say so is searched as stored');
    assert.deepEqual(ids('resbody:needle'), [13, 14, 15, 17], 'gzip, br, a truncated gzip; a body that is not what its coding says, as stored');
    assert.deepEqual(ids('reqbody:needle'), [16], 'a deflate-coded upload');
    assert.deepEqual(ids('resbody:"in gzip"'), [13]);
    assert.deepEqual(ids('"x_y%z"'), [11], 'LIKE wildcards in the text are literal');
    assert.deepEqual(ids('duration:>=1s'), [4, 8, 11]);
    assert.deepEqual(ids(''), specs.map((_, i) => i + 1));
  });

  test('random combinations agree', () => {
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    for (let i = 0; i < 1500; i++) {
      const source = randomExpr(rand, 0);
      const expr = parseFilterOrThrow(source);
      assert.deepEqual(viaSql(expr), viaEval(expr), source);
      assert.deepEqual(viaSql(parseFilterOrThrow(formatFilter(expr))), viaSql(expr), `formatted: ${formatFilter(expr)}`);
    }
  });
});
