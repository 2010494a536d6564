import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Http1Decoder, Http1DecodeError, type Http1Event, type Http1Kind } from '../src/decode/http1-decoder.js';
import { cuttings, randomChunks, seededRandom } from './helpers/split.js';

/** Events made comparable: adjacent body chunks merged into text, errors as their code. */
type Seen =
  | Exclude<Http1Event, { type: 'body' } | { type: 'switched' }>
  | { type: 'body'; text: string }
  | { type: 'switched'; rest: string }
  | { type: 'held'; rest: string }
  | { type: 'error'; code: string };

interface Replay {
  expect?: string[];
  /** Call end() after the bytes. */
  end?: boolean;
  /** Requests: after the bytes, call resume() (the server declined) or switchProtocols(). */
  then?: 'resume' | 'switch';
  maxHeaderBytes?: number;
}

function decode(kind: Http1Kind, chunks: Buffer[], replay: Replay = {}): Seen[] {
  const decoder = new Http1Decoder(kind, { maxHeaderBytes: replay.maxHeaderBytes });
  for (const method of replay.expect ?? []) decoder.expect(method);
  const seen: Seen[] = [];
  let switched: { type: 'switched'; rest: string } | null = null;
  const add = (events: Http1Event[]) => {
    for (const e of events) {
      const last = seen[seen.length - 1];
      if (e.type === 'body') {
        if (last?.type === 'body') last.text += e.chunk.toString('latin1');
        else seen.push({ type: 'body', text: e.chunk.toString('latin1') });
      } else if (e.type === 'switched') {
        switched = { type: 'switched', rest: e.rest.toString('latin1') };
        seen.push(switched);
      } else seen.push(e);
    }
  };
  try {
    for (const chunk of chunks) {
      const events = decoder.push(chunk);
      // After a switch the decoder stays silent; what the caller pushes is the new protocol's.
      if (switched) (switched as { rest: string }).rest += chunk.toString('latin1');
      add(events);
    }
    if (replay.then === 'resume') add(decoder.resume());
    if (replay.then === 'switch') seen.push({ type: 'held', rest: decoder.switchProtocols().toString('latin1') });
    if (replay.end) add(decoder.end());
  } catch (err) {
    if (!(err instanceof Http1DecodeError)) throw err;
    add(err.events);
    seen.push({ type: 'error', code: err.code });
  }
  return seen;
}

/** Decodes every cutting of `wire` and checks that each gives the same events; returns them. */
function decodeEveryWay(kind: Http1Kind, wire: string | Buffer, replay: Replay = {}): Seen[] {
  const bytes = typeof wire === 'string' ? Buffer.from(wire, 'latin1') : wire;
  const reference = decode(kind, [bytes], replay);
  let n = 0;
  for (const chunks of cuttings(bytes, bytes.length)) {
    assert.deepEqual(decode(kind, chunks, replay), reference, `cutting ${n++}: ${chunks.map((c) => c.length).join('+')}`);
  }
  return reference;
}

const requestHead = (method: string, target: string, headers: Array<[string, string]>, version: '1.0' | '1.1' = '1.1'): Seen => ({
  type: 'request-head',
  method,
  target,
  version,
  headers,
});
const responseHead = (
  status: number,
  statusText: string,
  headers: Array<[string, string]>,
  informational = false,
  version: '1.0' | '1.1' = '1.1',
): Seen => ({ type: 'response-head', status, statusText, version, headers, informational });
const body = (text: string): Seen => ({ type: 'body', text });
const END: Seen = { type: 'message-end' };
const error = (code: string): Seen => ({ type: 'error', code });

