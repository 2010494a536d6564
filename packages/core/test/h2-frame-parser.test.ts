import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { H2DecodeError, H2FrameParser, type H2Event, type H2FrameParserOptions } from '../src/decode/h2/frame-parser.js';
import type { H2Frame } from '../src/decode/h2/frame-types.js';
import { HpackDecoder } from '../src/decode/hpack/decoder.js';
import {
  PREFACE,
  continuationFrame,
  dataFrame,
  frame,
  goawayFrame,
  headersFrame,
  hpackIndexed,
  hpackLiteral,
  pingFrame,
  priorityFrame,
  pushPromiseFrame,
  rstStreamFrame,
  settingsFrame,
  windowUpdateFrame,
} from './helpers/h2-encode.js';

const opts = { timeout: 10_000 };

interface Outcome {
  events: H2Event[];
  error: { code: string; message: string } | null;
}

/** Feeds the chunks in order; on an error keeps the events decoded before it, like a tap would. */
function replay(options: H2FrameParserOptions, chunks: Buffer[]): Outcome {
  const parser = new H2FrameParser(options);
  const events: H2Event[] = [];
  for (const chunk of chunks) {
    try {
      events.push(...parser.push(chunk));
    } catch (err) {
      if (!(err instanceof H2DecodeError)) throw err;
      events.push(...err.eventsBefore);
      return { events, error: { code: err.code, message: err.message } };
    }
  }
  return { events, error: null };
}

let seed = 12345;
const rand = (n: number) => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed % n;
};

function randomChunks(bytes: Buffer, maxChunk: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; ) {
    const n = 1 + rand(maxChunk);
    chunks.push(bytes.subarray(at, at + n));
    at += n;
  }
  return chunks;
}

/** The outcome of one push, checked against every two-way split and random chunkings. */
function replayEverywhere(options: H2FrameParserOptions, bytes: Buffer, splitPoints?: number[]): Outcome {
  const whole = replay(options, [bytes]);
  const points = splitPoints ?? [...Array(bytes.length + 1).keys()];
  for (const i of points) {
    const split = replay(options, [bytes.subarray(0, i), bytes.subarray(i)]);
    assert.deepEqual(split, whole, `split at byte ${i}`);
  }
  const rounds = bytes.length > 4096 ? 10 : 100;
  for (let round = 0; round < rounds; round++) {
    assert.deepEqual(replay(options, randomChunks(bytes, 1 + rand(64))), whole, `random chunks, round ${round}`);
  }
  assert.deepEqual(replay(options, randomChunks(bytes, 1)), whole, 'one byte at a time');
  return whole;
}

const frames = (events: H2Event[]): H2Frame[] => events.flatMap((e) => (e.type === 'frame' ? [e.frame] : []));

function assertPartial(actual: object, expected: Record<string, unknown>, label: string) {
  for (const [key, value] of Object.entries(expected)) {
    assert.deepEqual((actual as Record<string, unknown>)[key], value, `${label}: ${key}`);
  }
}

// A request block: GET https://example.test/a with a custom header; split into three fragments.
const REQUEST_BLOCK = Buffer.concat([
  hpackIndexed(2),
  hpackIndexed(7),
  hpackLiteral('incremental', 1, 'example.test', true),
  hpackLiteral('without', 4, '/a'),
  hpackLiteral('never', 'x-token', 'secret'),
]);

const CLIENT_FIXTURE = Buffer.concat([
  PREFACE,
  settingsFrame([[1, 4096], [2, 0], [3, 100], [4, 65_535], [5, 16_384], [6, 8192], [8, 1], [0x99, 7]]),
  settingsFrame([], true),
  windowUpdateFrame(0, 1 << 20),
  headersFrame(1, hpackIndexed(3), { padLength: 3, priority: { exclusive: true, dependency: 0, weight: 256 } }),
  dataFrame(1, 'hello', { padLength: 4 }),
  dataFrame(1, '', { padLength: 0, endStream: true }),
  headersFrame(3, REQUEST_BLOCK.subarray(0, 3), { endHeaders: false, endStream: true }),
  continuationFrame(3, REQUEST_BLOCK.subarray(3, 10), false),
  continuationFrame(3, REQUEST_BLOCK.subarray(10), true),
  priorityFrame(5, { dependency: 3, weight: 16 }),
  rstStreamFrame(3, 0x8),
  pingFrame('12345678'),
  pingFrame('abcdefgh', true),
  goawayFrame(3, 0xb, 'calm down'),
  windowUpdateFrame(1, 0),
  frame(0xfa, 0xff, 7, 'opaque'),
  frame(0xa, 0, 0, 'altsvc'),
]);

