import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { describe, test } from 'node:test';
import zlib from 'node:zlib';
import { WebSocket, WebSocketServer } from 'ws';
import type { HeaderList, Side } from '../src/capture/events.js';
import { type DeflateDirectionParams, negotiateDeflate, parseExtensions } from '../src/decode/ws/extensions.js';
import { WsFrameParser } from '../src/decode/ws/frame-parser.js';
import { InflateLimiter, type WsInflaterOptions, WsInflater, WsSyncInflater } from '../src/decode/ws/inflater.js';
import { type WsMessage, type WsWireMessage, WsMessageAssembler } from '../src/decode/ws/message-assembler.js';
import { WsDecodeError } from '../src/decode/ws/ws-errors.js';
import { encodeFrame, everyCut, seededRandom } from './helpers/ws-encode.js';

const hex = (text: string) => Buffer.from(text.replace(/0x|\s/g, ''), 'hex');
const TAKEOVER: DeflateDirectionParams = { noContextTakeover: false, maxWindowBits: 15 };
const NO_TAKEOVER: DeflateDirectionParams = { noContextTakeover: true, maxWindowBits: 15 };

/** Frames → wire messages for one direction with permessage-deflate negotiated. */
function wireMessages(chunks: Buffer[], side: Side, maxFramePayload?: number): WsWireMessage[] {
  const parser = new WsFrameParser({ side, allowedRsv: { rsv1: true }, maxFramePayload });
  const assembler = new WsMessageAssembler({ deflate: true });
  const out: WsWireMessage[] = [];
  for (const chunk of chunks) {
    for (const frame of parser.push(chunk)) {
      const wire = assembler.push(frame);
      if (wire) out.push(wire);
    }
  }
  return out;
}

interface Inflated {
  messages: WsMessage[];
  error: string | null;
  partial: WsMessage | null;
}

function inflateSync(wires: WsWireMessage[], params: DeflateDirectionParams, options?: WsInflaterOptions): Inflated {
  const inflater = new WsSyncInflater(params, options);
  const result: Inflated = { messages: [], error: null, partial: null };
  try {
    for (const wire of wires) result.messages.push(inflater.inflate(wire));
  } catch (err) {
    if (!(err instanceof WsDecodeError)) throw err;
    result.error = err.code;
  }
  return result;
}

async function inflateAsync(wires: WsWireMessage[], params: DeflateDirectionParams, options?: WsInflaterOptions): Promise<Inflated> {
  const result: Inflated = { messages: [], error: null, partial: null };
  const inflater = new WsInflater(
    params,
    {
      message: (m) => result.messages.push(m),
      error: (err, partial) => {
        assert.ok(err instanceof WsDecodeError, `unexpected ${err}`);
        result.error = err.code;
        result.partial = partial;
      },
    },
    options,
  );
  for (const wire of wires) inflater.push(wire);
  await inflater.idle();
  inflater.close();
  return result;
}

/** Both inflaters over the bytes cut every way: all runs must agree. */
async function inflateEveryCut(bytes: Buffer, params: DeflateDirectionParams): Promise<Inflated> {
  const expected = await inflateAsync(wireMessages([bytes], 'server'), params);
  for (const [label, chunks] of everyCut(bytes)) {
    const wires = wireMessages(chunks, 'server');
    const sync = inflateSync(wires, params);
    assert.deepEqual(sync, { ...expected, partial: null }, `sync, ${label}`);
    assert.deepEqual(await inflateAsync(wires, params), expected, `async, ${label}`);
  }
  return expected;
}

const texts = (result: Inflated) => result.messages.map((m) => m.text ?? m.payload.toString('hex'));