describe('Http1Decoder requests', { timeout: 10_000 }, () => {
  test('GET keeps header order, case and duplicates', () => {
    const wire = 'GET /a?b=c HTTP/1.1\r\nHost: example.test\r\nX-Dup: 1\r\nx-dup: 2\r\nAccept:*/*  \r\n\r\n';
    assert.deepEqual(decodeEveryWay('request', wire), [
      requestHead('GET', '/a?b=c', [
        ['Host', 'example.test'],
        ['X-Dup', '1'],
        ['x-dup', '2'],
        ['Accept', '*/*'],
      ]),
      END,
    ]);
  });

  test('POST with Content-Length', () => {
    const wire = 'POST /submit HTTP/1.0\r\nContent-Length: 11\r\n\r\nhello world';
    assert.deepEqual(decodeEveryWay('request', wire), [
      requestHead('POST', '/submit', [['Content-Length', '11']], '1.0'),
      body('hello world'),
      END,
    ]);
  });

  test('chunked with extensions and trailers; chunked wins over Content-Length', () => {
    const wire =
      'PUT /up HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n' +
      '5;name=value\r\nhello\r\n0006 ; x\r\n world\r\n0\r\nX-Checksum: abc\r\nX-More: 1\r\n\r\n';
    assert.deepEqual(decodeEveryWay('request', wire), [
      requestHead('PUT', '/up', [
        ['Transfer-Encoding', 'gzip, chunked'],
        ['Content-Length', '3'],
      ]),
      body('hello world'),
      { type: 'trailers', headers: [['X-Checksum', 'abc'], ['X-More', '1']] },
      END,
    ]);
  });

  test('pipelined requests, leading empty lines, bare LF and obs-fold', () => {
    const wire =
      '\r\nGET /1 HTTP/1.1\r\nHost: h\r\n\r\n' +
      'POST /2 HTTP/1.1\nContent-Length: 2\nX-Long: a\n  b\n\tc\n\nok' +
      'DELETE /3 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n';
    assert.deepEqual(decodeEveryWay('request', wire), [
      requestHead('GET', '/1', [['Host', 'h']]),
      END,
      requestHead('POST', '/2', [['Content-Length', '2'], ['X-Long', 'a b c']]),
      body('ok'),
      END,
      requestHead('DELETE', '/3', [['Transfer-Encoding', 'chunked']]),
      END,
    ]);
  });

  test('after an Upgrade request it holds the bytes until told: switchProtocols returns them', () => {
    const wire = 'GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello';
    assert.deepEqual(decodeEveryWay('request', wire, { then: 'switch' }), [
      requestHead('GET', '/ws', [['Upgrade', 'websocket'], ['Connection', 'Upgrade']]),
      END,
      { type: 'held', rest: '\x81\x05hello' },
    ]);
  });

  test('after CONNECT declined, resume decodes the held requests', () => {
    const wire = 'CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\nGET / HTTP/1.1\r\n\r\n';
    assert.deepEqual(decodeEveryWay('request', wire, { then: 'resume', end: true }), [
      requestHead('CONNECT', 'a.test:443', [['Host', 'a.test:443']]),
      END,
      requestHead('GET', '/', []),
      END,
    ]);
  });

  test('end() between messages is clean; only line breaks left are ignored', () => {
    assert.deepEqual(decodeEveryWay('request', 'GET / HTTP/1.1\r\n\r\n\r\n', { end: true }), [requestHead('GET', '/', []), END]);
  });
});