describe('H2FrameParser: every frame type', opts, () => {
  test('client direction: preface, all frame types, padding, CONTINUATION, unknown types', opts, () => {
    const { events, error } = replayEverywhere({ expectPreface: true }, CLIENT_FIXTURE);
    assert.equal(error, null);
    assert.deepEqual(events[0], { type: 'preface' });
    const f = frames(events);
    assert.deepEqual(
      f.map((x) => x.typeName),
      ['SETTINGS', 'SETTINGS', 'WINDOW_UPDATE', 'HEADERS', 'DATA', 'DATA', 'HEADERS', 'CONTINUATION', 'CONTINUATION',
        'PRIORITY', 'RST_STREAM', 'PING', 'PING', 'GOAWAY', 'WINDOW_UPDATE', 'UNKNOWN_0xfa', 'ALTSVC'],
    );
    assertPartial(f[0], {
      kind: 'settings', ack: false, streamId: 0, length: 48,
      settings: [[1, 'HEADER_TABLE_SIZE', 4096], [2, 'ENABLE_PUSH', 0], [3, 'MAX_CONCURRENT_STREAMS', 100],
        [4, 'INITIAL_WINDOW_SIZE', 65_535], [5, 'MAX_FRAME_SIZE', 16_384], [6, 'MAX_HEADER_LIST_SIZE', 8192],
        [8, 'ENABLE_CONNECT_PROTOCOL', 1], [0x99, 'UNKNOWN_0x99', 7]],
    }, 'settings');
    assertPartial(f[1], { kind: 'settings', ack: true, flags: 1, flagNames: ['ACK'], settings: [] }, 'settings ack');
    assertPartial(f[2], { kind: 'window-update', streamId: 0, increment: 1 << 20 }, 'window update');
    assertPartial(f[3], {
      kind: 'headers', streamId: 1, length: 1 + 5 + 1 + 3, padLength: 3, fragment: hpackIndexed(3),
      priority: { exclusive: true, streamDependency: 0, weight: 256 }, endStream: false, endHeaders: true,
      flags: 0x2c, flagNames: ['END_HEADERS', 'PADDED', 'PRIORITY'],
    }, 'padded headers');
    assertPartial(f[4], { kind: 'data', data: Buffer.from('hello'), padLength: 4, length: 10, endStream: false }, 'data');
    assertPartial(f[5], { kind: 'data', data: Buffer.alloc(0), padLength: 0, endStream: true, flagNames: ['END_STREAM', 'PADDED'] }, 'empty data');
    assertPartial(f[6], { kind: 'headers', endHeaders: false, endStream: true, padLength: null, priority: null }, 'open headers');
    assertPartial(f[7], { kind: 'continuation', streamId: 3, endHeaders: false, fragment: REQUEST_BLOCK.subarray(3, 10) }, 'cont 1');
    assertPartial(f[8], { kind: 'continuation', endHeaders: true, flagNames: ['END_HEADERS'] }, 'cont 2');
    assertPartial(f[9], { kind: 'priority', streamId: 5, priority: { exclusive: false, streamDependency: 3, weight: 16 } }, 'priority');
    assertPartial(f[10], { kind: 'rst-stream', streamId: 3, errorCode: 8, errorName: 'CANCEL' }, 'rst');
    assertPartial(f[11], { kind: 'ping', ack: false, opaqueData: Buffer.from('12345678') }, 'ping');
    assertPartial(f[12], { kind: 'ping', ack: true, opaqueData: Buffer.from('abcdefgh') }, 'ping ack');
    assertPartial(f[13], { kind: 'goaway', lastStreamId: 3, errorCode: 0xb, errorName: 'ENHANCE_YOUR_CALM', debugData: Buffer.from('calm down') }, 'goaway');
    assertPartial(f[14], { kind: 'window-update', streamId: 1, increment: 0 }, 'zero increment');
    assertPartial(f[15], {
      kind: 'unknown', type: 0xfa, streamId: 7, flags: 0xff, payload: Buffer.from('opaque'),
      flagNames: ['0x1', '0x2', '0x4', '0x8', '0x10', '0x20', '0x40', '0x80'],
    }, 'unknown');
    assertPartial(f[16], { kind: 'unknown', type: 0xa, payload: Buffer.from('altsvc') }, 'altsvc');

    const blocks = events.filter((e) => e.type === 'header-block');
    assert.deepEqual(blocks, [
      { type: 'header-block', streamId: 1, kind: 'headers', promisedStreamId: null, block: hpackIndexed(3), endStream: false,
        priority: { exclusive: true, streamDependency: 0, weight: 256 }, frameCount: 1 },
      { type: 'header-block', streamId: 3, kind: 'headers', promisedStreamId: null, block: REQUEST_BLOCK, endStream: true,
        priority: null, frameCount: 3 },
    ]);
    // The block event comes right after the frame that completed it.
    assert.equal(events.indexOf(blocks[1]), events.indexOf(events.find((e) => e.type === 'frame' && e.frame === f[8])!) + 1);
    const fields = new HpackDecoder().decode(blocks[1].type === 'header-block' ? blocks[1].block : Buffer.alloc(0));
    assert.deepEqual(fields.map((x) => [x.name, x.value]), [
      [':method', 'GET'], [':scheme', 'https'], [':authority', 'example.test'], [':path', '/a'], ['x-token', 'secret'],
    ]);
  });

  test('server direction: no preface, PUSH_PROMISE with padding and CONTINUATION', opts, () => {
    const block = Buffer.concat([hpackIndexed(2), hpackLiteral('without', 4, '/style.css')]);
    const bytes = Buffer.concat([
      settingsFrame([[3, 128]]),
      pushPromiseFrame(1, 2, block.subarray(0, 2), { padLength: 2, endHeaders: false }),
      continuationFrame(1, block.subarray(2)),
      headersFrame(2, hpackIndexed(8), { endStream: true }),
    ]);
    const { events, error } = replayEverywhere({ expectPreface: false }, bytes);
    assert.equal(error, null);
    assertPartial(frames(events)[1], { kind: 'push-promise', promisedStreamId: 2, padLength: 2, endHeaders: false, fragment: block.subarray(0, 2) }, 'push');
    const blocks = events.filter((e) => e.type === 'header-block');
    assert.deepEqual(blocks.map((b) => b.type === 'header-block' && [b.kind, b.streamId, b.promisedStreamId, b.block, b.endStream, b.frameCount]), [
      ['push-promise', 1, 2, block, false, 2],
      ['headers', 2, null, hpackIndexed(8), true, 1],
    ]);
  });

  test('frames inside one chunk are views into it; frames across chunks are copies', opts, () => {
    const chunk = Buffer.concat([settingsFrame([]), dataFrame(1, 'payload')]);
    const [, data] = frames(new H2FrameParser({ expectPreface: false }).push(chunk));
    assert.ok(data.kind === 'data' && data.data.buffer === chunk.buffer, 'DATA payload is a subarray of the chunk');
    const parser = new H2FrameParser({ expectPreface: false });
    parser.push(chunk.subarray(0, chunk.length - 3));
    const [copied] = frames(parser.push(Buffer.from(chunk.subarray(chunk.length - 3))));
    assert.ok(copied.kind === 'data' && copied.data.equals(Buffer.from('payload')));
  });

  test('max frame size: 16384 by default, larger when told, up to 2^24-1', opts, () => {
    // Splits near the frame edges and across the payload (every point of a big frame is slow, not better).
    const sample = (length: number) => [...Array(100).keys(), ...Array.from({ length: 64 }, (_, i) => Math.floor((i * length) / 64) + 17), length - 20, length - 1];
    const atLimit = Buffer.concat([settingsFrame([]), dataFrame(1, Buffer.alloc(16_384, 0x61), { endStream: true })]);
    const accepted = replayEverywhere({ expectPreface: false }, atLimit, sample(atLimit.length));
    assertPartial(frames(accepted.events)[1], { kind: 'data', length: 16_384, data: Buffer.alloc(16_384, 0x61) }, 'max size data');
    const big = Buffer.concat([settingsFrame([]), dataFrame(1, Buffer.alloc(70_000, 7)), pingFrame('8 bytes!')]);
    const denied = replay({ expectPreface: false }, [big]);
    assert.equal(denied.error?.code, 'frame-size');
    assert.equal(frames(denied.events).length, 1);
    const allowed = replayEverywhere({ expectPreface: false, maxFrameSize: 2 ** 24 - 1 }, big, sample(big.length));
    assert.equal(allowed.error, null);
    assertPartial(frames(allowed.events)[1], { kind: 'data', length: 70_000, data: Buffer.alloc(70_000, 7) }, 'big data');
    // Raised mid-connection, as a tap does after the peer's SETTINGS_MAX_FRAME_SIZE.
    const parser = new H2FrameParser({ expectPreface: false });
    parser.push(settingsFrame([]));
    parser.setMaxFrameSize(70_000);
    assert.equal(frames(parser.push(dataFrame(1, Buffer.alloc(70_000)))).length, 1);
    assert.throws(() => new H2FrameParser({ expectPreface: false, maxFrameSize: 16_383 }), RangeError);
    assert.throws(() => new H2FrameParser({ expectPreface: false, maxFrameSize: 2 ** 24 }), RangeError);
  });
});

