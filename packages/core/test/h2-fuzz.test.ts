// Fuzzing the HTTP/2 frame parser and the HPACK decoder with random and mutated input: only the
// decoders' own error types may escape, memory stays bounded, and a failed decoder stays failed.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { H2DecodeError, H2FrameParser, type H2Event } from '../src/decode/h2/frame-parser.js';
import { HpackDecoder, HpackError } from '../src/decode/hpack/decoder.js';
import { STATIC_TABLE } from '../src/decode/hpack/static-table.js';
import {
  PREFACE,
  continuationFrame,
  dataFrame,
  frame,
  fromHex,
  headersFrame,
  hpackIndexed,
  hpackLiteral,
  hpackSizeUpdate,
  settingsFrame,
} from './helpers/h2-encode.js';

const opts = { timeout: 10_000 };
const TIME_BUDGET_MS = 2_500;

function prng(seed: number) {
  let s = seed >>> 0 || 1;
  const next = () => {
    // xorshift32
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
  const int = (n: number) => next() % n;
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  return { int, bytes, pick: <T>(xs: readonly T[]) => xs[int(xs.length)] };
}
type Rng = ReturnType<typeof prng>;

function mutate(rng: Rng, input: Buffer): Buffer {
  const out = Buffer.from(input);
  switch (rng.int(5)) {
    case 0: // flip a few bits
      for (let i = rng.int(4) + 1; i > 0 && out.length; i--) out[rng.int(out.length)] ^= 1 << rng.int(8);
      return out;
    case 1: // overwrite a byte with an interesting value
      if (out.length) out[rng.int(out.length)] = rng.pick([0, 0x7f, 0x80, 0xff, 0x3f, 0x20, 0x40, 0x10]);
      return out;
    case 2: // truncate
      return out.subarray(0, rng.int(out.length + 1));
    case 3: { // duplicate a region
      const at = rng.int(out.length + 1);
      const len = rng.int(16);
      return Buffer.concat([out.subarray(0, at), out.subarray(at, at + len), out.subarray(at)]);
    }
    default: { // insert random bytes
      const at = rng.int(out.length + 1);
      return Buffer.concat([out.subarray(0, at), rng.bytes(rng.int(8) + 1), out.subarray(at)]);
    }
  }
}

function chunked(rng: Rng, bytes: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; ) {
    const n = 1 + rng.int(rng.pick([3, 17, 200]));
    chunks.push(bytes.subarray(at, at + n));
    at += n;
  }
  return chunks;
}

function randomFrame(rng: Rng): Buffer {
  const type = rng.int(12);
  const flags = rng.pick([0, 0x1, 0x4, 0x5, 0x8, 0x20, 0x2c, rng.int(256)]);
  const streamId = rng.pick([0, 1, 3, 5, rng.int(2 ** 31)]);
  const payload = rng.bytes(rng.pick([0, 4, 5, 6, 8, 12, rng.int(64)]));
  return frame(type, flags, streamId, payload);
}

/** Feeds chunks until the end or an H2DecodeError; anything else thrown fails the test. */
function feedParser(parser: H2FrameParser, chunks: Buffer[], maxHeaderBlockSize: number, label: string): string {
  const input = chunks.reduce((n, c) => n + c.length, 0);
  let dataBytes = 0;
  const hpack = new HpackDecoder();
  let hpackOk = true;
  const check = (events: H2Event[]) => {
    for (const e of events) {
      if (e.type === 'frame' && e.frame.kind === 'data') dataBytes += e.frame.data.length;
      if (e.type !== 'header-block') continue;
      assert.ok(e.block.length <= maxHeaderBlockSize, `${label}: header block over cap`);
      // Assembled blocks go on to HPACK, as in the tap.
      if (hpackOk) hpackOk = feedHpack(hpack, e.block, 1 << 20, label) === 'ok';
    }
    assert.ok(dataBytes <= input, `${label}: more DATA out than bytes in`);
  };
  for (const chunk of chunks) {
    try {
      check(parser.push(chunk));
    } catch (err) {
      assert.ok(err instanceof H2DecodeError, `${label}: ${String(err)}`);
      check(err.eventsBefore);
      assert.throws(() => parser.push(Buffer.from([0])), (e: unknown) => e instanceof H2DecodeError && e.code === 'unusable');
      return err.code;
    }
  }
  return 'ok';
}

