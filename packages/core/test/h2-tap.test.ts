import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CaptureBus } from '../src/capture/bus.js';
import { IdAllocator } from '../src/capture/ids.js';
import type { CaptureEvent, Failure, Side } from '../src/capture/events.js';
import { H2Tap, type H2TapContext, type StreamUpgradeInfo } from '../src/taps/h2-tap.js';
import type { Tap } from '../src/taps/tap.js';
import {
  PREFACE,
  continuationFrame,
  dataFrame,
  frame,
  goawayFrame,
  headersFrame,
  hpackIndexed,
  hpackLiteral,
  hpackSizeUpdate,
  pingFrame,
  priorityFrame,
  pushPromiseFrame,
  rstStreamFrame,
  settingsFrame,
  windowUpdateFrame,
} from './helpers/h2-encode.js';
import { everySplit, randomChunks, seededRandom } from './helpers/split.js';

const opts = { timeout: 10_000 };

type Step = [Side, Buffer] | ['end', Side] | ['close', Failure | null];

function setup(overrides: Partial<H2TapContext> = {}) {
  const bus = new CaptureBus();
  const events: CaptureEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const ctx: H2TapContext = {
    connId: 9,
    bus,
    ids: new IdAllocator(0, 100),
    scheme: 'https',
    host: 'site.test',
    port: 443,
    bodyCaptureLimit: 1024,
    protocol: 'h2',
    ...overrides,
  };
  return { tap: new H2Tap(ctx), events, ctx };
}

function play(tap: Tap, steps: Step[], cut?: (bytes: Buffer, index: number) => Buffer[]): void {
  steps.forEach((step, index) => {
    if (step[0] === 'end') tap.onEnd(step[1]);
    else if (step[0] === 'close') tap.onClose(step[1]);
    else for (const chunk of cut ? cut(step[1], index) : [step[1]]) tap.onData(step[0], chunk);
  });
}

/** Events without seq/time, bodies as text: comparable across cuttings. */
function normalize(events: CaptureEvent[]): unknown[] {
  return events.map((e) => {
    const { seq: _seq, time: _time, ...rest } = e as CaptureEvent & Record<string, unknown>;
    if (e.kind === 'http.body') return { ...rest, chunk: Buffer.from(e.chunk).toString('latin1') };
    if (e.kind === 'http.completed' || e.kind === 'http.failed') return { ...rest, timings: null };
    return rest;
  });
}

/** One short line per exchange event, so sequences compare at a glance. */
function summary(events: CaptureEvent[]): string[] {
  const out: string[] = [];
  for (const e of events) {
    switch (e.kind) {
      case 'http.request':
        out.push(`request ${e.exchangeId} s${e.streamId} ${e.method} ${e.url} ${e.protocol}`);
        break;
      case 'http.response':
        out.push(`response ${e.exchangeId} ${e.status}`);
        break;
      case 'http.body':
        out.push(`body ${e.exchangeId} ${e.side} ${Buffer.from(e.chunk).toString('latin1')}`);
        break;
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
      case 'h2.push':
        out.push(`push ${e.exchangeId} promised s${e.promisedStreamId} on s${e.streamId} parent ${e.parentExchangeId}`);
        break;
      default:
        break;
    }
  }
  return out;
}

const frameLines = (events: CaptureEvent[]) =>
  events.flatMap((e) => (e.kind === 'h2.frame' ? [`${e.side} ${e.typeName} s${e.streamId} ${e.flagNames.join('|')}`] : []));

// ---- fixtures ---------------------------------------------------------------------------------

const get = (path: string, authority = 'site.test') =>
  Buffer.concat([hpackIndexed(2), hpackIndexed(7), hpackLiteral('without', 4, path), hpackLiteral('without', 1, authority)]);
const post = (path: string) =>
  Buffer.concat([hpackIndexed(3), hpackIndexed(7), hpackLiteral('without', 4, path), hpackLiteral('incremental', 1, 'site.test', true)]);
