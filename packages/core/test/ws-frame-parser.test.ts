import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Side } from '../src/capture/events.js';
import { type WsFrame, type WsFrameParserOptions, WsFrameParser } from '../src/decode/ws/frame-parser.js';
import { type WsMessage, WsMessageAssembler, describeMessage } from '../src/decode/ws/message-assembler.js';
import { WsDecodeError } from '../src/decode/ws/ws-errors.js';
import { encodeFrame, everyCut } from './helpers/ws-encode.js';

const hex = (text: string) => Buffer.from(text.replace(/0x|\s/g, ''), 'hex');
const MASK = hex('37fa213d');

interface Outcome {
  frames: WsFrame[];
  messages: WsMessage[];
  error: string | null;
}

/** Parser + assembler over the chunks; a decode error ends the run and is recorded by code. */
function decode(chunks: Buffer[], options: WsFrameParserOptions, deflate = false): Outcome {
  const parser = new WsFrameParser(options);
  const assembler = new WsMessageAssembler({ deflate });
  const outcome: Outcome = { frames: [], messages: [], error: null };
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
        outcome.frames.push(frame);
        const wire = assembler.push(frame);
        if (wire) outcome.messages.push(describeMessage(wire));
      }
      if (parseError) throw parseError;
    }
  } catch (err) {
    if (!(err instanceof WsDecodeError)) throw err;
    outcome.error = err.code;
  }
  return outcome;
}

/** Decodes the bytes cut every way and checks that every cut gives the same outcome. */
function decodeEveryCut(bytes: Buffer, options: WsFrameParserOptions, deflate = false, stride = 1): Outcome {
  const expected = decode([bytes], options, deflate);
  for (const [label, chunks] of everyCut(bytes, 20, stride)) {
    assert.deepEqual(decode(chunks, options, deflate), expected, label);
  }
  return expected;
}

const server: WsFrameParserOptions = { side: 'server' };
const client: WsFrameParserOptions = { side: 'client' };

describe('WebSocket frames: RFC 6455 §5.7 examples', { timeout: 10_000 }, () => {
  test('a single-frame unmasked text message', () => {
    const out = decodeEveryCut(hex('0x81 0x05 0x48 0x65 0x6c 0x6c 0x6f'), server);
    assert.equal(out.error, null);
    assert.equal(out.frames.length, 1);
    const [frame] = out.frames;
    assert.deepEqual(
      { fin: frame.fin, opcode: frame.opcode, name: frame.name, masked: frame.masked, maskKey: frame.maskKey },
      { fin: true, opcode: 1, name: 'text', masked: false, maskKey: null },
    );
    assert.equal(frame.payload.toString(), 'Hello');
    assert.equal(frame.wireSize, 7);
    assert.equal(out.messages[0].text, 'Hello');
    assert.equal(out.messages[0].utf8Valid, true);
  });

  test('a single-frame masked text message is unmasked', () => {
    const out = decodeEveryCut(hex('0x81 0x85 0x37 0xfa 0x21 0x3d 0x7f 0x9f 0x4d 0x51 0x58'), client);
    assert.equal(out.error, null);
    const [frame] = out.frames;
    assert.equal(frame.masked, true);
    assert.deepEqual(frame.maskKey, MASK);
    assert.equal(frame.payload.toString(), 'Hello');
    assert.equal(frame.wireSize, 11);
    assert.equal(out.messages[0].text, 'Hello');
  });

  test('a fragmented unmasked text message', () => {
    const out = decodeEveryCut(hex('0x01 0x03 0x48 0x65 0x6c 0x80 0x02 0x6c 0x6f'), server);
    assert.equal(out.error, null);
    assert.deepEqual(
      out.frames.map((f) => [f.fin, f.name, f.payload.toString()]),
      [
        [false, 'text', 'Hel'],
        [true, 'continuation', 'lo'],
      ],
    );
    assert.equal(out.messages.length, 1);
    assert.deepEqual(
      { name: out.messages[0].name, frames: out.messages[0].frames, wireSize: out.messages[0].wireSize, text: out.messages[0].text },
      { name: 'text', frames: 2, wireSize: 9, text: 'Hello' },
    );
  });

  test('an unmasked ping and a masked pong', () => {
    const ping = decodeEveryCut(hex('0x89 0x05 0x48 0x65 0x6c 0x6c 0x6f'), server);
    assert.deepEqual(
      ping.messages.map((m) => [m.name, m.payload.toString()]),
      [['ping', 'Hello']],
    );
    const pong = decodeEveryCut(hex('0x8a 0x85 0x37 0xfa 0x21 0x3d 0x7f 0x9f 0x4d 0x51 0x58'), client);
    assert.deepEqual(
      pong.messages.map((m) => [m.name, m.payload.toString()]),
      [['pong', 'Hello']],
    );
  });

  test('256 bytes of binary with a 16-bit length', () => {
    const payload = Buffer.from(Array.from({ length: 256 }, (_, i) => (i * 7) & 0xff));
    const bytes = Buffer.concat([hex('0x82 0x7E 0x01 0x00'), payload]);
    const out = decodeEveryCut(bytes, server);
    assert.equal(out.frames[0].payloadLength, 256);
    assert.equal(out.frames[0].wireSize, 260);
    assert.deepEqual(out.messages[0].payload, payload);
    assert.equal(out.messages[0].name, 'binary');
  });

  test('64 KiB of binary with a 64-bit length', { timeout: 10_000 }, () => {
    const payload = Buffer.from(Array.from({ length: 65536 }, (_, i) => (i * 13) & 0xff));
    const bytes = Buffer.concat([hex('0x82 0x7F 0x00 0x00 0x00 0x00 0x00 0x01 0x00 0x00'), payload]);
    const out = decodeEveryCut(bytes, server, false, 31);
    assert.equal(out.frames[0].payloadLength, 65536);
    assert.equal(out.frames[0].wireSize, 65546);
    assert.deepEqual(out.messages[0].payload, payload);
  });
});