const S = settingsFrame([]);
// [what, expected code, frames decoded before the error, bytes, client direction?]
const MALFORMED: Array<[label: string, code: string, framesBefore: number, bytes: Buffer, preface?: boolean]> = [
  ['not the preface', 'bad-preface', 0, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), true],
  ['preface differing in its last byte', 'bad-preface', 0, Buffer.concat([PREFACE.subarray(0, 23), Buffer.from('x')]), true],
  ['first frame not SETTINGS', 'protocol', 0, pingFrame('12345678')],
  ['frame over max size (header alone is enough)', 'frame-size', 1, Buffer.concat([S, frame(0, 0, 1, [], 16_385)])],
  ['DATA padding as long as the payload', 'protocol', 1, Buffer.concat([S, frame(0, 0x8, 1, [3, 0, 0])])],
  ['DATA PADDED with no pad length octet', 'frame-size', 1, Buffer.concat([S, frame(0, 0x8, 1, [])])],
  ['HEADERS padding over the fragment', 'protocol', 1, Buffer.concat([S, frame(1, 0x2c, 1, [1, 0, 0, 0, 0, 15])])],
  ['HEADERS PRIORITY flag without the 5 bytes', 'frame-size', 1, Buffer.concat([S, frame(1, 0x24, 1, [0, 0, 0])])],
  ['PUSH_PROMISE shorter than the promised id', 'frame-size', 1, Buffer.concat([S, frame(5, 0x4, 1, [0, 0])])],
  ['PUSH_PROMISE promising stream 0', 'protocol', 1, Buffer.concat([S, frame(5, 0x4, 1, [0, 0, 0, 0, 0x82])])],
  ['PING of 7 bytes', 'frame-size', 1, Buffer.concat([S, frame(6, 0, 0, '1234567')])],
  ['SETTINGS of 5 bytes', 'frame-size', 1, Buffer.concat([S, frame(4, 0, 0, [0, 1, 0, 0, 0])])],
  ['SETTINGS ACK with a payload', 'frame-size', 1, Buffer.concat([S, frame(4, 1, 0, [0, 1, 0, 0, 0, 0])])],
  ['WINDOW_UPDATE of 3 bytes', 'frame-size', 1, Buffer.concat([S, frame(8, 0, 0, [0, 0, 1])])],
  ['RST_STREAM of 5 bytes', 'frame-size', 1, Buffer.concat([S, frame(3, 0, 1, [0, 0, 0, 0, 8])])],
  ['PRIORITY of 4 bytes', 'frame-size', 1, Buffer.concat([S, frame(2, 0, 1, [0, 0, 0, 1])])],
  ['GOAWAY of 7 bytes', 'frame-size', 1, Buffer.concat([S, frame(7, 0, 0, [0, 0, 0, 0, 0, 0, 0])])],
  ['DATA on stream 0', 'protocol', 1, Buffer.concat([S, dataFrame(0, 'x')])],
  ['HEADERS on stream 0', 'protocol', 1, Buffer.concat([S, headersFrame(0, [0x82])])],
  ['RST_STREAM on stream 0', 'protocol', 1, Buffer.concat([S, rstStreamFrame(0, 0)])],
  ['SETTINGS on stream 1', 'protocol', 1, Buffer.concat([S, frame(4, 0, 1, [])])],
  ['PING on stream 1', 'protocol', 1, Buffer.concat([S, frame(6, 0, 1, '12345678')])],
  ['GOAWAY on stream 3', 'protocol', 1, Buffer.concat([S, frame(7, 0, 3, Buffer.alloc(8))])],
  ['CONTINUATION without HEADERS', 'protocol', 1, Buffer.concat([S, continuationFrame(1, [0x82])])],
  ['DATA inside a header block', 'protocol', 2, Buffer.concat([S, headersFrame(1, [0x82], { endHeaders: false }), dataFrame(1, 'x')])],
  ['PING inside a header block', 'protocol', 2, Buffer.concat([S, headersFrame(1, [0x82], { endHeaders: false }), pingFrame('12345678')])],
  ['CONTINUATION on another stream', 'protocol', 2, Buffer.concat([S, headersFrame(1, [0x82], { endHeaders: false }), continuationFrame(3, [0x84])])],
];