describe('permessage-deflate negotiation', { timeout: 10_000 }, () => {
  test('parses extension lists with parameters and quoted values', () => {
    assert.deepEqual(parseExtensions('permessage-deflate; client_max_window_bits, x-foo; a="b,\\"c"; d'), [
      { name: 'permessage-deflate', params: [['client_max_window_bits', true]] },
      { name: 'x-foo', params: [['a', 'b,"c'], ['d', true]] },
    ]);
  });

  test('takes the per-direction parameters from the 101 response', () => {
    const request: HeaderList = [['Sec-WebSocket-Extensions', 'permessage-deflate; client_max_window_bits; server_max_window_bits=12']];
    const response: HeaderList = [
      ['sec-websocket-extensions', 'permessage-deflate; server_no_context_takeover; client_max_window_bits=10; server_max_window_bits="12"'],
    ];
    assert.deepEqual(negotiateDeflate(request, response), {
      client: { noContextTakeover: false, maxWindowBits: 10 },
      server: { noContextTakeover: true, maxWindowBits: 12 },
      agreed: [
        ['server_no_context_takeover', true],
        ['client_max_window_bits', '10'],
        ['server_max_window_bits', '12'],
      ],
      problems: [],
    });
  });

  test('a client hint in the offer alone does not reset the context', () => {
    const request: HeaderList = [['Sec-WebSocket-Extensions', 'permessage-deflate; client_no_context_takeover']];
    const response: HeaderList = [['Sec-WebSocket-Extensions', 'permessage-deflate']];
    assert.deepEqual(negotiateDeflate(request, response)?.client, { noContextTakeover: false, maxWindowBits: 15 });
  });

  test('no permessage-deflate in the response means none', () => {
    const request: HeaderList = [['Sec-WebSocket-Extensions', 'permessage-deflate']];
    assert.equal(negotiateDeflate(request, [['Sec-WebSocket-Extensions', 'x-other']]), null);
    assert.equal(negotiateDeflate(request, []), null);
  });

  test('violations are listed and safe values used', () => {
    const response: HeaderList = [['Sec-WebSocket-Extensions', 'permessage-deflate; client_max_window_bits=7; server_max_window_bits; bogus']];
    const result = negotiateDeflate([], response)!;
    assert.deepEqual(result.client, { noContextTakeover: false, maxWindowBits: 15 });
    assert.deepEqual(result.server, { noContextTakeover: false, maxWindowBits: 15 });
    assert.deepEqual(result.problems, [
      'permessage-deflate accepted but not offered',
      'client_max_window_bits in the response but not in the offer',
      'client_max_window_bits needs a value from 8 to 15',
      'server_max_window_bits needs a value from 8 to 15',
      'unknown parameter bogus',
    ]);
  });
});