describe('WebSocket messages', { timeout: 10_000 }, () => {
  test('control frames inside a fragmented message come out on their own, in order', () => {
    const bytes = Buffer.concat([
      encodeFrame({ opcode: 1, fin: false, payload: 'Hel', mask: MASK }),
      encodeFrame({ opcode: 9, payload: 'p1', mask: MASK }),
      encodeFrame({ opcode: 0, fin: false, payload: 'l', mask: MASK }),
      encodeFrame({ opcode: 10, payload: '', mask: MASK }),
      encodeFrame({ opcode: 0, payload: 'o', mask: MASK }),
      encodeFrame({ opcode: 2, payload: Buffer.from([1, 2, 3]), mask: MASK }),
    ]);
    const out = decodeEveryCut(bytes, client);
    assert.equal(out.error, null);
    assert.deepEqual(
      out.messages.map((m) => [m.name, m.frames, m.payload.toString('hex')]),
      [
        ['ping', 1, Buffer.from('p1').toString('hex')],
        ['pong', 1, ''],
        ['text', 3, Buffer.from('Hello').toString('hex')],
        ['binary', 1, '010203'],
      ],
    );
    assert.equal(out.messages[2].text, 'Hello');
  });

  test('a close with code and reason', () => {
    const payload = Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from('going away ✓')]);
    const out = decodeEveryCut(encodeFrame({ opcode: 8, payload, mask: MASK }), client);
    assert.deepEqual(out.messages[0].close, { code: 1000, reason: 'going away ✓', codeValid: true });
    assert.equal(out.messages[0].utf8Valid, true);
  });

  test('an empty close, and a close code that may not be sent, are shown as such', () => {
    const empty = decode([encodeFrame({ opcode: 8 })], server);
    assert.deepEqual(empty.messages[0].close, { code: null, reason: '', codeValid: true });
    const forbidden = decode([encodeFrame({ opcode: 8, payload: Buffer.from([0x03, 0xed]) })], server);
    assert.deepEqual(forbidden.messages[0].close, { code: 1005, reason: '', codeValid: false });
  });

  test('invalid UTF-8 in a text message is flagged, not dropped', () => {
    const payload = Buffer.from([0x48, 0x69, 0xff, 0xc3, 0x28]);
    const out = decodeEveryCut(encodeFrame({ opcode: 1, payload }), server);
    assert.equal(out.messages[0].utf8Valid, false);
    assert.deepEqual(out.messages[0].payload, payload);
    assert.equal(out.messages[0].text, payload.toString('utf8'));
    const reason = decode([encodeFrame({ opcode: 8, payload: Buffer.from([0x03, 0xe8, 0xc0, 0x80]) })], server);
    assert.equal(reason.messages[0].utf8Valid, false);
  });

  test('a text message cut by the cap mid-character is not called invalid', () => {
    const parser = new WsFrameParser({ side: 'server', maxFramePayload: 4 });
    const [frame] = parser.push(encodeFrame({ opcode: 1, payload: 'abc€' }));
    assert.equal(frame.payloadTruncated, true);
    const wire = new WsMessageAssembler().push(frame)!;
    const message = describeMessage(wire);
    assert.equal(message.utf8Valid, true);
    assert.equal(message.text, 'abc');
  });

  test('message payloads over the cap are cut and flagged, sizes still counted', () => {
    const assembler = new WsMessageAssembler({ maxMessagePayload: 5 });
    const parser = new WsFrameParser({ side: 'server' });
    const frames = parser.push(
      Buffer.concat([encodeFrame({ opcode: 2, fin: false, payload: 'abcd' }), encodeFrame({ opcode: 0, payload: 'efgh' })]),
    );
    assert.equal(assembler.push(frames[0]), null);
    const wire = assembler.push(frames[1])!;
    assert.equal(wire.payload.toString(), 'abcde');
    assert.equal(wire.payloadTruncated, true);
    assert.equal(wire.payloadSize, 8);
    assert.equal(describeMessage(wire).decodedSize, 8);
  });

  test('a message still open at the end of the stream is handed out unfinished', () => {
    const assembler = new WsMessageAssembler();
    const [frame] = new WsFrameParser({ side: 'server' }).push(encodeFrame({ opcode: 1, fin: false, payload: 'par' }));
    assert.equal(assembler.push(frame), null);
    assert.equal(assembler.fragmenting, true);
    const wire = assembler.finish()!;
    assert.equal(wire.fin, false);
    assert.equal(wire.payload.toString(), 'par');
    assert.equal(assembler.finish(), null);
  });
});