describe('H2FrameParser: malformed input', opts, () => {
  for (const [label, code, framesBefore, bytes, preface] of MALFORMED) {
    test(`${label} → ${code}, at every split point`, opts, () => {
      const outcome = replayEverywhere({ expectPreface: preface ?? false }, bytes);
      assert.equal(outcome.error?.code, code, outcome.error?.message ?? 'no error');
      // Everything before the bad frame was still decoded and handed back; the bad one was not.
      assert.equal(frames(outcome.events).length, framesBefore);
    });
  }

  test('a header block over maxHeaderBlockSize (CONTINUATION flood)', opts, () => {
    const flood = [S, headersFrame(1, Buffer.alloc(100), { endHeaders: false })];
    for (let i = 0; i < 20; i++) flood.push(continuationFrame(1, Buffer.alloc(100), false));
    const outcome = replayEverywhere({ expectPreface: false, maxHeaderBlockSize: 1000 }, Buffer.concat(flood));
    assert.equal(outcome.error?.code, 'header-block-too-large');
    assert.equal(frames(outcome.events).length, 1 + 1 + 9);
  });

  test('after an error the parser is unusable', opts, () => {
    const parser = new H2FrameParser({ expectPreface: false });
    assert.throws(() => parser.push(pingFrame('12345678')), (e: unknown) => e instanceof H2DecodeError && e.code === 'protocol');
    assert.throws(() => parser.push(S), (e: unknown) => e instanceof H2DecodeError && e.code === 'unusable');
  });
});

