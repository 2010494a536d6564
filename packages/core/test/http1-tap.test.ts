import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CaptureBus } from '../src/capture/bus.js';
import { IdAllocator } from '../src/capture/ids.js';
import type { CaptureEvent, Failure, NewCaptureEvent, Side } from '../src/capture/events.js';
import { Http1Tap, requestUrl } from '../src/taps/http1-tap.js';
import type { Tap, TapContext, UpgradeInfo } from '../src/taps/tap.js';
import { randomChunks, seededRandom } from './helpers/split.js';

type Step = [Side, string] | ['end', Side] | ['close', Failure | null];

function setup(overrides: Partial<TapContext> = {}) {
  const bus = new CaptureBus();
  const events: CaptureEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const ctx: TapContext = {
    connId: 7,
    bus,
    ids: new IdAllocator(0, 100),
    scheme: 'https',
    host: 'site.test',
    port: 443,
    bodyCaptureLimit: 1024,
    ...overrides,
  };
  return { tap: new Http1Tap(ctx), events, ctx };
}

/** Plays a conversation into the tap; `split` cuts each data step into random chunks. */
function play(tap: Tap, steps: Step[], split?: () => number): void {
  for (const step of steps) {
    if (step[0] === 'end') tap.onEnd(step[1]);
    else if (step[0] === 'close') tap.onClose(step[1]);
    else {
      const bytes = Buffer.from(step[1], 'latin1');
      for (const chunk of split ? randomChunks(bytes, split, 7) : [bytes]) tap.onData(step[0], chunk);
    }
  }
}

/** One short line per event, so whole sequences compare at a glance. */
function summary(events: CaptureEvent[]): string[] {
  const out: string[] = [];
  for (const e of events) {
    switch (e.kind) {
      case 'http.request':
        out.push(`request ${e.exchangeId} ${e.method} ${e.url} ${e.protocol}`);
        break;
      case 'http.response':
        out.push(`response ${e.exchangeId} ${e.status} ${e.protocol}`);
        break;
      case 'http.body': {
        const text = Buffer.from(e.chunk).toString('latin1');
        const prev = out[out.length - 1];
        const head = `body ${e.exchangeId} ${e.side} `;
        if (prev?.startsWith(head)) out[out.length - 1] = prev + text;
        else out.push(head + text);
        break;
      }
      case 'http.trailers':
        out.push(`trailers ${e.exchangeId} ${e.side} ${e.headers.map(([n, v]) => `${n}=${v}`).join(',')}`);
        break;
      case 'http.completed':
        out.push(`completed ${e.exchangeId} ${e.requestBodySize}/${e.responseBodySize}`);
        break;
      case 'http.failed':
        out.push(`failed ${e.exchangeId} ${e.error.reason}${e.error.code ? ` ${e.error.code}` : ''}`);
        break;
      case 'decode.failed':
        out.push(`decode.failed ${e.decoder} ${e.side} ${e.code}`);
        break;
      default:
        out.push(e.kind);
    }
  }
  return out;
}