describe('permessage-deflate: RFC 7692 §7.2.3 examples', { timeout: 10_000 }, () => {
  test('"Hello" compressed in one frame', async () => {
    const out = await inflateEveryCut(hex('0xc1 0x07 0xf2 0x48 0xcd 0xc9 0xc9 0x07 0x00'), TAKEOVER);
    assert.equal(out.error, null);
    assert.deepEqual(texts(out), ['Hello']);
    const [message] = out.messages;
    assert.deepEqual(
      [message.compressed, message.payloadSize, message.decodedSize, message.utf8Valid],
      [true, 7, 5, true],
    );
  });

  test('"Hello" compressed and fragmented', async () => {
    const out = await inflateEveryCut(hex('0x41 0x03 0xf2 0x48 0xcd 0x80 0x04 0xc9 0xc9 0x07 0x00'), TAKEOVER);
    assert.deepEqual(texts(out), ['Hello']);
    assert.equal(out.messages[0].frames, 2);
  });

  test('two messages sharing the LZ77 sliding window', async () => {
    const bytes = hex('0xc1 0x07 0xf2 0x48 0xcd 0xc9 0xc9 0x07 0x00 0xc1 0x05 0xf2 0x00 0x11 0x00 0x00');
    assert.deepEqual(texts(await inflateEveryCut(bytes, TAKEOVER)), ['Hello', 'Hello']);
  });

  test('with no context takeover, a back-reference into the last message is bad-deflate', async () => {
    const bytes = hex('0xc1 0x07 0xf2 0x48 0xcd 0xc9 0xc9 0x07 0x00 0xc1 0x05 0xf2 0x00 0x11 0x00 0x00');
    const out = await inflateEveryCut(bytes, NO_TAKEOVER);
    assert.deepEqual(texts(out), ['Hello']);
    assert.equal(out.error, 'bad-deflate');
    const fresh = hex('0xc1 0x07 0xf2 0x48 0xcd 0xc9 0xc9 0x07 0x00 0xc1 0x07 0xf2 0x48 0xcd 0xc9 0xc9 0x07 0x00');
    assert.deepEqual(texts(await inflateEveryCut(fresh, NO_TAKEOVER)), ['Hello', 'Hello']);
  });

  test('a DEFLATE block with no compression', async () => {
    const out = await inflateEveryCut(hex('0xc1 0x0b 0x00 0x05 0x00 0xfa 0xff 0x48 0x65 0x6c 0x6c 0x6f 0x00'), TAKEOVER);
    assert.deepEqual(texts(out), ['Hello']);
  });

  test('a DEFLATE block with BFINAL set, then a message using the same window', async () => {
    const bytes = hex('0xc1 0x08 0xf3 0x48 0xcd 0xc9 0xc9 0x07 0x00 0x00 0xc1 0x05 0xf2 0x00 0x11 0x00 0x00');
    assert.deepEqual(texts(await inflateEveryCut(bytes, TAKEOVER)), ['Hello', 'Hello']);
    const twice = hex('0xc1 0x08 0xf3 0x48 0xcd 0xc9 0xc9 0x07 0x00 0x00 0xc1 0x08 0xf3 0x48 0xcd 0xc9 0xc9 0x07 0x00 0x00');
    assert.deepEqual(texts(await inflateEveryCut(twice, NO_TAKEOVER)), ['Hello', 'Hello']);
  });

  test('two DEFLATE blocks in one message', async () => {
    const out = await inflateEveryCut(hex('0xc1 0x0d 0xf2 0x48 0x05 0x00 0x00 0x00 0xff 0xff 0xca 0xc9 0xc9 0x07 0x00'), TAKEOVER);
    assert.deepEqual(texts(out), ['Hello']);
  });
});

/** A message as a compressing peer would send it: raw deflate, sync flush, tail removed. */
function compress(data: Buffer, windowBits = 15): Buffer {
  const out = zlib.deflateRawSync(data, { windowBits, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  return out.subarray(0, out.length - 4);
}

/** One message from a persistent deflater (context carries over), tail removed. */
async function deflateMessage(deflater: zlib.DeflateRaw, data: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const onData = (chunk: Buffer) => chunks.push(chunk);
  deflater.on('data', onData);
  deflater.write(data);
  await new Promise<void>((resolve) => deflater.flush(zlib.constants.Z_SYNC_FLUSH, () => resolve()));
  deflater.off('data', onData);
  const out = Buffer.concat(chunks);
  return out.subarray(0, out.length - 4);
}

function randomBytes(n: number, seed = 1): Buffer {
  const random = seededRandom(seed);
  return Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)));
}

const compressedFrame = (data: Buffer, opcode = 2) => encodeFrame({ opcode, rsv1: true, payload: compress(data) });