const status = (code: number, ...extra: Array<[string, string]>) =>
  Buffer.concat([
    hpackLiteral('without', 8, String(code)),
    ...extra.map(([n, v]) => hpackLiteral('without', n, v)),
  ]);

const clientStart = Buffer.concat([PREFACE, settingsFrame([[3, 100], [4, 65_535]])]);
const serverStart = Buffer.concat([settingsFrame([[3, 128]]), settingsFrame([], true)]);

const conversation: Step[] = [
  ['client', clientStart],
  ['server', serverStart],
  ['client', Buffer.concat([settingsFrame([], true), headersFrame(1, get('/a'), { endStream: true })])],
  [
    'client',
    Buffer.concat([
      headersFrame(3, post('/upload').subarray(0, 4), { endHeaders: false, priority: { dependency: 0, weight: 32 } }),
      continuationFrame(3, post('/upload').subarray(4)),
      dataFrame(3, 'part1', { padLength: 6 }),
      dataFrame(3, '-part2'),
      headersFrame(3, hpackLiteral('without', 'x-checksum', 'abc'), { endStream: true }),
    ]),
  ],
  ['server', Buffer.concat([headersFrame(1, status(200, ['content-type', 'text/plain'])), dataFrame(1, 'hello', { endStream: true })])],
  [
    'server',
    Buffer.concat([
      headersFrame(3, status(100)),
      headersFrame(3, status(201)),
      dataFrame(3, 'ok'),
      headersFrame(3, hpackLiteral('without', 'grpc-status', '0'), { endStream: true }),
      windowUpdateFrame(0, 1000),
      pingFrame('01234567'),
    ]),
  ],
  ['client', Buffer.concat([pingFrame('01234567', true), priorityFrame(5, { dependency: 1, weight: 8 }), frame(0xfa, 0, 0, 'grease')])],
  ['end', 'client'],
  ['end', 'server'],
  ['close', null],
];