const keepAlive: Step[] = [
  ['client', 'GET /a?x=1 HTTP/1.1\r\nHost: site.test\r\n\r\n'],
  ['server', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello'],
  ['client', 'POST /b HTTP/1.1\r\nhost: site.test:8443\r\nTransfer-Encoding: chunked\r\n\r\n3;x\r\nabc\r\n0\r\nT: 1\r\n\r\n'],
  ['server', 'HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n'],
  ['end', 'client'],
  ['end', 'server'],
  ['close', null],
];

describe('Http1Tap', { timeout: 10_000 }, () => {
  test('a keep-alive connection with two exchanges, however the bytes are cut', () => {
    const { tap, events } = setup();
    play(tap, keepAlive);
    const expected = [
      'request 101 GET https://site.test/a?x=1 HTTP/1.1',
      'response 101 200 HTTP/1.1',
      'body 101 server hello',
      'completed 101 0/5',
      'request 102 POST https://site.test:8443/b HTTP/1.1',
      'body 102 client abc',
      'trailers 102 client T=1',
      'response 102 201 HTTP/1.1',
      'body 102 server ok',
      'completed 102 3/2',
    ];
    assert.deepEqual(summary(events), expected);
    const request = events.find((e) => e.kind === 'http.request' && e.exchangeId === 102);
    assert.ok(request?.kind === 'http.request');
    assert.deepEqual(
      { connId: request.connId, streamId: request.streamId, host: request.host, port: request.port, scheme: request.scheme, target: request.target },
      { connId: 7, streamId: null, host: 'site.test', port: 8443, scheme: 'https', target: '/b' },
    );
    for (const done of events) {
      if (done.kind !== 'http.completed') continue;
      const { requestEnd, responseStart, dnsMs, connectMs, tlsMs } = done.timings;
      assert.deepEqual([dnsMs, connectMs, tlsMs], [null, null, null]);
      assert.ok(typeof requestEnd === 'number' && typeof responseStart === 'number' && requestEnd <= responseStart);
      const response = events.find((e) => e.kind === 'http.response' && e.exchangeId === done.exchangeId);
      assert.equal(response?.time, responseStart, 'responseStart is when the head was seen');
    }
    const random = seededRandom(3);
    for (let round = 0; round < 30; round++) {
      const again = setup();
      play(again.tap, keepAlive, random);
      assert.deepEqual(summary(again.events), expected, `round ${round}`);
    }
  });

  test('pipelined requests pair with their responses first in, first out (HEAD has no body)', () => {
    const { tap, events } = setup({ scheme: 'http', host: '10.0.0.1', port: 8080 });
    play(tap, [
      ['client', 'GET /1 HTTP/1.1\r\n\r\nHEAD /2 HTTP/1.1\r\n\r\nGET http://other.test:81/3 HTTP/1.0\r\n\r\n'],
      ['server', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n'],
      ['server', 'HTTP/1.0 404 Not Found\r\nContent-Length: 3\r\n\r\nnot'],
    ]);
    assert.deepEqual(summary(events), [
      'request 101 GET http://10.0.0.1:8080/1 HTTP/1.1',
      'request 102 HEAD http://10.0.0.1:8080/2 HTTP/1.1',
      'request 103 GET http://other.test:81/3 HTTP/1.0',
      'response 101 200 HTTP/1.1',
      'body 101 server 1',
      'completed 101 0/1',
      'response 102 200 HTTP/1.1',
      'completed 102 0/0',
      'response 103 404 HTTP/1.0',
      'body 103 server not',
      'completed 103 0/3',
    ]);
  });

  test('a body over the capture limit is counted in full but handed over only up to the limit, uncopied', () => {
    const { tap, events } = setup({ bodyCaptureLimit: 10 });
    const parts = [Buffer.from('01234567'), Buffer.from('89abcdef'), Buffer.from('ghijklmno')];
    tap.onData('client', Buffer.from('GET / HTTP/1.1\r\nHost: site.test\r\n\r\n'));
    tap.onData('server', Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 25\r\n\r\n'));
    for (const part of parts) tap.onData('server', part);
    const bodies = events.flatMap((e) => (e.kind === 'http.body' ? [e.chunk] : []));
    assert.deepEqual(bodies.map((b) => Buffer.from(b).toString()), ['01234567', '89']);
    assert.equal(bodies[0].buffer, parts[0].buffer, 'a view of the pushed bytes, not a copy');
    assert.equal(bodies[1].buffer, parts[1].buffer);
    assert.deepEqual(summary(events).pop(), 'completed 101 0/25');
  });

  test('no body events when nobody listens, but sizes are still counted', () => {
    class UnwatchedBus extends CaptureBus {
      readonly emitted: NewCaptureEvent[] = [];
      override get hasListeners(): boolean {
        return false;
      }
      override emit(event: NewCaptureEvent): void {
        this.emitted.push(event);
      }
    }
    const bus = new UnwatchedBus();
    const { tap } = setup({ bus });
    play(tap, keepAlive);
    assert.deepEqual(
      bus.emitted.map((e) => e.kind),
      ['http.request', 'http.response', 'http.completed', 'http.request', 'http.trailers', 'http.response', 'http.completed'],
    );
    const sizes = bus.emitted.flatMap((e) => (e.kind === 'http.completed' ? [[e.requestBodySize, e.responseBodySize]] : []));
    assert.deepEqual(sizes, [[0, 5], [3, 2]]);
  });

  test('a truncated response then close fails the exchange as aborted by the server', () => {
    const { tap, events } = setup();
    play(tap, [
      ['client', 'GET / HTTP/1.1\r\nHost: site.test\r\n\r\n'],
      ['server', 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789'],
      ['end', 'server'],
      ['close', null],
    ]);
    assert.deepEqual(summary(events).slice(-1), ['failed 101 aborted truncated']);
    const failed = events.at(-1);
    assert.ok(failed?.kind === 'http.failed');
    assert.match(failed.error.message, /server closed .* middle of the response/);
    assert.equal(failed.responseBodySize, 10);
    assert.equal(failed.timings.responseStart, events.find((e) => e.kind === 'http.response')?.time);
  });

  test('close reasons: the error when there is one, closed before any response, aborted mid-request', () => {
    const reset: Failure = { reason: 'reset', message: 'read ECONNRESET', code: 'ECONNRESET' };
    const a = setup();
    play(a.tap, [['client', 'GET / HTTP/1.1\r\n\r\n'], ['close', reset]]);
    const failedA = a.events.at(-1);
    assert.ok(failedA?.kind === 'http.failed');
    assert.deepEqual(failedA.error, reset);

    const b = setup();
    play(b.tap, [['client', 'GET / HTTP/1.1\r\n\r\n'], ['end', 'server'], ['close', null]]);
    const failedB = b.events.at(-1);
    assert.ok(failedB?.kind === 'http.failed');
    assert.equal(failedB.error.reason, 'closed');
    assert.match(failedB.error.message, /server closed the connection before the response/);

    const c = setup();
    play(c.tap, [['client', 'POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc'], ['end', 'client'], ['close', null]]);
    assert.deepEqual(summary(c.events).slice(-1), ['failed 101 aborted truncated']);
    const failedC = c.events.at(-1);
    assert.ok(failedC?.kind === 'http.failed');
    assert.match(failedC.error.message, /client closed .* middle of the request/);
  });

  test('a response read until close completes when the server half-closes', () => {
    const { tap, events } = setup();
    play(tap, [
      ['client', 'GET / HTTP/1.1\r\n\r\n'],
      ['server', 'HTTP/1.0 200 OK\r\n\r\nstream of'],
      ['server', ' bytes'],
      ['end', 'server'],
      ['close', null],
    ]);
    assert.deepEqual(summary(events).slice(-2), ['body 101 server stream of bytes', 'completed 101 0/15']);
  });

  test('100-continue is not reported as the response', () => {
    const { tap, events } = setup();
    play(tap, [
      ['client', 'PUT /f HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n'],
      ['server', 'HTTP/1.1 100 Continue\r\n\r\n'],
      ['client', 'hi'],
      ['server', 'HTTP/1.1 204 No Content\r\n\r\n'],
    ]);
    assert.deepEqual(summary(events), [
      'request 101 PUT https://site.test/f HTTP/1.1',
      'body 101 client hi',
      'response 101 204 HTTP/1.1',
      'completed 101 2/0',
    ]);
  });

  test('a 101 completes the exchange, then hands both sides over to the next tap', () => {
    const got: string[] = [];
    let info: UpgradeInfo | null = null;
    let eventsAtUpgrade: string[] = [];
    const next: Tap = {
      onData: (from, chunk) => got.push(`data ${from} ${chunk.toString()}`),
      onEnd: (from) => got.push(`end ${from}`),
      onClose: (error) => got.push(`close ${error?.reason ?? null}`),
    };
    const { tap, events } = setup({
      onUpgrade: (upgrade) => {
        info = upgrade;
        eventsAtUpgrade = summary(events);
        return next;
      },
    });
    play(tap, [
      ['client', 'GET /chat HTTP/1.1\r\nHost: site.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nearly'],
      ['server', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nsrv1'],
      ['client', 'c2'],
      ['end', 'client'],
      ['server', 's2'],
      ['close', { reason: 'reset', message: 'gone' }],
    ]);
    assert.deepEqual(eventsAtUpgrade, ['request 101 GET https://site.test/chat HTTP/1.1', 'response 101 101 HTTP/1.1', 'completed 101 0/0']);
    assert.deepEqual(info, {
      exchangeId: 101,
      requestHeaders: [['Host', 'site.test'], ['Upgrade', 'websocket'], ['Connection', 'Upgrade']],
      responseHeaders: [['Upgrade', 'websocket']],
    });
    assert.deepEqual(got, ['data client early', 'data server srv1', 'data client c2', 'end client', 'data server s2', 'close reset']);
    assert.equal(events.length, 3, 'nothing more from the HTTP/1 tap after the switch');
  });

  test('an upgrade the server declines resumes decoding the requests held behind it', () => {
    const { tap, events } = setup();
    play(tap, [
      ['client', 'GET / HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\nGET /next HTTP/1.1\r\n\r\n'],
      ['server', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb'],
    ]);
    assert.deepEqual(summary(events), [
      'request 101 GET https://site.test/ HTTP/1.1',
      'response 101 200 HTTP/1.1',
      'request 102 GET https://site.test/next HTTP/1.1',
      'body 101 server a',
      'completed 101 0/1',
      'response 102 200 HTTP/1.1',
      'body 102 server b',
      'completed 102 0/1',
    ]);
  });

  test('a CONNECT accepted with no next tap goes opaque', () => {
    const { tap, events } = setup({ scheme: 'http' });
    play(tap, [
      ['client', 'CONNECT inner.test:443 HTTP/1.1\r\nHost: inner.test:443\r\n\r\n'],
      ['server', 'HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03'],
      ['client', 'GET / HTTP/1.1\r\n\r\n'],
      ['close', null],
    ]);
    assert.deepEqual(summary(events), [
      'request 101 CONNECT http://inner.test:443 HTTP/1.1',
      'response 101 200 HTTP/1.1',
      'completed 101 0/0',
    ]);
  });

  test('a decoder error reports once, fails the open exchanges and goes opaque', () => {
    const { tap, events } = setup();
    play(tap, [
      ['client', 'GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n'],
      ['server', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n'],
      ['client', 'GET /3 HTTP/1.1\r\n\r\n'],
      ['server', 'HTTP/1.1 200 OK\r\n\r\n'],
      ['end', 'server'],
      ['close', null],
    ]);
    assert.deepEqual(summary(events), [
      'request 101 GET https://site.test/1 HTTP/1.1',
      'request 102 GET https://site.test/2 HTTP/1.1',
      'response 101 200 HTTP/1.1',
      'completed 101 0/0',
      'response 102 200 HTTP/1.1', // the head parsed; its framing is what is broken
      'decode.failed http1 server bad-content-length',
      'failed 102 decode bad-content-length',
    ]);
    const decodeFailed = events.find((e) => e.kind === 'decode.failed');
    assert.ok(decodeFailed?.kind === 'decode.failed');
    assert.equal(decodeFailed.connId, 7);
    assert.match(decodeFailed.message, /Content-Length/);
  });

  test('garbage from the client and a response nobody asked for are decode failures', () => {
    const a = setup();
    play(a.tap, [['client', 'HELLO\r\n\r\n']]);
    assert.deepEqual(summary(a.events), ['decode.failed http1 client bad-start-line']);
    const b = setup();
    play(b.tap, [['server', 'HTTP/1.1 408 Request Timeout\r\n\r\n']]);
    assert.deepEqual(summary(b.events), ['decode.failed http1 server unsolicited-response']);
  });
});

describe('requestUrl', { timeout: 10_000 }, () => {
  const tunnel = { scheme: 'https' as const, host: 'site.test', port: 443 };
  test('origin-form uses Host, else the tunnel; default ports are omitted', () => {
    assert.deepEqual(requestUrl('GET', '/p?q', [['Host', 'a.test']], tunnel), { url: 'https://a.test/p?q', scheme: 'https', host: 'a.test', port: 443 });
    assert.deepEqual(requestUrl('GET', '/p', [['HOST', 'a.test:443']], tunnel).url, 'https://a.test/p');
    assert.deepEqual(requestUrl('GET', '/p', [], tunnel).url, 'https://site.test/p');
    assert.deepEqual(requestUrl('GET', '/p', [], { scheme: 'http', host: '::1', port: 8080 }), {
      url: 'http://[::1]:8080/p',
      scheme: 'http',
      host: '::1',
      port: 8080,
    });
    assert.deepEqual(requestUrl('GET', '/', [['Host', '[::1]:9']], tunnel), { url: 'https://[::1]:9/', scheme: 'https', host: '::1', port: 9 });
  });

  test('absolute-form is used as is; asterisk-form and CONNECT give the origin', () => {
    assert.deepEqual(requestUrl('GET', 'http://b.test:81/x', [['Host', 'ignored']], tunnel), {
      url: 'http://b.test:81/x',
      scheme: 'http',
      host: 'b.test',
      port: 81,
    });
    assert.equal(requestUrl('OPTIONS', '*', [['Host', 'c.test']], tunnel).url, 'https://c.test');
    assert.deepEqual(requestUrl('CONNECT', 'd.test:8443', [], tunnel), { url: 'https://d.test:8443', scheme: 'https', host: 'd.test', port: 8443 });
  });
});
