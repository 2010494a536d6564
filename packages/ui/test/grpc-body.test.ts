// gRPC bodies in the inspector: length-prefixed frames split, compressed ones inflated, and each
// message read as protobuf without a schema (`protoc --decode_raw` style). The bytes are the
// encoding guide's own examples, built by hand, so the decoder is checked against the spec.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { decodeRawMessage, formatRawMessage } from '../src/detail/protobuf-raw.js';
import { describeGrpcBody, isGrpcContentType, splitGrpcFrames } from '../src/detail/grpc-body.js';

const hex = (s: string) => Uint8Array.from(s.split(/\s+/).filter(Boolean).map((b) => parseInt(b, 16)));
const raw = (s: string) => {
  const fields = decodeRawMessage(hex(s));
  return fields === null ? null : formatRawMessage(fields);
};
/** One gRPC frame: flag byte, 4-byte big-endian length, payload. */
function frame(payload: Uint8Array, flags = 0): Uint8Array {
  const out = new Uint8Array(5 + payload.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, payload.length);
  out.set(payload, 5);
  return out;
}
const concat = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((p) => [...p]));

describe('protobuf without a schema', { timeout: 10_000 }, () => {
  test('the wire types: varint, length-delimited text, nested message, fixed32, fixed64, group', () => {
    assert.equal(raw('08 96 01'), '1: 150');
    assert.equal(raw('12 07 74 65 73 74 69 6e 67'), '2: "testing"');
    assert.equal(raw('1a 03 08 96 01'), '3 {\n  1: 150\n}');
    assert.equal(raw('0d 01 00 00 00'), '1: 0x00000001');
    assert.equal(raw('09 ef cd ab 90 78 56 34 12'), '1: 0x1234567890abcdef');
    assert.equal(raw('23 08 01 24'), '4 {\n  1: 1\n}', 'a group (wire types 3 and 4)');
    assert.equal(raw('08 ff ff ff ff ff ff ff ff ff 01'), '1: 18446744073709551615', 'int32 -1 is ten bytes');
    assert.equal(raw('08 01 08 02'), '1: 1\n1: 2', 'repeated fields stay in order');
    assert.equal(raw(''), '');
  });

  test('a Node Buffer that is a window on a larger pool reads its own bytes', () => {
    const pooled = Buffer.concat([Buffer.alloc(100, 0xee), Buffer.from('0978563412000000000d21436587', 'hex')]).subarray(100);
    assert.equal(formatRawMessage(decodeRawMessage(pooled)!), '1: 0x0000000012345678\n1: 0x87654321');
  });

  test('a length-delimited field that is neither text nor a message is bytes', () => {
    assert.equal(raw('1a 02 ff ff'), '3: <ff ff>');
    assert.equal(raw('1a 00'), '3: ""', 'empty reads as an empty string');
    assert.equal(raw('0a 02 0a 00'), '1 {\n  1: ""\n}', 'control bytes make it a message, not text');
  });

  test('malformed input is not a message', () => {
    for (const bad of ['08', '08 80', '0a 05 61', '0e 00', '24', '23 08 01', '00 01', '08 80 80 80 80 80 80 80 80 80 80 01']) {
      assert.equal(decodeRawMessage(hex(bad)), null, bad);
    }
  });

  test('nesting deeper than the limit stops as bytes instead of recursing on', () => {
    let bytes = hex('08 01');
    for (let i = 0; i < 60; i++) bytes = concat(Uint8Array.of(0x0a, bytes.length), bytes);
    const text = formatRawMessage(decodeRawMessage(bytes)!);
    assert.match(text, /^1 \{/);
    assert.match(text, /1: <0a /, 'the innermost levels are shown as bytes');
  });
});

describe('gRPC bodies', { timeout: 10_000 }, () => {
  test('content types', () => {
    for (const t of ['application/grpc', 'application/grpc+proto', 'application/grpc-web', 'application/grpc-web+proto; charset=x']) assert.ok(isGrpcContentType(t), t);
    for (const t of ['application/grpc+json', 'application/json', 'application/grpc-web-text', null]) assert.ok(!isGrpcContentType(t), String(t));
  });

  test('frames split, a cut-short last frame counted', () => {
    const split = splitGrpcFrames(concat(frame(hex('08 01')), frame(hex('08 02'), 1), frame(hex('08 03 08 04')).subarray(0, 7)));
    assert.deepEqual(split.frames.map((f) => [f.compressed, [...f.payload]]), [[false, [8, 1]], [true, [8, 2]]]);
    assert.equal(split.incomplete, 7);
  });

  test('messages described in order; gzip-compressed ones inflated; gRPC-Web trailers shown', async () => {
    const greeting = hex('0a 05 68 65 6c 6c 6f 10 03');
    const body = concat(frame(greeting), frame(Uint8Array.from(gzipSync(greeting)), 1), frame(new TextEncoder().encode('grpc-status: 0\r\ngrpc-message: OK\r\n'), 0x80));
    const text = await describeGrpcBody(body, 'gzip');
    const compressedSize = gzipSync(greeting).length;
    assert.equal(text, [
      'message 1 · 9 bytes\n1: "hello"\n2: 3',
      `message 2 · ${compressedSize} bytes, gzip → 9 bytes\n1: "hello"\n2: 3`,
      'trailers (gRPC-Web)\ngrpc-status: 0\r\ngrpc-message: OK',
    ].join('\n\n'));
  });

  test('what cannot be decoded says so and shows the bytes', async () => {
    assert.equal(await describeGrpcBody(frame(hex('ff ff'), 1), 'snappy'), 'message 1 · 2 bytes, compressed (snappy): not decoded\nff ff');
    assert.equal(await describeGrpcBody(frame(hex('0f')), null), 'message 1 · 1 bytes\nnot a protobuf message:\n0f');
    assert.equal(await describeGrpcBody(concat(frame(new Uint8Array(0)), hex('00 00')), null), 'message 1 · 0 bytes\n(empty)\n\n… 2 bytes of a message that did not arrive whole');
  });
});
