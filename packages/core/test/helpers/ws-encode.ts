// Test fixtures for the WebSocket decoders: a tiny frame encoder (RFC 6455 §5.2) that can also
// write what a correct encoder never would (reserved opcodes, wrong masks, long length forms),
// and helpers to replay bytes cut at every split point or in seeded random chunks.

export interface FrameSpec {
  opcode: number;
  payload?: Buffer | string;
  fin?: boolean;
  rsv1?: boolean;
  rsv2?: boolean;
  rsv3?: boolean;
  /** A 4-byte key masks the payload; omit for an unmasked frame. */
  mask?: Buffer;
  /** Force the length form: 7-bit, 16-bit or 64-bit (the RFC wants the shortest). */
  lengthForm?: 7 | 16 | 64;
  /** Override the declared length (for lies about the payload size). */
  declaredLength?: bigint;
}

export function encodeFrame(spec: FrameSpec): Buffer {
  const payload = typeof spec.payload === 'string' ? Buffer.from(spec.payload) : (spec.payload ?? Buffer.alloc(0));
  const length = spec.declaredLength ?? BigInt(payload.length);
  const form = spec.lengthForm ?? (length < 126n ? 7 : length < 65536n ? 16 : 64);
  const b0 =
    ((spec.fin ?? true) ? 0x80 : 0) | (spec.rsv1 ? 0x40 : 0) | (spec.rsv2 ? 0x20 : 0) | (spec.rsv3 ? 0x10 : 0) | (spec.opcode & 0x0f);
  const maskBit = spec.mask ? 0x80 : 0;
  let head: Buffer;
  if (form === 7) {
    head = Buffer.from([b0, maskBit | Number(length)]);
  } else if (form === 16) {
    head = Buffer.from([b0, maskBit | 126, 0, 0]);
    head.writeUInt16BE(Number(length), 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = b0;
    head[1] = maskBit | 127;
    head.writeBigUInt64BE(length, 2);
  }
  if (!spec.mask) return Buffer.concat([head, payload]);
  const masked = Buffer.from(payload);
  for (let i = 0; i < masked.length; i++) masked[i] ^= spec.mask[i & 3];
  return Buffer.concat([head, spec.mask, masked]);
}

/** Deterministic PRNG (mulberry32) so a failing random case can be replayed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The bytes cut in two at `at`. */
export function splitAt(bytes: Buffer, at: number): Buffer[] {
  return [bytes.subarray(0, at), bytes.subarray(at)];
}

/** The bytes cut into random chunks of 1..maxChunk bytes. */
export function randomChunks(bytes: Buffer, random: () => number, maxChunk = 16): Buffer[] {
  const chunks: Buffer[] = [];
  let at = 0;
  while (at < bytes.length) {
    const n = 1 + Math.floor(random() * maxChunk);
    chunks.push(bytes.subarray(at, at + n));
    at += n;
  }
  return chunks;
}

/**
 * Every way the tests cut a fixture: whole, at every split point, and `randomRuns` seeded random
 * chunkings. Each entry is a label (for failure messages) and the chunks. For big fixtures,
 * `stride` > 1 keeps every split point in the first and last 1 KiB and every stride-th between.
 */
export function* everyCut(bytes: Buffer, randomRuns = 20, stride = 1, seed = 7): Generator<[string, Buffer[]]> {
  yield ['whole', [bytes]];
  for (let at = 0; at <= bytes.length; at++) {
    const edge = at < 1024 || at > bytes.length - 1024;
    if (edge || at % stride === 0) yield [`split at ${at}`, splitAt(bytes, at)];
  }
  const random = seededRandom(seed);
  for (let run = 0; run < randomRuns; run++) yield [`random run ${run}`, randomChunks(bytes, random, 1 + run * 3)];
}