describe('Http1Decoder responses', { timeout: 10_000 }, () => {
  test('HEAD, 204 and 304 have no body whatever their headers say', () => {
    const wire =
      'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n' +
      'HTTP/1.1 204 No Content\r\nContent-Length: 50\r\n\r\n' +
      'HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n' +
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi';
    assert.deepEqual(decodeEveryWay('response', wire, { expect: ['HEAD', 'GET', 'GET', 'GET'] }), [
      responseHead(200, 'OK', [['Content-Length', '50']]),
      END,
      responseHead(204, 'No Content', [['Content-Length', '50']]),
      END,
      responseHead(304, 'Not Modified', [['Transfer-Encoding', 'chunked']]),
      END,
      responseHead(200, 'OK', [['Content-Length', '2']]),
      body('hi'),
      END,
    ]);
  });

  test('100-continue and 103 are informational, then the real response', () => {
    const wire =
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n' +
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n';
    assert.deepEqual(decodeEveryWay('response', wire, { expect: ['POST'] }), [
      responseHead(100, 'Continue', [], true),
      responseHead(103, 'Early Hints', [['Link', '</a.css>']], true),
      responseHead(200, 'OK', [['Transfer-Encoding', 'chunked']]),
      body('abc'),
      { type: 'trailers', headers: [['X-T', '1']] },
      END,
    ]);
  });

  test('without a length the body reads until close; end() completes it', () => {
    const wire = 'HTTP/1.0 200\r\nServer: old\r\n\r\nall of this\r\nHTTP/1.1 is body too';
    assert.deepEqual(decodeEveryWay('response', wire, { end: true }), [
      responseHead(200, '', [['Server', 'old']], false, '1.0'),
      body('all of this\r\nHTTP/1.1 is body too'),
      END,
    ]);
  });

  test('a non-chunked Transfer-Encoding reads until close', () => {
    const wire = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 1\r\n\r\nabc';
    assert.deepEqual(decodeEveryWay('response', wire, { end: true }), [
      responseHead(200, 'OK', [['Transfer-Encoding', 'gzip'], ['Content-Length', '1']]),
      body('abc'),
      END,
    ]);
  });

  test('101 ends HTTP: the bytes after the head are handed back', () => {
    const wire = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nContent-Length: 4\r\n\r\n\x81\x02hi\x88\x00';
    assert.deepEqual(decodeEveryWay('response', wire, { expect: ['GET'] }), [
      responseHead(101, 'Switching Protocols', [['Upgrade', 'websocket'], ['Content-Length', '4']]),
      END,
      { type: 'switched', rest: '\x81\x02hi\x88\x00' },
    ]);
  });

  test('2xx to CONNECT switches; 407 to CONNECT does not', () => {
    const wire = 'HTTP/1.1 407 Auth\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01';
    assert.deepEqual(decodeEveryWay('response', wire, { expect: ['CONNECT', 'CONNECT'] }), [
      responseHead(407, 'Auth', [['Content-Length', '0']]),
      END,
      responseHead(200, 'Connection established', []),
      END,
      { type: 'switched', rest: '\x16\x03\x01' },
    ]);
  });

  test('repeated equal Content-Length values are accepted', () => {
    const wire = 'HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\ncontent-length: 3\r\n\r\nabc';
    assert.deepEqual(decodeEveryWay('response', wire)[1], body('abc'));
  });
});

