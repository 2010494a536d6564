// A tiny HTTP/2 frame and HPACK encoder, for building test fixtures only. It writes whatever it is
// told, including malformed frames, so tests can feed the decoders both good and bad bytes.
import { HUFFMAN_CODES, HUFFMAN_LENGTHS } from '../../src/decode/hpack/huffman-table.js';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

type Bytes = Buffer | number[] | string;
const bytes = (b: Bytes): Buffer => (typeof b === 'string' ? Buffer.from(b, 'latin1') : Buffer.from(b));

/** One frame; `length` overrides the header's length field (for malformed frames). */
export function frame(type: number, flags: number, streamId: number, payload: Bytes = [], length?: number): Buffer {
  const body = bytes(payload);
  const header = Buffer.alloc(9);
  header.writeUIntBE(length ?? body.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId >>> 0, 5);
  return Buffer.concat([header, body]);
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};

interface Padding {
  /** Adds the PADDED flag, the Pad Length octet and this many zero bytes. */
  padLength?: number;
}

function padded(flags: number, body: Buffer, pad: Padding): [number, Buffer] {
  if (pad.padLength === undefined) return [flags, body];
  return [flags | 0x8, Buffer.concat([Buffer.from([pad.padLength]), body, Buffer.alloc(pad.padLength)])];
}

export function dataFrame(streamId: number, data: Bytes, opts: Padding & { endStream?: boolean } = {}): Buffer {
  const [flags, payload] = padded(opts.endStream ? 0x1 : 0, bytes(data), opts);
  return frame(0x0, flags, streamId, payload);
}

export interface PrioritySpec {
  exclusive?: boolean;
  dependency: number;
  /** 1..256 */
  weight: number;
}

const priorityBytes = (p: PrioritySpec) =>
  Buffer.concat([u32((p.exclusive ? 0x80000000 : 0) + p.dependency), Buffer.from([p.weight - 1])]);

export function headersFrame(
  streamId: number,
  fragment: Bytes,
  opts: Padding & { endStream?: boolean; endHeaders?: boolean; priority?: PrioritySpec } = {},
): Buffer {
  let flags = (opts.endStream ? 0x1 : 0) | (opts.endHeaders === false ? 0 : 0x4);
  let body = bytes(fragment);
  if (opts.priority) {
    flags |= 0x20;
    body = Buffer.concat([priorityBytes(opts.priority), body]);
  }
  const [allFlags, payload] = padded(flags, body, opts);
  return frame(0x1, allFlags, streamId, payload);
}

export const priorityFrame = (streamId: number, p: PrioritySpec) => frame(0x2, 0, streamId, priorityBytes(p));

export const rstStreamFrame = (streamId: number, errorCode: number) => frame(0x3, 0, streamId, u32(errorCode));

export function settingsFrame(entries: Array<[id: number, value: number]>, ack = false): Buffer {
  const body = Buffer.alloc(entries.length * 6);
  entries.forEach(([id, value], i) => {
    body.writeUInt16BE(id, i * 6);
    body.writeUInt32BE(value, i * 6 + 2);
  });
  return frame(0x4, ack ? 0x1 : 0, 0, body);
}

export function pushPromiseFrame(
  streamId: number,
  promised: number,
  fragment: Bytes,
  opts: Padding & { endHeaders?: boolean } = {},
): Buffer {
  const [flags, payload] = padded(opts.endHeaders === false ? 0 : 0x4, Buffer.concat([u32(promised), bytes(fragment)]), opts);
  return frame(0x5, flags, streamId, payload);
}

export const pingFrame = (data: Bytes, ack = false) => frame(0x6, ack ? 0x1 : 0, 0, data);

export const goawayFrame = (lastStreamId: number, errorCode: number, debug: Bytes = []) =>
  frame(0x7, 0, 0, Buffer.concat([u32(lastStreamId), u32(errorCode), bytes(debug)]));

export const windowUpdateFrame = (streamId: number, increment: number) => frame(0x8, 0, streamId, u32(increment));

export const continuationFrame = (streamId: number, fragment: Bytes, endHeaders = true) =>
  frame(0x9, endHeaders ? 0x4 : 0, streamId, fragment);

// ---- HPACK ---------------------------------------------------------------------------------

/** RFC 7541 §5.1 integer; `high` holds the representation bits above the prefix. */
export function hpackInt(value: number, prefixBits: number, high = 0): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [high | value];
  const out = [high | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return out;
}

export function huffmanEncode(input: Bytes): Buffer {
  const src = bytes(input);
  const out: number[] = [];
  let acc = 0n;
  let bits = 0n;
  for (const byte of src) {
    acc = (acc << BigInt(HUFFMAN_LENGTHS[byte])) | BigInt(HUFFMAN_CODES[byte]);
    bits += BigInt(HUFFMAN_LENGTHS[byte]);
    while (bits >= 8n) {
      bits -= 8n;
      out.push(Number((acc >> bits) & 0xffn));
    }
  }
  if (bits > 0n) out.push(Number(((acc << (8n - bits)) | ((1n << (8n - bits)) - 1n)) & 0xffn));
  return Buffer.from(out);
}

export function hpackString(value: Bytes, huffman = false): Buffer {
  const raw = huffman ? huffmanEncode(value) : bytes(value);
  return Buffer.concat([Buffer.from(hpackInt(raw.length, 7, huffman ? 0x80 : 0)), raw]);
}

export const hpackIndexed = (index: number) => Buffer.from(hpackInt(index, 7, 0x80));

export const hpackSizeUpdate = (size: number) => Buffer.from(hpackInt(size, 5, 0x20));

export type LiteralKind = 'incremental' | 'without' | 'never';

/** A literal field; `name` is a table index or a literal name. */
export function hpackLiteral(kind: LiteralKind, name: number | string, value: string, huffman = false): Buffer {
  const [prefix, high] = kind === 'incremental' ? [6, 0x40] : kind === 'never' ? [4, 0x10] : [4, 0x00];
  const head = Buffer.from(hpackInt(typeof name === 'number' ? name : 0, prefix, high));
  const nameBytes = typeof name === 'number' ? Buffer.alloc(0) : hpackString(name, huffman);
  return Buffer.concat([head, nameBytes, hpackString(value, huffman)]);
}

/** Hex as the RFC prints it ("8286 8441 ..."), whitespace ignored. */
export const fromHex = (hex: string) => Buffer.from(hex.replace(/\s+/g, ''), 'hex');