/** Decodes a block; returns false once the decoder has failed (with an HpackError only). */
function feedHpack(decoder: HpackDecoder, block: Buffer, maxList: number, label: string): string {
  try {
    const { headerListSize, fields } = decoder.decodeBlock(block);
    assert.ok(headerListSize <= maxList, `${label}: header list over cap`);
    assert.equal(headerListSize, fields.reduce((n, f) => n + f.name.length + f.value.length + 32, 0));
    const entries = decoder.tableEntries();
    assert.equal(decoder.tableSize, entries.reduce((n, [k, v]) => n + k.length + v.length + 32, 0), `${label}: table size`);
    assert.ok(decoder.tableSize <= decoder.tableMaxSize, `${label}: table over its max`);
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof HpackError, `${label}: ${String(err)}`);
    assert.throws(() => decoder.decode(Buffer.from([0x82])), (e: unknown) => e instanceof HpackError && e.code === 'unusable');
    return err.code;
  }
}

function fuzzLoop(iterations: number, body: (rng: Rng, label: string) => void): void {
  const started = performance.now();
  let done = 0;
  for (; done < iterations && performance.now() - started < TIME_BUDGET_MS; done++) {
    const seed = 0x9e3779b9 ^ (done * 2654435761);
    body(prng(seed), `iteration ${done} (seed ${seed >>> 0})`);
  }
  assert.ok(done >= Math.min(iterations, 200), `only ${done} iterations ran within the time budget`);
}

const VALID_BLOCKS = [
  '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
  '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
  '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
  '4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3',
  '4883 640e ffc1 c0bf',
].map(fromHex);

/** A block of fields that only reference the static table, with the header list it encodes. */
function generatedBlock(rng: Rng): { block: Buffer; fields: Array<[string, string]>; indexed: Array<[string, string]> } {
  const parts: Buffer[] = [];
  const fields: Array<[string, string]> = [];
  const indexed: Array<[string, string]> = [];
  if (rng.int(4) === 0) parts.push(hpackSizeUpdate(rng.pick([0, 100, 4096])));
  for (let i = rng.int(6) + 1; i > 0; i--) {
    const value = rng.bytes(rng.int(20)).toString('latin1');
    const index = 1 + rng.int(61);
    const huffman = rng.int(2) === 1;
    switch (rng.int(3)) {
      case 0:
        parts.push(hpackIndexed(index));
        fields.push([...STATIC_TABLE[index]]);
        break;
      case 1: {
        const kind = rng.pick(['incremental', 'without', 'never'] as const);
        parts.push(hpackLiteral(kind, index, value, huffman));
        fields.push([STATIC_TABLE[index][0], value]);
        if (kind === 'incremental') indexed.push([STATIC_TABLE[index][0], value]);
        break;
      }
      default: {
        const name = `x-${rng.int(1000)}`;
        parts.push(hpackLiteral('incremental', name, value, huffman));
        fields.push([name, value]);
        indexed.push([name, value]);
      }
    }
  }
  return { block: Buffer.concat(parts), fields, indexed };
}

function validBlock(rng: Rng): Buffer {
  return rng.int(3) === 0 ? rng.pick(VALID_BLOCKS) : generatedBlock(rng).block;
}