describe('permessage-deflate: limits and failures', { timeout: 10_000 }, () => {
  test('a deflate bomb is flagged and inflating stops', async () => {
    const wires = wireMessages([compressedFrame(Buffer.alloc(32 * 1024 * 1024))], 'server');
    assert.ok(wires[0].payloadSize < 64 * 1024);
    const async = await inflateAsync(wires, TAKEOVER);
    assert.equal(async.error, 'deflate-bomb');
    assert.deepEqual(async.messages, []);
    // Default limits: 400 times the compressed size, but at least 4 MiB; one output chunk over.
    const limit = Math.max(4 * 1024 * 1024, 400 * wires[0].payloadSize);
    const stoppedAt = async.partial!.decodedSize;
    assert.ok(stoppedAt > limit && stoppedAt <= limit + 64 * 1024, `stopped at ${stoppedAt}`);
    assert.equal(async.partial!.payloadTruncated, true);
    assert.equal(inflateSync(wires, TAKEOVER).error, 'deflate-bomb');
    const capped = wireMessages([compressedFrame(Buffer.alloc(300_000, 'ab'))], 'server');
    assert.equal((await inflateAsync(capped, TAKEOVER, { maxDecodedSize: 100_000 })).error, 'deflate-bomb');
    assert.equal(inflateSync(capped, TAKEOVER, { maxDecodedSize: 100_000 }).error, 'deflate-bomb');
  });

  test('decoded bytes over the message cap are counted and flagged', async () => {
    const data = Buffer.from('0123456789'.repeat(50_000));
    const wires = wireMessages([compressedFrame(data, 1)], 'server');
    for (const out of [await inflateAsync(wires, TAKEOVER, { maxMessagePayload: 1000 }), inflateSync(wires, TAKEOVER, { maxMessagePayload: 1000 })]) {
      assert.equal(out.error, null);
      assert.equal(out.messages[0].payload.length, 1000);
      assert.equal(out.messages[0].decodedSize, data.length);
      assert.equal(out.messages[0].payloadTruncated, true);
      assert.equal(out.messages[0].utf8Valid, true);
    }
  });

  test('a broken deflate stream is bad-deflate', async () => {
    const wires = wireMessages([encodeFrame({ opcode: 1, rsv1: true, payload: Buffer.from([0xff, 0xff, 0xff]) })], 'server');
    assert.equal((await inflateAsync(wires, TAKEOVER)).error, 'bad-deflate');
    assert.equal(inflateSync(wires, TAKEOVER).error, 'bad-deflate');
  });

  test('a back-reference into the last message beyond the agreed window is bad-deflate', async () => {
    // zlib checks distances against the window only across calls, so the reference must reach
    // back into the previous message: the same 1000 random bytes twice, with a shared window.
    const block = randomBytes(1000);
    const deflater = zlib.createDeflateRaw({ windowBits: 15 });
    const bytes = Buffer.concat([
      encodeFrame({ opcode: 2, rsv1: true, payload: await deflateMessage(deflater, block) }),
      encodeFrame({ opcode: 2, rsv1: true, payload: await deflateMessage(deflater, block) }),
    ]);
    deflater.close();
    const wires = wireMessages([bytes], 'server');
    assert.ok(wires[1].payloadSize < 100, 'the second message is a back-reference');
    const narrow = { noContextTakeover: false, maxWindowBits: 9 };
    assert.equal((await inflateAsync(wires, narrow)).error, 'bad-deflate');
    assert.equal(inflateSync(wires, narrow).error, 'bad-deflate');
    const wide = { noContextTakeover: false, maxWindowBits: 10 };
    assert.deepEqual((await inflateAsync(wires, wide)).messages.map((m) => m.payload), [block, block]);
  });

  test('invalid UTF-8 inside a compressed text message is flagged', async () => {
    const wires = wireMessages([compressedFrame(Buffer.from([0x61, 0xff, 0x62]), 1)], 'server');
    const out = await inflateAsync(wires, TAKEOVER);
    assert.equal(out.messages[0].utf8Valid, false);
    assert.deepEqual(out.messages[0].payload, Buffer.from([0x61, 0xff, 0x62]));
  });

  test('a compressed message cut by the frame cap loses the shared window', async () => {
    const first = randomBytes(5000);
    const bytes = Buffer.concat([compressedFrame(first), compressedFrame(Buffer.from('after'), 1), encodeFrame({ opcode: 1, payload: 'plain' })]);
    const wires = wireMessages([bytes], 'server', 1000);
    assert.equal(wires[0].payloadTruncated, true);
    const kept = await inflateAsync(wires, TAKEOVER);
    assert.equal(kept.messages[0].payloadTruncated, true);
    assert.deepEqual(kept.messages[0].payload, first.subarray(0, kept.messages[0].payload.length));
    assert.equal(kept.error, 'deflate-truncated');
    assert.equal(inflateSync(wires, TAKEOVER).error, 'deflate-truncated');
    const reset = await inflateAsync(wires, NO_TAKEOVER);
    assert.equal(reset.error, null);
    assert.deepEqual(texts(reset).slice(1), ['after', 'plain']);
  });

  test('compressed bytes piling up past the queue limit stop the inflater', async () => {
    const wires = wireMessages([compressedFrame(Buffer.alloc(100, 1)), compressedFrame(Buffer.alloc(100, 2))], 'server');
    const out = await inflateAsync(wires, TAKEOVER, { maxQueuedBytes: wires[0].payloadSize + 1 });
    assert.equal(out.error, 'deflate-backlog');
  });

  test('inflaters sharing a limiter of one deliver every message in order', async () => {
    const limiter = new InflateLimiter(1);
    const bytes = Buffer.concat(['a', 'b', 'c'].map((s) => compressedFrame(Buffer.from(s.repeat(2000)), 1)));
    const runs = await Promise.all([0, 1, 2].map(() => inflateAsync(wireMessages([bytes], 'server'), TAKEOVER, { limiter })));
    for (const run of runs) assert.deepEqual(texts(run), ['a', 'b', 'c'].map((s) => s.repeat(2000)));
  });

  test('an exception from the sink stops the inflater and is reported', async () => {
    const errors: Error[] = [];
    const inflater = new WsInflater(TAKEOVER, {
      message: () => {
        throw new Error('sink bug');
      },
      error: (err) => errors.push(err),
    });
    for (const wire of wireMessages([compressedFrame(Buffer.from('x'), 1)], 'server')) inflater.push(wire);
    await inflater.idle();
    assert.deepEqual(
      errors.map((e) => e.message),
      ['sink bug'],
    );
  });
});