describe('H2Tap: streams become exchanges', opts, () => {
  test('requests, bodies, padding, CONTINUATION, 1xx, trailers, control frames', opts, () => {
    const { tap, events } = setup();
    play(tap, conversation);
    assert.deepEqual(summary(events), [
      'request 101 s1 GET https://site.test/a h2',
      'request 102 s3 POST https://site.test/upload h2',
      'body 102 client part1',
      'body 102 client -part2',
      'trailers 102 client x-checksum=abc',
      'response 101 200',
      'body 101 server hello',
      'completed 101 0/5',
      'response 102 201',
      'body 102 server ok',
      'trailers 102 server grpc-status=0',
      'completed 102 11/2',
    ]);
    assert.deepEqual(frameLines(events), [
      'client SETTINGS s0 ',
      'server SETTINGS s0 ',
      'server SETTINGS s0 ACK',
      'client SETTINGS s0 ACK',
      'client HEADERS s1 END_STREAM|END_HEADERS',
      'client HEADERS s3 PRIORITY',
      'client CONTINUATION s3 END_HEADERS',
      'client DATA s3 PADDED',
      'client DATA s3 ',
      'client HEADERS s3 END_STREAM|END_HEADERS',
      'server HEADERS s1 END_HEADERS',
      'server DATA s1 END_STREAM',
      'server HEADERS s3 END_HEADERS',
      'server HEADERS s3 END_HEADERS',
      'server DATA s3 ',
      'server HEADERS s3 END_STREAM|END_HEADERS',
      'server WINDOW_UPDATE s0 ',
      'server PING s0 ',
      'client PING s0 ACK',
      'client PRIORITY s5 ',
      'client UNKNOWN_0xfa s0 ',
    ]);
    const request = events.find((e) => e.kind === 'http.request' && e.streamId === 3);
    assert.ok(request?.kind === 'http.request');
    assert.deepEqual(request.headers, [[':method', 'POST'], [':scheme', 'https'], [':path', '/upload'], [':authority', 'site.test']]);
    assert.deepEqual([request.host, request.port, request.target, request.connId], ['site.test', 443, '/upload', 9]);
    const response = events.find((e) => e.kind === 'http.response' && e.exchangeId === 101);
    assert.ok(response?.kind === 'http.response');
    assert.deepEqual(response.headers, [[':status', '200'], ['content-type', 'text/plain']]);
    assert.equal(response.protocol, 'h2');

    const h2 = events.filter((e) => e.kind === 'h2.frame');
    const settings = h2.find((e) => e.typeName === 'SETTINGS' && e.side === 'client');
    assert.deepEqual(settings?.details?.settings, [
      { id: 3, name: 'MAX_CONCURRENT_STREAMS', value: 100 },
      { id: 4, name: 'INITIAL_WINDOW_SIZE', value: 65_535 },
    ]);
    const headers3 = h2.find((e) => e.typeName === 'HEADERS' && e.streamId === 3 && e.side === 'client')!;
    assert.deepEqual(headers3.details?.priority, { exclusive: false, streamDependency: 0, weight: 32 });
    assert.equal(headers3.details?.fragmentLength, 4);
    const block = headers3.details?.headerBlock;
    assert.equal(block?.frames, 2);
    assert.deepEqual(
      block?.fields.map((f) => [f.name, f.representation, f.index ?? null, f.huffman ?? null]),
      [
        [':method', 'indexed', 3, null],
        [':scheme', 'indexed', 7, null],
        [':path', 'literal-without-indexing', 4, false],
        [':authority', 'literal-incremental', 1, true],
      ],
    );
    assert.equal(block?.dynamicTableSize, ':authority'.length + 'site.test'.length + 32);
    const continuation = h2.find((e) => e.typeName === 'CONTINUATION')!;
    assert.deepEqual(continuation.details, { fragmentLength: post('/upload').length - 4 });
    const padded = h2.find((e) => e.typeName === 'DATA' && e.padLength !== null)!;
    assert.deepEqual([padded.length, padded.padLength, padded.details], [1 + 5 + 6, 6, null]);
    assert.deepEqual(h2.find((e) => e.typeName === 'WINDOW_UPDATE')?.details, { increment: 1000 });
    assert.deepEqual(h2.find((e) => e.typeName === 'PING')?.details, { pingData: Buffer.from('01234567').toString('hex') });
    assert.deepEqual(h2.find((e) => e.typeName === 'PRIORITY')?.details, { priority: { exclusive: false, streamDependency: 1, weight: 8 } });
    assert.deepEqual(h2.find((e) => e.typeName === 'UNKNOWN_0xfa')?.details, { payloadHex: Buffer.from('grease').toString('hex') });
  });

  test('the same events however the bytes are cut: every split point of every step, random chunks', opts, () => {
    const whole = setup();
    play(whole.tap, conversation);
    const expected = normalize(whole.events);
    conversation.forEach((step, index) => {
      if (step[0] === 'end' || step[0] === 'close') return;
      for (const [a, b] of everySplit(step[1])) {
        const run = setup();
        play(run.tap, conversation, (bytes, i) => (i === index ? [a, b] : [bytes]));
        assert.deepEqual(normalize(run.events), expected, `step ${index} split at ${a.length}`);
      }
    });
    const random = seededRandom(7);
    for (let round = 0; round < 100; round++) {
      const run = setup();
      play(run.tap, conversation, (bytes) => randomChunks(bytes, random, 1 + (round % 20)));
      assert.deepEqual(normalize(run.events), expected, `random round ${round}`);
    }
  });

  test('bodies are captured up to the limit and counted in full', opts, () => {
    const { tap, events } = setup({ bodyCaptureLimit: 4 });
    play(tap, [
      ['client', clientStart],
      ['server', serverStart],
      ['client', Buffer.concat([headersFrame(1, post('/')), dataFrame(1, 'abc'), dataFrame(1, 'defgh', { endStream: true })])],
      ['server', Buffer.concat([headersFrame(1, status(200)), dataFrame(1, '0123456789', { endStream: true })])],
    ]);
    assert.deepEqual(summary(events), [
      'request 101 s1 POST https://site.test/ h2',
      'body 101 client abc',
      'body 101 client d',
      'response 101 200',
      'body 101 server 0123',
      'completed 101 8/10',
    ]);
  });

  test('server push: the promise is the pushed request, linked to the promising stream', opts, () => {
    const { tap, events } = setup();
    play(tap, [
      ['client', clientStart],
      ['server', serverStart],
      ['client', headersFrame(1, get('/page'), { endStream: true })],
      [
        'server',
        Buffer.concat([
          pushPromiseFrame(1, 2, get('/style.css').subarray(0, 3), { endHeaders: false, padLength: 2 }),
          continuationFrame(1, get('/style.css').subarray(3)),
          headersFrame(1, status(200)),
          dataFrame(1, '<html>', { endStream: true }),
          headersFrame(2, status(200, ['content-type', 'text/css'])),
          dataFrame(2, 'p{}', { endStream: true }),
        ]),
      ],
    ]);
    assert.deepEqual(summary(events), [
      'request 101 s1 GET https://site.test/page h2',
      'request 102 s2 GET https://site.test/style.css h2',
      'push 102 promised s2 on s1 parent 101',
      'response 101 200',
      'body 101 server <html>',
      'completed 101 0/6',
      'response 102 200',
      'body 102 server p{}',
      'completed 102 0/3',
    ]);
    const promise = events.find((e) => e.kind === 'h2.frame' && e.typeName === 'PUSH_PROMISE');
    assert.ok(promise?.kind === 'h2.frame');
    assert.equal(promise.details?.promisedStreamId, 2);
    assert.equal(promise.padLength, 2);
    assert.deepEqual(promise.details?.headerBlock?.fields.map((f) => f.value), ['GET', 'https', '/style.css', 'site.test']);
  });

  test('RST_STREAM mid-body fails the exchange with the code; NO_ERROR after a full response completes it', opts, () => {
    const { tap, events } = setup();
    play(tap, [
      ['client', clientStart],
      ['server', serverStart],
      ['client', Buffer.concat([headersFrame(1, get('/big'), { endStream: true }), headersFrame(3, post('/up')), dataFrame(3, 'xx')])],
      ['server', Buffer.concat([headersFrame(1, status(200)), dataFrame(1, 'half')])],
      ['client', rstStreamFrame(1, 0x8)],
      ['server', Buffer.concat([headersFrame(3, status(413)), dataFrame(3, '', { endStream: true }), rstStreamFrame(3, 0)])],
      ['server', dataFrame(1, 'late')],
    ]);
    assert.deepEqual(summary(events), [
      'request 101 s1 GET https://site.test/big h2',
      'request 102 s3 POST https://site.test/up h2',
      'body 102 client xx',
      'response 101 200',
      'body 101 server half',
      'failed 101 reset CANCEL',
      'response 102 413',
      'completed 102 2/0',
    ]);
    const failed = events.find((e) => e.kind === 'http.failed');
    assert.ok(failed?.kind === 'http.failed');
    assert.equal(failed.error.message, 'the client reset stream 1 (CANCEL)');
    assert.equal(failed.responseBodySize, 4);
    const rst = events.find((e) => e.kind === 'h2.frame' && e.typeName === 'RST_STREAM');
    assert.ok(rst?.kind === 'h2.frame');
    assert.deepEqual(rst.details, { errorCode: 8, errorName: 'CANCEL' });
  });

  test('GOAWAY: streams above the last one fail at once, the rest when the connection closes', opts, () => {
    const { tap, events } = setup();
    play(tap, [
      ['client', clientStart],
      ['server', serverStart],
      ['client', Buffer.concat([1, 3, 5].map((id) => headersFrame(id, get(`/${id}`), { endStream: true })))],
      ['server', Buffer.concat([headersFrame(1, status(200)), dataFrame(1, 'a', { endStream: true }), headersFrame(3, status(200))])],
      ['server', goawayFrame(3, 0xb, 'too many requests')],
      ['end', 'server'],
      ['close', null],
    ]);
    assert.deepEqual(summary(events).filter((l) => l.startsWith('failed') || l.startsWith('completed')), [
      'completed 101 0/1',
      'failed 103 closed ENHANCE_YOUR_CALM',
      'failed 102 reset ENHANCE_YOUR_CALM',
    ]);
    const goaway = events.find((e) => e.kind === 'h2.frame' && e.typeName === 'GOAWAY');
    assert.ok(goaway?.kind === 'h2.frame');
    assert.deepEqual(goaway.details, {
      lastStreamId: 3,
      errorCode: 0xb,
      errorName: 'ENHANCE_YOUR_CALM',
      debugData: 'too many requests',
      debugDataLength: 17,
    });
  });

  test('a connection that closes with streams open fails them', opts, () => {
    const { tap, events } = setup();
    play(tap, [
      ['client', clientStart],
      ['server', serverStart],
      ['client', Buffer.concat([headersFrame(1, post('/a')), headersFrame(3, get('/b'), { endStream: true })])],
      ['server', headersFrame(3, status(200))],
      ['close', { reason: 'reset', message: 'ECONNRESET', code: 'ECONNRESET' }],
    ]);
    assert.deepEqual(summary(events).slice(-2), ['failed 101 reset ECONNRESET', 'failed 102 reset ECONNRESET']);
  });

  test('h2c: scheme http and protocol h2c from the context and :scheme', opts, () => {
    const { tap, events } = setup({ protocol: 'h2c', scheme: 'http', port: 8080 });
    const block = Buffer.concat([hpackIndexed(2), hpackIndexed(6), hpackIndexed(4), hpackLiteral('without', 1, 'plain.test:8080')]);
    play(tap, [
      ['client', Buffer.concat([clientStart, headersFrame(1, block, { endStream: true })])],
      ['server', Buffer.concat([serverStart, headersFrame(1, status(204), { endStream: true })])],
    ]);
    assert.deepEqual(summary(events), ['request 101 s1 GET http://plain.test:8080/ h2c', 'response 101 204', 'completed 101 0/0']);
  });
});

