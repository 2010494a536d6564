import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { HeaderList } from '../src/capture/events.js';
import { h1RequestHeaders, h1Trailers, h2RequestHeaders, h2ResponseHeaders, h2Trailers } from '../src/reverse/header-translation.js';

const h2Client: HeaderList = [
  [':method', 'POST'],
  [':scheme', 'https'],
  [':authority', 'localhost:8082'],
  [':path', '/api?x=1'],
  ['cookie', 'a=1'],
  ['content-type', 'text/plain'],
  ['cookie', 'b=2'],
  ['te', 'trailers'],
  ['x-multi', '1'],
  ['x-multi', '2'],
];

const h1Client: HeaderList = [
  ['Host', 'localhost:8082'],
  ['Connection', 'keep-alive, X-Hop'],
  ['X-Hop', 'dropped'],
  ['Keep-Alive', 'timeout=5'],
  ['Transfer-Encoding', 'chunked'],
  ['Cookie', 'a=1; b=2;c=3'],
  ['Expect', '100-continue'],
  ['Proxy-Authorization', 'Basic eA=='],
  ['Upgrade', 'h2c'],
  ['HTTP2-Settings', 'AAMAAABkAAQCAAAAAAIAAAAA'],
  ['TE', 'trailers, deflate;q=0.5'],
  ['Content-Type', 'text/plain'],
  ['Content-Type', 'text/html'],
  ['Accept', 'a'],
  ['Accept', 'b'],
];

describe('header translation between HTTP/1.1 and HTTP/2', { timeout: 10_000 }, () => {
  test('HTTP/2 request -> HTTP/1.1: no pseudo-headers, Host first, cookie crumbs joined, TE: trailers with its Connection option', () => {
    assert.deepEqual(h1RequestHeaders(h2Client, { authority: 'backend:3000', hasBody: true }), [
      'Host', 'backend:3000',
      'content-type', 'text/plain',
      'x-multi', '1',
      'x-multi', '2',
      'cookie', 'a=1; b=2',
      'TE', 'trailers',
      'Connection', 'TE',
      'Transfer-Encoding', 'chunked',
    ]);
    const withLength: HeaderList = [[':method', 'PUT'], [':path', '/'], ['content-length', '3']];
    assert.deepEqual(h1RequestHeaders(withLength, { authority: 'b', hasBody: true }), ['Host', 'b', 'content-length', '3'], 'a length needs no chunking');
    assert.deepEqual(h1RequestHeaders([[':method', 'GET'], [':path', '/']], { authority: 'b', hasBody: false }), ['Host', 'b']);
  });

  test('HTTP/1.1 request -> HTTP/2: hop-by-hop and what Connection names dropped, cookie split, names lower-cased', () => {
    assert.deepEqual(h2RequestHeaders(h1Client, { method: 'POST', path: '/p', scheme: 'https', authority: 'backend' }), {
      ':method': 'POST',
      ':scheme': 'https',
      ':authority': 'backend',
      ':path': '/p',
      cookie: ['a=1', 'b=2', 'c=3'],
      'content-type': 'text/plain', // HTTP/2 (Node) allows one: the first wins
      accept: ['a', 'b'],
      te: 'trailers',
    });
    const connect = h2RequestHeaders([['Host', 'x'], ['Sec-WebSocket-Version', '13']], { method: 'CONNECT', protocol: 'websocket', path: '/ws', scheme: 'http', authority: 'b' });
    assert.equal(connect[':protocol'], 'websocket');
    assert.equal(connect['sec-websocket-version'], '13');
    assert.equal(connect.host, undefined);
  });

  test('responses and trailers: pseudo-headers and hop-by-hop ones never cross', () => {
    const upstreamH2: HeaderList = [[':status', '200'], ['content-type', 'a'], ['set-cookie', 'x=1'], ['set-cookie', 'y=2']];
    assert.deepEqual(h2ResponseHeaders(200, [['Content-Type', 'a'], ['Connection', 'close'], ['Transfer-Encoding', 'chunked'], ['Set-Cookie', 'x=1'], ['Set-Cookie', 'y=2']]), {
      ':status': 200,
      'content-type': 'a',
      'set-cookie': ['x=1', 'y=2'],
    });
    assert.deepEqual(h2ResponseHeaders(204, upstreamH2), { ':status': 204, 'content-type': 'a', 'set-cookie': ['x=1', 'y=2'] });
    assert.deepEqual(h2Trailers([['X-Sum', '1'], ['Connection', 'close']]), { 'x-sum': '1' });
    assert.deepEqual(h1Trailers([[':status', '200'], ['x-sum', '1']]), [['x-sum', '1']]);
  });
});