interface Recording {
  fromClient: Buffer;
  fromServer: Buffer;
  port: number;
}

/** Node's HTTP/2 client and h2c server talking through a TCP relay that records both directions. */
async function recordNodeSession(): Promise<Recording> {
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    if (headers[':method'] === 'GET') {
      stream.respond({ ':status': 200, 'content-type': 'text/plain', 'x-served-by': 'node' });
      stream.end('hello get');
      return;
    }
    let body = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (body += chunk));
    stream.on('end', () => {
      stream.respond({ ':status': 201 }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'x-server-trailer': 'done' }));
      stream.end(`got ${body}`);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const serverPort = (server.address() as AddressInfo).port;

  const fromClient: Buffer[] = [];
  const fromServer: Buffer[] = [];
  const closed: Array<Promise<unknown>> = [];
  const relay = net.createServer((down) => {
    const up = net.connect(serverPort, '127.0.0.1');
    closed.push(once(down, 'close'), once(up, 'close'));
    down.on('data', (c: Buffer) => (fromClient.push(Buffer.from(c)), up.write(c)));
    up.on('data', (c: Buffer) => (fromServer.push(Buffer.from(c)), down.write(c)));
    down.on('end', () => up.end());
    up.on('end', () => down.end());
    down.on('error', () => up.destroy());
    up.on('error', () => down.destroy());
  });
  relay.listen(0, '127.0.0.1');
  await once(relay, 'listening');
  const port = (relay.address() as AddressInfo).port;

  const client = http2.connect(`http://127.0.0.1:${port}`);
  const get = client.request({ ':path': '/hello?x=1', 'user-agent': 'hopscope-test' });
  get.end();
  get.resume();
  await once(get, 'end');

  const post = client.request(
    { ':method': 'POST', ':path': '/upload', 'content-type': 'text/plain', 'user-agent': 'hopscope-test' },
    { waitForTrailers: true },
  );
  post.on('wantTrailers', () => post.sendTrailers({ 'x-client-trailer': 'sum-123' }));
  post.end('payload');
  const trailers = once(post, 'trailers');
  post.resume();
  await Promise.all([once(post, 'end'), trailers]);

  client.close();
  await Promise.all(closed);
  server.close();
  relay.close();
  return { fromClient: Buffer.concat(fromClient), fromServer: Buffer.concat(fromServer), port };
}