describe('H2Tap: settings', opts, () => {
  const bigTableRequest = Buffer.concat([hpackSizeUpdate(8192), get('/t')]);

  test('SETTINGS_HEADER_TABLE_SIZE from the server lets the client grow its table', opts, () => {
    const { tap, events } = setup();
    play(tap, [
      ['client', clientStart],
      ['server', Buffer.concat([settingsFrame([[1, 8192]]), settingsFrame([], true)])],
      ['client', Buffer.concat([settingsFrame([], true), headersFrame(1, bigTableRequest, { endStream: true })])],
    ]);
    assert.deepEqual(summary(events), ['request 101 s1 GET https://site.test/t h2']);
    const headers = events.find((e) => e.kind === 'h2.frame' && e.typeName === 'HEADERS');
    assert.ok(headers?.kind === 'h2.frame');
    assert.deepEqual(headers.details?.headerBlock?.tableSizeUpdates, [8192]);
  });

  test('without it, a size update over 4096 is an HPACK error: decode.failed, exchanges failed, opaque after', opts, () => {
    const { tap, events } = setup();
    play(tap, [
      ['client', clientStart],
      ['server', serverStart],
      ['client', headersFrame(1, get('/ok'))],
      ['client', headersFrame(3, bigTableRequest, { endStream: true })],
      ['client', headersFrame(5, get('/after'), { endStream: true })],
      ['server', headersFrame(1, status(200), { endStream: true })],
      ['close', null],
    ]);
    assert.deepEqual(summary(events), [
      'request 101 s1 GET https://site.test/ok h2',
      'decode.failed hpack client size-update-too-large',
      'failed 101 decode size-update-too-large',
    ]);
    const lastFrame = events.filter((e) => e.kind === 'h2.frame').at(-1);
    assert.ok(lastFrame?.kind === 'h2.frame');
    assert.equal(lastFrame.streamId, 3, 'the frame whose block failed is still shown');
    assert.equal(lastFrame.details?.headerBlock, undefined);
  });

  test('SETTINGS_MAX_FRAME_SIZE raises the frame size limit; a larger frame without it is a framing error', opts, () => {
    const big = dataFrame(1, Buffer.alloc(20_000, 0x61), { endStream: true });
    const allowed = setup();
    play(allowed.tap, [
      ['client', clientStart],
      ['server', Buffer.concat([settingsFrame([[5, 32_768]]), settingsFrame([], true)])],
      ['client', Buffer.concat([settingsFrame([], true), headersFrame(1, post('/'))])],
      ['client', big],
    ]);
    assert.deepEqual(summary(allowed.events).slice(0, 1), ['request 101 s1 POST https://site.test/ h2']);
    assert.equal(allowed.events.filter((e) => e.kind === 'decode.failed').length, 0);
    const dataEvent = allowed.events.find((e) => e.kind === 'h2.frame' && e.typeName === 'DATA');
    assert.ok(dataEvent?.kind === 'h2.frame');
    assert.equal(dataEvent.length, 20_000);

    const refused = setup();
    play(refused.tap, [
      ['client', clientStart],
      ['server', serverStart],
      ['client', Buffer.concat([settingsFrame([], true), headersFrame(1, post('/'))])],
      ['client', big],
    ]);
    assert.deepEqual(summary(refused.events), [
      'request 101 s1 POST https://site.test/ h2',
      'decode.failed h2 client frame-size',
      'failed 101 decode frame-size',
    ]);
  });

  test('a broken preface is an h2 decode failure; nothing after it is decoded', opts, () => {
    const { tap, events } = setup();
    play(tap, [
      ['client', Buffer.from('PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n')],
      ['client', headersFrame(1, get('/'), { endStream: true })],
    ]);
    assert.deepEqual(summary(events), ['decode.failed h2 client bad-preface']);
  });
});