describe('fuzz: HTTP/2 frame parser', opts, () => {
  test('random bytes, with and without the preface', opts, () => {
    const outcomes = new Set<string>();
    fuzzLoop(1500, (rng, label) => {
      const withPreface = rng.int(2) === 1;
      const body = Buffer.concat([rng.int(2) ? settingsFrame([]) : Buffer.alloc(0), rng.bytes(rng.int(300))]);
      const preface = rng.int(4) === 0 ? mutate(rng, PREFACE) : PREFACE;
      const bytes = withPreface ? Buffer.concat([preface, body]) : body;
      outcomes.add(feedParser(new H2FrameParser({ expectPreface: withPreface }), chunked(rng, bytes), 1 << 20, label));
    });
    // Random frame headers mostly announce lengths over 16384; the frame fuzz below reaches deeper.
    for (const code of ['bad-preface', 'frame-size', 'ok']) assert.ok(outcomes.has(code), `never saw ${code}`);
  });

  test('random and mutated frame sequences in random chunks', opts, () => {
    const outcomes = new Set<string>();
    fuzzLoop(3000, (rng, label) => {
      const parts = [settingsFrame([[rng.int(10), rng.int(2 ** 32)]])];
      for (let i = rng.int(12); i > 0; i--) {
        parts.push(
          rng.pick([
            () => randomFrame(rng),
            () => dataFrame(1 + 2 * rng.int(4), rng.bytes(rng.int(40)), { padLength: rng.int(2) ? rng.int(10) : undefined }),
            () => headersFrame(1, validBlock(rng), { endHeaders: rng.int(3) > 0, padLength: rng.int(2) ? 2 : undefined }),
            () => continuationFrame(1, rng.bytes(rng.int(30)), rng.int(2) === 1),
          ])(),
        );
      }
      let bytes: Buffer = Buffer.concat(parts);
      for (let m = rng.int(3); m > 0; m--) bytes = mutate(rng, bytes);
      const maxHeaderBlockSize = rng.pick([64, 1 << 20]);
      const parser = new H2FrameParser({ expectPreface: false, maxHeaderBlockSize });
      outcomes.add(feedParser(parser, chunked(rng, bytes), maxHeaderBlockSize, label));
    });
    // The mutations reach every failure the parser has, and plenty of inputs still parse.
    assert.deepEqual([...outcomes].sort(), ['frame-size', 'header-block-too-large', 'ok', 'protocol']);
  });
});

describe('fuzz: HPACK decoder', opts, () => {
  test('random blocks and mutated valid blocks, several per decoder', opts, () => {
    const outcomes = new Set<string>();
    fuzzLoop(3000, (rng, label) => {
      const maxList = rng.pick([200, 1 << 20]);
      const decoder = new HpackDecoder({ maxTableSize: rng.pick([0, 256, 4096]), maxHeaderListSize: maxList });
      for (let i = 0; i < 4; i++) {
        const block = rng.int(4) === 0 ? rng.bytes(rng.int(64)) : mutate(rng, validBlock(rng));
        const outcome = feedHpack(decoder, block, maxList, `${label}, block ${i}`);
        outcomes.add(outcome);
        if (outcome !== 'ok') break;
      }
    });
    assert.deepEqual([...outcomes].sort(), [
      'bad-index', 'header-list-too-large', 'huffman-eos', 'huffman-padding', 'integer-overflow', 'ok',
      'size-update-position', 'size-update-too-large', 'truncated',
    ]);
  });

  test('generated blocks decode to what was encoded, and the table follows a model', opts, () => {
    fuzzLoop(1000, (rng, label) => {
      const decoder = new HpackDecoder({ maxTableSize: 4096 });
      let model: Array<[string, string]> = []; // newest first
      let max = 4096;
      const size = () => model.reduce((n, [k, v]) => n + k.length + v.length + 32, 0);
      for (let i = 0; i < 8; i++) {
        const { block, fields, indexed } = generatedBlock(rng);
        const decoded = decoder.decodeBlock(block);
        assert.deepEqual(decoded.fields.map((f) => [f.name, f.value]), fields, label);
        if (decoded.tableSizeUpdates.length) max = decoded.tableSizeUpdates.at(-1)!;
        while (size() > max) model.pop();
        for (const entry of indexed) {
          model = [entry, ...model];
          while (size() > max) model.pop();
        }
        assert.deepEqual(decoder.tableEntries(), model, label);
        assert.equal(decoder.tableSize, size(), label);
      }
    });
  });
});