// ---- real peers ----------------------------------------------------------------------------

interface Recording {
  fromClient: Buffer[];
  fromServer: Buffer[];
  closed: Promise<unknown>;
}

/** A TCP relay that forwards both ways and records what passed, like hopscope's own relay. */
async function startRecordingRelay(target: number): Promise<{ port: number; recording: Recording; server: net.Server }> {
  const recording: Recording = { fromClient: [], fromServer: [], closed: Promise.resolve() };
  const server = net.createServer((downstream) => {
    const upstream = net.connect(target, '127.0.0.1');
    downstream.on('data', (chunk) => {
      recording.fromClient.push(Buffer.from(chunk));
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      recording.fromServer.push(Buffer.from(chunk));
      downstream.write(chunk);
    });
    downstream.on('end', () => upstream.end());
    upstream.on('end', () => downstream.end());
    downstream.on('error', () => upstream.destroy());
    upstream.on('error', () => downstream.destroy());
    recording.closed = Promise.all([once(downstream, 'close'), once(upstream, 'close')]);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as net.AddressInfo).port, recording, server };
}

/** Splits a recorded direction into the HTTP head's header list and the bytes after it. */
function splitHead(chunks: Buffer[]): { headers: HeaderList; rest: Buffer } {
  const all = Buffer.concat(chunks);
  const end = all.indexOf('\r\n\r\n');
  assert.ok(end > 0, 'no end of HTTP head');
  const lines = all.subarray(0, end).toString('latin1').split('\r\n').slice(1);
  const headers = lines.map((line): [string, string] => {
    const colon = line.indexOf(':');
    return [line.slice(0, colon), line.slice(colon + 1).trim()];
  });
  return { headers, rest: all.subarray(end + 4) };
}

interface PeerRun {
  sentByClient: Array<string | Buffer>;
  sentByServer: Array<string | Buffer>;
  recording: Recording;
}

