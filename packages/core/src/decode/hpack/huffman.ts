// HPACK Huffman decoding (RFC 7541 §5.2), one input byte per table lookup.
//
// The code tree has 257 leaves and so exactly 256 internal nodes; a decoder state is "the internal
// node reached by the bits read since the last symbol". For every state and input byte the table
// holds the next state and the 0, 1 or 2 symbols completed on the way (codes are 5 bits or more).
import { HUFFMAN_CODES, HUFFMAN_LENGTHS } from './huffman-table.js';

export type HuffmanErrorCode = 'huffman-eos' | 'huffman-padding';

export class HuffmanError extends Error {
  override name = 'HuffmanError';
  constructor(
    readonly code: HuffmanErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const EOS = 256;
// Entry layout: bits 0-7 next state, 8-9 symbol count, 10-17 first symbol, 18-25 second, 26 EOS seen.
const COUNT_SHIFT = 8;
const SYM1_SHIFT = 10;
const SYM2_SHIFT = 18;
const EOS_BIT = 1 << 26;

const { transitions: TRANSITIONS, accepting: ACCEPTING } = buildTables();

function buildTables(): { transitions: Uint32Array; accepting: Uint8Array } {
  // children[node * 2 + bit]: >= 0 an internal node, < 0 a leaf holding symbol -(value + 1).
  const children = new Int16Array(256 * 2).fill(0x7fff);
  let nodes = 1;
  for (let sym = 0; sym <= EOS; sym++) {
    const code = HUFFMAN_CODES[sym];
    const length = HUFFMAN_LENGTHS[sym];
    let node = 0;
    for (let i = length - 1; i > 0; i--) {
      const slot = node * 2 + ((code >>> i) & 1);
      if (children[slot] === 0x7fff) children[slot] = nodes++;
      node = children[slot];
    }
    children[node * 2 + (code & 1)] = -(sym + 1);
  }
  if (nodes !== 256 || children.includes(0x7fff)) throw new Error('HPACK Huffman table is not a complete code');

  const transitions = new Uint32Array(256 * 256);
  for (let state = 0; state < 256; state++) {
    for (let byte = 0; byte < 256; byte++) {
      let node = state;
      let entry = 0;
      let count = 0;
      for (let bit = 7; bit >= 0; bit--) {
        const child = children[node * 2 + ((byte >>> bit) & 1)];
        if (child >= 0) {
          node = child;
          continue;
        }
        const sym = -child - 1;
        if (sym === EOS) {
          entry |= EOS_BIT;
          break;
        }
        entry |= sym << (count === 0 ? SYM1_SHIFT : SYM2_SHIFT);
        count++;
        node = 0;
      }
      transitions[(state << 8) | byte] = entry | (count << COUNT_SHIFT) | node;
    }
  }

  // Valid ends: the root, or up to 7 bits of padding, which must be the high bits of EOS (all ones).
  const accepting = new Uint8Array(256);
  let node = 0;
  accepting[node] = 1;
  for (let ones = 1; ones <= 7; ones++) {
    node = children[node * 2 + 1];
    accepting[node] = 1;
  }
  return { transitions, accepting };
}

let scratch = Buffer.allocUnsafe(4096);

/** Decodes a Huffman-coded string literal to a byte string (latin1, one char per octet). */
export function huffmanDecode(bytes: Buffer): string {
  // Each symbol takes at least 5 bits, so 8 input bytes give at most 12 symbols.
  const bound = Math.ceil((bytes.length * 8) / 5);
  if (scratch.length < bound) scratch = Buffer.allocUnsafe(Math.max(bound, scratch.length * 2));
  const out = scratch;
  let state = 0;
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const entry = TRANSITIONS[(state << 8) | bytes[i]];
    if (entry & EOS_BIT) throw new HuffmanError('huffman-eos', 'Huffman string contains the EOS symbol');
    const count = (entry >>> COUNT_SHIFT) & 3;
    if (count > 0) {
      out[n++] = (entry >>> SYM1_SHIFT) & 0xff;
      if (count > 1) out[n++] = (entry >>> SYM2_SHIFT) & 0xff;
    }
    state = entry & 0xff;
  }
  if (!ACCEPTING[state]) {
    throw new HuffmanError('huffman-padding', 'Huffman string ends in padding that is not 0-7 one bits');
  }
  return out.toString('latin1', 0, n);
}