describe('H2Tap: RFC 8441 stream upgrade hook', opts, () => {
  const extendedConnect = Buffer.concat([
    hpackLiteral('without', 2, 'CONNECT'),
    hpackLiteral('without', ':protocol', 'websocket'),
    hpackIndexed(7),
    hpackLiteral('without', 4, '/chat'),
    hpackLiteral('without', 1, 'site.test'),
    hpackLiteral('without', 'sec-websocket-version', '13'),
  ]);

  function recorder() {
    const calls: string[] = [];
    const infos: StreamUpgradeInfo[] = [];
    const hook = (info: StreamUpgradeInfo): Tap => {
      infos.push(info);
      return {
        onData: (side, chunk) => calls.push(`data ${side} ${chunk.toString('latin1')}`),
        onEnd: (side) => calls.push(`end ${side}`),
        onClose: (error) => calls.push(`close ${error ? `${error.reason} ${error.code ?? ''}` : 'null'}`),
      };
    };
    return { calls, infos, hook };
  }

  test('DATA of an extended CONNECT stream goes to the returned tap, per side, then end and close', opts, () => {
    const { calls, infos, hook } = recorder();
    const { tap, events } = setup({ onStreamUpgrade: hook });
    play(tap, [
      ['client', clientStart],
      ['server', Buffer.concat([settingsFrame([[8, 1]]), settingsFrame([], true)])],
      ['client', Buffer.concat([settingsFrame([], true), headersFrame(1, extendedConnect)])],
      ['server', Buffer.concat([headersFrame(1, status(200)), dataFrame(1, 'srv1')])],
      ['client', Buffer.concat([dataFrame(1, 'cli1'), dataFrame(1, 'cli2', { endStream: true })])],
      ['server', dataFrame(1, '', { endStream: true })],
      ['client', Buffer.concat([headersFrame(3, get('/next'), { endStream: true })])],
    ]);
    assert.deepEqual(calls, ['data server srv1', 'data client cli1', 'data client cli2', 'end client', 'end server', 'close null']);
    assert.equal(infos.length, 1);
    assert.equal(infos[0].streamId, 1);
    assert.equal(infos[0].exchangeId, 101);
    assert.deepEqual(infos[0].requestHeaders.slice(0, 2), [[':method', 'CONNECT'], [':protocol', 'websocket']]);
    assert.deepEqual(infos[0].responseHeaders, [[':status', '200']]);
    assert.deepEqual(summary(events), [
      'request 101 s1 CONNECT https://site.test/chat h2',
      'response 101 200',
      'completed 101 0/0',
      'request 102 s3 GET https://site.test/next h2',
    ]);
  });

  test('a reset stream and a closing connection close the stream tap with a failure', opts, () => {
    const { calls, hook } = recorder();
    const { tap } = setup({ onStreamUpgrade: hook });
    play(tap, [
      ['client', clientStart],
      ['server', serverStart],
      ['client', Buffer.concat([headersFrame(1, extendedConnect), headersFrame(3, extendedConnect)])],
      ['server', Buffer.concat([headersFrame(1, status(200)), headersFrame(3, status(200))])],
      ['client', rstStreamFrame(1, 0x8)],
      ['close', { reason: 'reset', message: 'gone', code: 'ECONNRESET' }],
    ]);
    assert.deepEqual(calls, ['close reset CANCEL', 'close reset ECONNRESET']);
  });

  test('a refused extended CONNECT is an ordinary exchange; a throwing hook is reported, not fatal', opts, () => {
    const { tap, events } = setup({
      onStreamUpgrade: () => {
        throw new Error('hook bug');
      },
    });
    play(tap, [
      ['client', clientStart],
      ['server', serverStart],
      ['client', Buffer.concat([headersFrame(1, extendedConnect), headersFrame(3, extendedConnect)])],
      ['server', Buffer.concat([headersFrame(1, status(400)), dataFrame(1, 'no', { endStream: true })])],
      ['client', dataFrame(1, '', { endStream: true })],
      ['server', Buffer.concat([headersFrame(3, status(200)), dataFrame(3, 'tunnelled')])],
    ]);
    assert.deepEqual(summary(events), [
      'request 101 s1 CONNECT https://site.test/chat h2',
      'request 102 s3 CONNECT https://site.test/chat h2',
      'response 101 400',
      'body 101 server no',
      'completed 101 0/2',
      'response 102 200',
      'completed 102 0/0',
      'decode.failed tap server internal',
    ]);
  });
});

