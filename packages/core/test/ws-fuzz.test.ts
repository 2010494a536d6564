// Fuzz targets for the WebSocket decoders: random and mutated input, bounded in iterations and
// time. Only WsDecodeError may escape, memory stays within the caps, and the outcome must not
// depend on how the bytes were cut.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import zlib from 'node:zlib';
import type { Side } from '../src/capture/events.js';
import { type DeflateDirectionParams, negotiateDeflate, parseExtensions } from '../src/decode/ws/extensions.js';
import { type WsFrame, WsFrameParser } from '../src/decode/ws/frame-parser.js';
import { WsInflater, WsSyncInflater } from '../src/decode/ws/inflater.js';
import { type WsMessage, type WsWireMessage, WsMessageAssembler } from '../src/decode/ws/message-assembler.js';
import { WsDecodeError } from '../src/decode/ws/ws-errors.js';
import { encodeFrame, randomChunks, seededRandom } from './helpers/ws-encode.js';

const MAX_FRAME_PAYLOAD = 64;
const LIMITS = { maxMessagePayload: 4096, maxDecodedSize: 256 * 1024, maxRatio: 50, ratioFloor: 16 * 1024 };
const OPCODES = [0, 1, 2, 8, 9, 10, 0, 1, 2, 3, 11];

type Random = () => number;
const int = (random: Random, n: number) => Math.floor(random() * n);
const bytesOf = (random: Random, n: number) => Buffer.from(Array.from({ length: n }, () => int(random, 256)));

