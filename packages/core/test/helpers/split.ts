// Replays a byte array cut in different ways, for decoders that must not care how bytes arrive.

/** Every way to cut `bytes` in two (including an empty first or last piece). */
export function* everySplit(bytes: Buffer): Generator<Buffer[]> {
  for (let i = 0; i <= bytes.length; i++) yield [bytes.subarray(0, i), bytes.subarray(i)];
}

/** A small deterministic generator (mulberry32) so failures can be replayed from the seed. */
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

/** Cuts `bytes` into chunks of 1..maxChunk bytes. */
export function randomChunks(bytes: Buffer, random: () => number, maxChunk = 16): Buffer[] {
  const chunks: Buffer[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const n = 1 + Math.floor(random() * maxChunk);
    chunks.push(bytes.subarray(pos, pos + n));
    pos += n;
  }
  return chunks;
}

/** Every split, then `rounds` random chunkings: the cuttings a decoder test replays. */
export function* cuttings(bytes: Buffer, seed = 1, rounds = 50): Generator<Buffer[]> {
  yield [bytes];
  yield* everySplit(bytes);
  const random = seededRandom(seed);
  for (let i = 0; i < rounds; i++) yield randomChunks(bytes, random, 1 + (i % 24));
}