describe('WebSocket frames: payload cap', { timeout: 10_000 }, () => {
  test('payload past maxFramePayload is counted and skipped, the next frame still parses', () => {
    const big = Buffer.alloc(300, 0x61);
    const bytes = Buffer.concat([encodeFrame({ opcode: 2, payload: big, mask: MASK }), encodeFrame({ opcode: 9, payload: 'x', mask: MASK })]);
    const out = decodeEveryCut(bytes, { side: 'client', maxFramePayload: 10 });
    assert.equal(out.frames.length, 2);
    assert.equal(out.frames[0].payload.length, 10);
    assert.equal(out.frames[0].payload.toString(), 'aaaaaaaaaa');
    assert.equal(out.frames[0].payloadLength, 300);
    assert.equal(out.frames[0].payloadTruncated, true);
    assert.equal(out.frames[0].wireSize, 2 + 2 + 4 + 300);
    assert.equal(out.frames[1].payload.toString(), 'x');
    assert.equal(out.frames[1].payloadTruncated, false);
  });

  test('pushing does not change the caller’s buffer', () => {
    const bytes = encodeFrame({ opcode: 1, payload: 'Hello', mask: MASK });
    const copy = Buffer.from(bytes);
    new WsFrameParser({ side: 'client' }).push(bytes);
    assert.deepEqual(bytes, copy);
  });
});