describe('H2Tap: fuzz', opts, () => {
  test('mutated conversations never throw out of the tap, report at most one decode failure, and end every exchange', opts, () => {
    const random = seededRandom(20_24);
    const started = Date.now();
    let failures = 0;
    for (let round = 0; round < 2000 && Date.now() - started < 2500; round++) {
      const { tap, events } = setup();
      const steps: Step[] = conversation.map((step) => {
        if (step[0] === 'end' || step[0] === 'close') return step;
        const bytes = Buffer.from(step[1]);
        const flips = Math.floor(random() * 4);
        for (let i = 0; i < flips; i++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
        return [step[0], bytes];
      });
      play(tap, steps, (bytes) => randomChunks(bytes, random, 1 + Math.floor(random() * 40)));
      const decodeFailures = events.filter((e) => e.kind === 'decode.failed');
      assert.ok(decodeFailures.length <= 1, `round ${round}: one decode failure at most`);
      assert.ok(decodeFailures.every((e) => e.kind === 'decode.failed' && (e.decoder === 'h2' || e.decoder === 'hpack')), `round ${round}: ${JSON.stringify(decodeFailures)}`);
      failures += decodeFailures.length;
      const opened = new Set(events.flatMap((e) => (e.kind === 'http.request' ? [e.exchangeId] : [])));
      const ended = new Set(events.flatMap((e) => (e.kind === 'http.completed' || e.kind === 'http.failed' ? [e.exchangeId] : [])));
      assert.deepEqual([...opened].filter((id) => !ended.has(id)), [], `round ${round}: every exchange ended once the connection closed`);
    }
    assert.ok(failures > 0, 'the mutations did break decoding sometimes');
  });
});