/** Decodes every header block of one direction, in order, as `streamId → header lists`. */
function headerLists(events: H2Event[]): Map<number, Array<{ endStream: boolean; fields: Array<[string, string]> }>> {
  const hpack = new HpackDecoder();
  const byStream = new Map<number, Array<{ endStream: boolean; fields: Array<[string, string]> }>>();
  for (const e of events) {
    if (e.type !== 'header-block') continue;
    const list = byStream.get(e.streamId) ?? [];
    list.push({ endStream: e.endStream, fields: hpack.decode(e.block).map((f) => [f.name, f.value]) });
    byStream.set(e.streamId, list);
  }
  return byStream;
}

const dataOn = (events: H2Event[], streamId: number) =>
  Buffer.concat(frames(events).flatMap((f) => (f.kind === 'data' && f.streamId === streamId ? [f.data] : []))).toString();

describe('H2FrameParser + HpackDecoder on real bytes from node:http2', opts, () => {
  test('a GET and a POST with trailers, both directions, at every split point', opts, async () => {
    const rec = await recordNodeSession();
    const client = replayEverywhere({ expectPreface: true }, rec.fromClient);
    const server = replayEverywhere({ expectPreface: false }, rec.fromServer);
    assert.equal(client.error, null);
    assert.equal(server.error, null);
    assert.equal(frames(client.events)[0].kind, 'settings');
    assert.equal(frames(server.events)[0].kind, 'settings');
    assert.ok(frames(server.events).some((f) => f.kind === 'settings' && f.ack), 'server ACKs the client SETTINGS');

    const requests = headerLists(client.events);
    const [getHead] = requests.get(1)!;
    assert.deepEqual(getHead.fields.filter(([n]) => n.startsWith(':')).sort(), [
      [':authority', `127.0.0.1:${rec.port}`], [':method', 'GET'], [':path', '/hello?x=1'], [':scheme', 'http'],
    ]);
    assert.ok(getHead.fields.some(([n, v]) => n === 'user-agent' && v === 'hopscope-test'));
    const [postHead, postTrailers] = requests.get(3)!;
    assert.deepEqual(postHead.fields.find(([n]) => n === ':method'), [':method', 'POST']);
    assert.deepEqual(postHead.fields.find(([n]) => n === ':path'), [':path', '/upload']);
    assert.deepEqual(postTrailers, { endStream: true, fields: [['x-client-trailer', 'sum-123']] });
    assert.equal(dataOn(client.events, 3), 'payload');

    const responses = headerLists(server.events);
    const [getResponse] = responses.get(1)!;
    assert.deepEqual(getResponse.fields.find(([n]) => n === ':status'), [':status', '200']);
    assert.ok(getResponse.fields.some(([n, v]) => n === 'x-served-by' && v === 'node'));
    assert.equal(dataOn(server.events, 1), 'hello get');
    const [postResponse, serverTrailers] = responses.get(3)!;
    assert.deepEqual(postResponse.fields.find(([n]) => n === ':status'), [':status', '201']);
    assert.deepEqual(serverTrailers, { endStream: true, fields: [['x-server-trailer', 'done']] });
    assert.equal(dataOn(server.events, 3), 'got payload');

    // nghttp2 Huffman-codes strings and reuses its dynamic table: both paths were exercised.
    const hpack = new HpackDecoder();
    const fields = client.events.flatMap((e) => (e.type === 'header-block' ? hpack.decode(e.block) : []));
    assert.ok(fields.some((f) => f.huffman), 'some literal was Huffman-coded');
    assert.ok(fields.some((f) => f.representation === 'indexed' && f.index! > 61), 'some field came from the dynamic table');
  });
});