async function runPeers(deflateOptions: Record<string, unknown>, clientDeflate: Record<string, unknown>): Promise<PeerRun> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: { threshold: 0, ...deflateOptions } });
  await once(wss, 'listening');
  const relay = await startRecordingRelay((wss.address() as net.AddressInfo).port);
  const sentByClient: Array<string | Buffer> = [];
  const sentByServer: Array<string | Buffer> = [];
  wss.on('connection', (socket) => {
    socket.on('message', (data, isBinary) => {
      const echo = isBinary ? Buffer.from(data as Buffer) : `echo: ${data.toString()}`;
      sentByServer.push(echo);
      socket.send(echo);
    });
  });
  const client = new WebSocket(`ws://127.0.0.1:${relay.port}/chat`, { perMessageDeflate: { threshold: 0, ...clientDeflate } });
  await once(client, 'open');
  const send = (data: string | Buffer, options: { fin?: boolean; compress?: boolean } = {}) => {
    client.send(data, { binary: typeof data !== 'string', ...options });
  };
  const random = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 2654435761) >>> 24));
  const plan: Array<string | Buffer> = ['hello', 'hello again, hello', random, 'x'.repeat(200_000) + 'end', 'ünïcödé ✓', '', 'sent plain'];
  for (const data of plan.slice(0, -1)) send(data);
  send(plan[plan.length - 1], { compress: false });
  send('frag-one ', { fin: false });
  send('frag-two', { fin: true });
  sentByClient.push(...plan, 'frag-one frag-two');
  client.ping(Buffer.from('are you there'));
  await new Promise<void>((resolve) => {
    let echoes = 0;
    client.on('message', () => {
      if (++echoes === sentByClient.length) resolve();
    });
  });
  client.close(4001, 'bye ✓');
  await once(client, 'close');
  await relay.recording.closed;
  relay.server.close();
  wss.close();
  return { sentByClient, sentByServer, recording: relay.recording };
}

async function decodeDirection(bytes: Buffer, side: Side, params: DeflateDirectionParams, chunkSize: number): Promise<WsMessage[]> {
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += chunkSize) chunks.push(bytes.subarray(at, at + chunkSize));
  const wires = wireMessages(chunks, side);
  const async = await inflateAsync(wires, params);
  assert.equal(async.error, null);
  assert.deepEqual(inflateSync(wires, params), async, 'the sync inflater agrees');
  return async.messages;
}

function dataOf(messages: WsMessage[]): WsMessage[] {
  return messages.filter((m) => m.name === 'text' || m.name === 'binary');
}

const contentOf = (m: WsMessage) => (m.name === 'text' ? m.text : m.payload);

async function checkRealPeers(deflateOptions: Record<string, unknown>, clientDeflate: Record<string, unknown>, expected: { client: DeflateDirectionParams; server: DeflateDirectionParams }) {
  const run = await runPeers(deflateOptions, clientDeflate);
  const request = splitHead(run.recording.fromClient);
  const response = splitHead(run.recording.fromServer);
  const negotiated = negotiateDeflate(request.headers, response.headers);
  assert.ok(negotiated);
  assert.deepEqual([negotiated.client, negotiated.server, negotiated.problems], [expected.client, expected.server, []]);

  const fromClient = await decodeDirection(request.rest, 'client', negotiated.client, 1000);
  const fromServer = await decodeDirection(response.rest, 'server', negotiated.server, 777);
  const dataFromClient = dataOf(fromClient);
  assert.deepEqual(dataFromClient.map(contentOf), run.sentByClient);
  assert.deepEqual(
    dataFromClient.map((m) => m.compressed),
    [true, true, true, true, true, true, false, true],
  );
  assert.equal(dataFromClient[dataFromClient.length - 1].frames, 2);
  const dataFromServer = dataOf(fromServer);
  assert.deepEqual(dataFromServer.map(contentOf), run.sentByServer);
  assert.ok(dataFromServer.every((m) => m.compressed && m.utf8Valid !== false));

  const ping = fromClient.find((m) => m.name === 'ping');
  assert.equal(ping?.payload.toString(), 'are you there');
  assert.equal(fromServer.find((m) => m.name === 'pong')?.payload.toString(), 'are you there');
  assert.deepEqual(fromClient[fromClient.length - 1].close, { code: 4001, reason: 'bye ✓', codeValid: true });
  assert.deepEqual(fromServer[fromServer.length - 1].close, { code: 4001, reason: 'bye ✓', codeValid: true });
}

describe('permessage-deflate between real ws peers', { timeout: 10_000 }, () => {
  test('with context takeover', async () => {
    await checkRealPeers({}, {}, { client: TAKEOVER, server: TAKEOVER });
  });

  test('without context takeover and with small windows', async () => {
    await checkRealPeers(
      { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 11 },
      { clientMaxWindowBits: 11 },
      { client: { noContextTakeover: true, maxWindowBits: 11 }, server: { noContextTakeover: true, maxWindowBits: 10 } },
    );
  });
});