function compressed(random: Random): Buffer {
  const text = Buffer.from('ab'.repeat(int(random, 200)) + String(random()));
  const out = zlib.deflateRawSync(text, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  return out.subarray(0, out.length - 4);
}

/** A stream of mostly plausible frames for one side, then mutated. */
function fuzzInput(random: Random, side: Side): Buffer {
  const frames: Buffer[] = [];
  for (let i = 1 + int(random, 6); i > 0; i--) {
    const opcode = OPCODES[int(random, OPCODES.length)];
    const deflated = random() < 0.3 && opcode < 3;
    const payload = deflated ? compressed(random) : bytesOf(random, random() < 0.8 ? int(random, 40) : int(random, 300));
    frames.push(
      encodeFrame({
        opcode,
        payload,
        fin: random() < 0.8,
        rsv1: deflated || random() < 0.05,
        rsv2: random() < 0.02,
        mask: (side === 'client') !== random() < 0.03 ? bytesOf(random, 4) : undefined,
        lengthForm: random() < 0.1 ? 64 : undefined,
        declaredLength: random() < 0.03 ? BigInt(int(random, 2 ** 31)) * BigInt(1 + int(random, 4096)) : undefined,
      }),
    );
  }
  const bytes = Buffer.concat(frames);
  for (let flips = int(random, 4); flips > 0 && bytes.length > 0; flips--) bytes[int(random, bytes.length)] ^= 1 << int(random, 8);
  if (random() < 0.2) return bytes.subarray(0, int(random, bytes.length + 1));
  if (random() < 0.1) return Buffer.concat([bytes, bytesOf(random, int(random, 20))]);
  return bytes;
}

interface Outcome {
  frames: WsFrame[];
  wires: WsWireMessage[];
  error: string | null;
}

function decode(chunks: Buffer[], side: Side): Outcome {
  const parser = new WsFrameParser({ side, maxFramePayload: MAX_FRAME_PAYLOAD, allowedRsv: { rsv1: true } });
  const assembler = new WsMessageAssembler({ deflate: true, maxMessagePayload: 256, maxCompressedPayload: 256 });
  const outcome: Outcome = { frames: [], wires: [], error: null };
  try {
    for (const chunk of chunks) {
      let frames: WsFrame[];
      let parseError: WsDecodeError | null = null;
      try {
        frames = parser.push(chunk);
      } catch (err) {
        if (!(err instanceof WsDecodeError)) throw err;
        frames = err.frames;
        parseError = err;
      }
      for (const frame of frames) {
        assert.ok(frame.payload.length <= MAX_FRAME_PAYLOAD, 'frame payload over the cap');
        outcome.frames.push(frame);
        const wire = assembler.push(frame);
        if (wire) outcome.wires.push(wire);
      }
      if (parseError) throw parseError;
    }
    const open = assembler.finish();
    if (open) outcome.wires.push(open);
  } catch (err) {
    if (!(err instanceof WsDecodeError)) throw err;
    outcome.error = err.code;
  }
  return outcome;
}

function inflateAll(wires: WsWireMessage[], params: DeflateDirectionParams = { noContextTakeover: false, maxWindowBits: 15 }) {
  const inflater = new WsSyncInflater(params, LIMITS);
  const messages: WsMessage[] = [];
  try {
    for (const wire of wires) messages.push(inflater.inflate(wire));
  } catch (err) {
    if (!(err instanceof WsDecodeError)) throw err;
    return { messages, error: err.code as string | null };
  }
  return { messages, error: null as string | null };
}

describe('WebSocket decoder fuzzing', { timeout: 10_000 }, () => {
  test('random and mutated frames: only WsDecodeError escapes, cuts do not matter', (t) => {
    const random = seededRandom(20240601);
    const deadline = performance.now() + 2_500;
    let runs = 0;
    const codes = new Set<string>();
    for (; runs < 3000 && performance.now() < deadline; runs++) {
      const side: Side = random() < 0.5 ? 'client' : 'server';
      const bytes = fuzzInput(random, side);
      const whole = decode([bytes], side);
      assert.deepEqual(decode(randomChunks(bytes, random, 1 + int(random, 24)), side), whole, `run ${runs}`);
      const pushed = whole.frames.reduce((sum, f) => sum + f.wireSize, 0);
      assert.ok(pushed <= bytes.length, 'frames claim more bytes than were pushed');
      if (whole.error) codes.add(whole.error);
      const inflated = inflateAll(whole.wires);
      if (inflated.error) codes.add(inflated.error);
      for (const message of inflated.messages) assert.ok(message.payload.length <= LIMITS.maxMessagePayload);
    }
    assert.ok(runs >= 200, `only ${runs} runs`);
    assert.ok(codes.size >= 5, `few error kinds reached: ${[...codes].join(', ')}`);
    t.diagnostic(`${runs} frame runs, errors reached: ${[...codes].sort().join(', ')}`);
  });

  test('mutated compressed messages through the async inflater', async (t) => {
    const random = seededRandom(99);
    const deadline = performance.now() + 2_000;
    let runs = 0;
    let compared = 0;
    for (; runs < 300 && performance.now() < deadline; runs++) {
      const wires: WsWireMessage[] = [];
      let mutated = false;
      for (let i = 1 + int(random, 4); i > 0; i--) {
        const payload = Buffer.from(compressed(random));
        for (let flips = int(random, 3); flips > 0; flips--) {
          payload[int(random, payload.length)] ^= 1 << int(random, 8);
          mutated = true;
        }
        const frame = new WsFrameParser({ side: 'server', allowedRsv: { rsv1: true } }).push(encodeFrame({ opcode: 1, rsv1: true, payload }))[0];
        wires.push(new WsMessageAssembler({ deflate: true }).push(frame)!);
      }
      const errors: Error[] = [];
      const delivered: WsMessage[] = [];
      const params = { noContextTakeover: random() < 0.5, maxWindowBits: 15 };
      const inflater = new WsInflater(params, { message: (m) => delivered.push(m), error: (e) => errors.push(e) }, LIMITS);
      for (const wire of wires) inflater.push(wire);
      await inflater.idle();
      inflater.close();
      assert.ok(errors.every((e) => e instanceof WsDecodeError), String(errors[0]));
      assert.ok(errors.length <= 1, 'one error at most, then the inflater stops');
      if (errors.length === 0) assert.equal(delivered.length, wires.length);
      if (!mutated) {
        // On well-formed streams the synchronous inflater (window as a preset dictionary) agrees
        // with the stream. A mutated message may not end on a block boundary; then the stream,
        // like the real peer, reads the next message wrong, where the sync one starts afresh.
        const sync = inflateAll(wires, params);
        assert.equal(errors.length, 0);
        assert.deepEqual(delivered, sync.messages, `run ${runs}`);
        compared += 1;
      }
    }
    assert.ok(runs >= 50 && compared >= 5, `only ${runs} runs, ${compared} compared`);
    t.diagnostic(`${runs} inflater runs, ${compared} compared with the sync inflater`);
  });

  test('random extension headers never throw', () => {
    const random = seededRandom(5);
    const alphabet = 'permessage-deflate;,= "\\\tclient_max_window_bits server_no_context_takeover 0123456789x';
    for (let run = 0; run < 3000; run++) {
      const text = Array.from({ length: int(random, 80) }, () => alphabet[int(random, alphabet.length)]).join('');
      parseExtensions(text);
      const result = negotiateDeflate([['Sec-WebSocket-Extensions', text]], [['Sec-WebSocket-Extensions', `permessage-deflate;${text}`]]);
      assert.ok(result);
      for (const params of [result.client, result.server]) assert.ok(params.maxWindowBits >= 8 && params.maxWindowBits <= 15);
    }
  });
});