describe('WebSocket frames: protocol errors', { timeout: 10_000 }, () => {
  const cases: Array<[string, Side, Buffer, string, boolean?]> = [
    ['reserved data opcode', 'server', encodeFrame({ opcode: 3 }), 'bad-opcode'],
    ['reserved control opcode', 'server', encodeFrame({ opcode: 0xb }), 'bad-opcode'],
    ['ping over 125 bytes', 'server', encodeFrame({ opcode: 9, payload: Buffer.alloc(126) }), 'bad-control-frame'],
    ['fragmented close', 'server', encodeFrame({ opcode: 8, fin: false }), 'bad-control-frame'],
    ['64-bit length with the top bit', 'server', encodeFrame({ opcode: 2, lengthForm: 64, declaredLength: 1n << 63n }), 'bad-length'],
    ['64-bit length past 2^53', 'server', encodeFrame({ opcode: 2, lengthForm: 64, declaredLength: 1n << 60n }), 'bad-length'],
    ['unmasked client frame', 'client', encodeFrame({ opcode: 1, payload: 'hi' }), 'bad-mask'],
    ['masked server frame', 'server', encodeFrame({ opcode: 1, payload: 'hi', mask: MASK }), 'bad-mask'],
    ['RSV1 with no extension', 'server', encodeFrame({ opcode: 1, rsv1: true, payload: 'hi' }), 'bad-rsv'],
    ['RSV2 with no extension', 'server', encodeFrame({ opcode: 1, rsv2: true, payload: 'hi' }), 'bad-rsv'],
    ['continuation with no start', 'server', encodeFrame({ opcode: 0, payload: 'lo' }), 'bad-continuation'],
    [
      'a new message inside a fragmented one',
      'server',
      Buffer.concat([encodeFrame({ opcode: 1, fin: false, payload: 'a' }), encodeFrame({ opcode: 2, payload: 'b' })]),
      'bad-fragmentation',
    ],
    ['a 1-byte close payload', 'server', encodeFrame({ opcode: 8, payload: Buffer.from([3]) }), 'bad-close'],
    ['RSV1 on a continuation under deflate', 'server', Buffer.concat([encodeFrame({ opcode: 1, fin: false, rsv1: true, payload: 'a' }), encodeFrame({ opcode: 0, rsv1: true, payload: 'b' })]), 'bad-rsv', true],
    ['RSV1 on a ping under deflate', 'server', encodeFrame({ opcode: 9, rsv1: true }), 'bad-rsv', true],
  ];
  for (const [name, side, bytes, code, deflate] of cases) {
    test(`${name}: ${code} at every split point`, () => {
      const options: WsFrameParserOptions = { side, allowedRsv: { rsv1: deflate ?? false } };
      assert.equal(decodeEveryCut(bytes, options, deflate).error, code);
    });
  }

  test('RSV1 is accepted when the parser is told an extension uses it', () => {
    const out = decode([encodeFrame({ opcode: 1, rsv1: true, payload: 'x' })], { side: 'server', allowedRsv: { rsv1: true } });
    assert.equal(out.error, null);
    assert.equal(out.frames[0].rsv1, true);
  });

  test('frames before the error in the same push are kept, and the parser stays failed', () => {
    const parser = new WsFrameParser({ side: 'server' });
    const bytes = Buffer.concat([encodeFrame({ opcode: 1, payload: 'ok' }), encodeFrame({ opcode: 5 })]);
    const err = (() => {
      try {
        parser.push(bytes);
      } catch (e) {
        return e;
      }
      return null;
    })();
    assert.ok(err instanceof WsDecodeError);
    assert.equal(err.code, 'bad-opcode');
    assert.deepEqual(
      err.frames.map((f) => f.payload.toString()),
      ['ok'],
    );
    assert.throws(() => parser.push(encodeFrame({ opcode: 1 })), (e: unknown) => e instanceof WsDecodeError && e.code === 'bad-opcode');
  });

  test('midFrame tells whether the bytes end inside a frame', () => {
    const parser = new WsFrameParser({ side: 'server' });
    const bytes = encodeFrame({ opcode: 1, payload: 'Hello' });
    parser.push(bytes.subarray(0, 1));
    assert.equal(parser.midFrame, true);
    parser.push(bytes.subarray(1, 4));
    assert.equal(parser.midFrame, true);
    parser.push(bytes.subarray(4));
    assert.equal(parser.midFrame, false);
  });
});