describe('Http1Decoder errors', { timeout: 10_000 }, () => {
  const cases: Array<[name: string, kind: Http1Kind, wire: string, code: string, replay?: Replay]> = [
    ['no version', 'request', 'GET /\r\n\r\n', 'bad-start-line'],
    ['two spaces', 'request', 'GET  / HTTP/1.1\r\n\r\n', 'bad-start-line'],
    ['bad method', 'request', 'G(T / HTTP/1.1\r\n\r\n', 'bad-start-line'],
    ['HTTP/2 text', 'request', 'GET / HTTP/2.0\r\n\r\n', 'bad-version'],
    ['short status', 'response', 'HTTP/1.1 20 OK\r\n\r\n', 'bad-start-line'],
    ['space before colon', 'request', 'GET / HTTP/1.1\r\nHost : x\r\n\r\n', 'bad-header'],
    ['no colon', 'request', 'GET / HTTP/1.1\r\nHost\r\n\r\n', 'bad-header'],
    ['NUL in value', 'request', 'GET / HTTP/1.1\r\nA: b\x00c\r\n\r\n', 'bad-header'],
    ['bare CR', 'request', 'GET / HTTP/1.1\r\nA: b\rc\r\n\r\n', 'bad-header'],
    ['fold first', 'request', 'GET / HTTP/1.1\r\n A: b\r\n\r\n', 'bad-header'],
    ['bad chunk size', 'response', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 'bad-chunk-size'],
    ['huge chunk size', 'response', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n', 'bad-chunk-size'],
    ['no CRLF after chunk', 'response', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n', 'bad-chunk'],
    ['CL not a number', 'request', 'POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n', 'bad-content-length'],
    ['CL conflict', 'request', 'POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 'bad-content-length'],
    ['CL negative', 'response', 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', 'bad-content-length'],
    ['request TE not chunked', 'request', 'POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n', 'bad-transfer-encoding'],
    ['end mid-body', 'response', 'HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc', 'truncated', { end: true }],
    ['end mid-head', 'request', 'GET / HTTP/1.1\r\nHost: a', 'truncated', { end: true }],
    ['end mid-chunk', 'response', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab', 'truncated', { end: true }],
  ];
  for (const [name, kind, wire, code, replay] of cases) {
    test(`${name} → ${code}`, () => {
      const seen = decodeEveryWay(kind, wire, replay);
      assert.deepEqual(seen[seen.length - 1], error(code));
    });
  }

  test('events before the error in the same push are not lost', () => {
    const wire = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 2x\r\n\r\n';
    assert.deepEqual(decodeEveryWay('response', wire), [
      responseHead(200, 'OK', [['Content-Length', '2']]),
      body('ok'),
      END,
      error('bad-start-line'),
    ]);
  });

  test('headers over the limit, whether or not the head ever ends', () => {
    const big = `GET / HTTP/1.1\r\nX: ${'a'.repeat(300)}\r\n`;
    assert.deepEqual(decodeEveryWay('request', big, { maxHeaderBytes: 256 }), [error('headers-too-large')]);
    assert.deepEqual(decodeEveryWay('request', `${big}\r\n`, { maxHeaderBytes: 256 }), [error('headers-too-large')]);
    const trailers = `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: ${'b'.repeat(300)}\r\n\r\n`;
    assert.deepEqual(decodeEveryWay('response', trailers, { maxHeaderBytes: 256 }).pop(), error('headers-too-large'));
  });

  test('a failed decoder keeps failing, and data after end() is an error', () => {
    const failed = new Http1Decoder('request');
    assert.throws(() => failed.push(Buffer.from('nope\r\n\r\n')), { code: 'bad-start-line' });
    assert.throws(() => failed.push(Buffer.from('GET / HTTP/1.1\r\n\r\n')), { code: 'bad-start-line' });
    const ended = new Http1Decoder('response');
    assert.deepEqual(ended.end(), []);
    assert.throws(() => ended.push(Buffer.from('x')), { code: 'data-after-end' });
  });

  test('bounded fuzz: only Http1DecodeError ever escapes', () => {
    const seeds = [
      'GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc',
      'PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n',
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n',
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nrest',
      'HTTP/1.0 200 OK\r\n\r\nuntil close',
    ].map((s) => Buffer.from(s, 'latin1'));
    const random = seededRandom(7);
    const alphabet = Buffer.from('\r\n :;0123456789abcdefABCDEF\t\x00HTTP/1.GET');
    const started = Date.now();
    const outcomes = new Set<string>();
    for (let i = 0; i < 3000 && Date.now() - started < 2500; i++) {
      const bytes = Buffer.from(seeds[i % seeds.length]);
      for (let f = Math.floor(random() * 4); f >= 0; f--) {
        const at = Math.floor(random() * bytes.length);
        bytes[at] = random() < 0.7 ? alphabet[Math.floor(random() * alphabet.length)] : Math.floor(random() * 256);
      }
      const kind: Http1Kind = bytes[0] === 0x48 ? 'response' : 'request';
      const decoder = new Http1Decoder(kind, { maxHeaderBytes: 128 });
      decoder.expect(random() < 0.5 ? 'GET' : 'HEAD');
      try {
        for (const chunk of randomChunks(bytes, random, 8)) decoder.push(chunk);
        if (kind === 'request' && decoder.awaitingSwitch) decoder.resume();
        decoder.end();
        outcomes.add('ok');
      } catch (err) {
        assert.ok(err instanceof Http1DecodeError, `unexpected ${(err as Error).stack}`);
        outcomes.add(err.code);
      }
    }
    assert.ok(outcomes.has('ok') && outcomes.size > 4, `outcomes: ${[...outcomes].join(', ')}`);
  });
});
