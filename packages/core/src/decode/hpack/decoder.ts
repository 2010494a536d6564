// HPACK decoder (RFC 7541): one per direction of an HTTP/2 connection, fed complete header blocks
// in order. Names and values are byte strings (latin1: one char per octet, nothing lost), so sizes
// in octets are string lengths.
//
// After any HpackError the dynamic table may be half-updated and cannot resynchronise with the
// encoder: the decoder is unusable from then on (every later call throws code `unusable`), and the
// caller goes opaque for the rest of the connection.
import { HuffmanError, huffmanDecode } from './huffman.js';
import { STATIC_TABLE, STATIC_TABLE_LENGTH } from './static-table.js';

export type HpackErrorCode =
  | 'truncated' // the block ends inside a representation
  | 'integer-overflow' // an integer over 2^32-1 or with too many continuation octets
  | 'bad-index' // index 0, or past the end of the static + dynamic tables
  | 'huffman-eos' // a Huffman string contains EOS
  | 'huffman-padding' // Huffman padding longer than 7 bits or not all ones
  | 'size-update-position' // a dynamic table size update after a header field
  | 'size-update-too-large' // a size update over the limit set by SETTINGS_HEADER_TABLE_SIZE
  | 'header-list-too-large' // decoded fields over maxHeaderListSize (HPACK bombs)
  | 'unusable'; // called again after an error

export class HpackError extends Error {
  override name = 'HpackError';
  constructor(
    readonly code: HpackErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export type HpackRepresentation =
  | 'indexed'
  | 'literal-incremental'
  | 'literal-without-indexing'
  | 'literal-never-indexed';

export interface HpackField {
  name: string;
  value: string;
  representation: HpackRepresentation;
  /** The table index of the field (indexed) or of its name (literal with an indexed name). */
  index?: number;
  /** The literal value was Huffman-coded. */
  huffman?: boolean;
  /** The literal name was Huffman-coded (only when the name was a literal). */
  nameHuffman?: boolean;
}

export interface HpackBlock {
  fields: HpackField[];
  /** Dynamic table size updates at the start of the block, in order. */
  tableSizeUpdates: number[];
  /** RFC 9113 §6.5.2 size: sum of name + value + 32 over the fields. */
  headerListSize: number;
}

export interface HpackDecoderOptions {
  /** SETTINGS_HEADER_TABLE_SIZE of the receiving peer: the limit for size updates. Default 4096. */
  maxTableSize?: number;
  /** Cap on a block's decoded header list size (name + value + 32 per field). Default 1 MiB. */
  maxHeaderListSize?: number;
}

const ENTRY_OVERHEAD = 32;

export class HpackDecoder {
  /** Dynamic table, oldest first from `head`; the newest entry is index 62. */
  private entries: Array<[string, string]> = [];
  private head = 0;
  private size = 0;
  private maxSize: number;
  private limit: number;
  private readonly maxHeaderListSize: number;
  private failure: HpackError | null = null;
  private pos = 0;

  constructor(options: HpackDecoderOptions = {}) {
    this.limit = this.maxSize = options.maxTableSize ?? 4096;
    this.maxHeaderListSize = options.maxHeaderListSize ?? 1024 * 1024;
  }

  /** Current dynamic table size in octets (RFC 7541 §4.1). */
  get tableSize(): number {
    return this.size;
  }

  /** Current maximum size of the dynamic table, as last set by the encoder. */
  get tableMaxSize(): number {
    return this.maxSize;
  }

  /** Dynamic table entries, newest (index 62) first. */
  tableEntries(): Array<[name: string, value: string]> {
    return this.entries.slice(this.head).reverse();
  }

  /** Follow a SETTINGS_HEADER_TABLE_SIZE from the peer that receives this direction. */
  setMaxTableSizeLimit(limit: number): void {
    this.limit = limit;
  }

  decode(block: Buffer): HpackField[] {
    return this.decodeBlock(block).fields;
  }

  decodeBlock(block: Buffer): HpackBlock {
    if (this.failure) throw new HpackError('unusable', `decoder failed earlier: ${this.failure.message}`);
    try {
      return this.run(block);
    } catch (err) {
      this.failure = err instanceof HpackError ? err : new HpackError('unusable', `internal error: ${String(err)}`);
      throw err;
    }
  }

  private run(block: Buffer): HpackBlock {
    const fields: HpackField[] = [];
    const tableSizeUpdates: number[] = [];
    let headerListSize = 0;
    this.pos = 0;
    while (this.pos < block.length) {
      const first = block[this.pos];
      let field: HpackField;
      if (first & 0x80) {
        const index = this.readInt(block, 7);
        const [name, value] = this.lookup(index);
        field = { name, value, representation: 'indexed', index };
      } else if ((first & 0xe0) === 0x20) {
        if (fields.length > 0) {
          throw new HpackError('size-update-position', 'dynamic table size update after a header field');
        }
        const size = this.readInt(block, 5);
        if (size > this.limit) {
          throw new HpackError('size-update-too-large', `table size update to ${size} exceeds the limit ${this.limit}`);
        }
        this.maxSize = size;
        this.evict(0);
        tableSizeUpdates.push(size);
        continue;
      } else if (first & 0x40) {
        field = this.readLiteral(block, 6, 'literal-incremental');
        this.insert(field.name, field.value);
      } else {
        field = this.readLiteral(block, 4, first & 0x10 ? 'literal-never-indexed' : 'literal-without-indexing');
      }
      headerListSize += field.name.length + field.value.length + ENTRY_OVERHEAD;
      if (headerListSize > this.maxHeaderListSize) {
        throw new HpackError('header-list-too-large', `header list exceeds ${this.maxHeaderListSize} bytes`);
      }
      fields.push(field);
    }
    return { fields, tableSizeUpdates, headerListSize };
  }

  private readLiteral(block: Buffer, prefix: number, representation: HpackRepresentation): HpackField {
    const index = this.readInt(block, prefix);
    let name: string;
    let nameHuffman: boolean | undefined;
    if (index === 0) {
      nameHuffman = (block[this.pos] & 0x80) !== 0;
      name = this.readString(block);
    } else {
      name = this.lookup(index)[0];
    }
    const huffman = this.pos < block.length && (block[this.pos] & 0x80) !== 0;
    const value = this.readString(block);
    const field: HpackField = { name, value, representation, huffman };
    if (index === 0) field.nameHuffman = nameHuffman;
    else field.index = index;
    return field;
  }

  /** RFC 7541 §5.1 integer with an N-bit prefix, starting at this.pos. */
  private readInt(block: Buffer, prefixBits: number): number {
    const mask = (1 << prefixBits) - 1;
    let value = block[this.pos++] & mask;
    if (value < mask) return value;
    // Five continuation octets carry 35 bits, enough for any value up to 2^32-1.
    for (let shift = 0; shift <= 28; shift += 7) {
      if (this.pos >= block.length) throw new HpackError('truncated', 'header block ends inside an integer');
      const byte = block[this.pos++];
      value += (byte & 0x7f) * 2 ** shift;
      if (value > 0xffffffff) throw new HpackError('integer-overflow', 'integer exceeds 2^32-1');
      if (!(byte & 0x80)) return value;
    }
    throw new HpackError('integer-overflow', 'integer has too many continuation octets');
  }

  /** RFC 7541 §5.2 string literal, starting at this.pos. */
  private readString(block: Buffer): string {
    if (this.pos >= block.length) throw new HpackError('truncated', 'header block ends before a string literal');
    const huffman = (block[this.pos] & 0x80) !== 0;
    const length = this.readInt(block, 7);
    const end = this.pos + length;
    if (end > block.length) {
      throw new HpackError('truncated', `string literal of ${length} bytes runs past the end of the block`);
    }
    const start = this.pos;
    this.pos = end;
    if (!huffman) return block.toString('latin1', start, end);
    try {
      return huffmanDecode(block.subarray(start, end));
    } catch (err) {
      if (err instanceof HuffmanError) throw new HpackError(err.code, err.message);
      throw err;
    }
  }

  private lookup(index: number): readonly [string, string] {
    if (index === 0) throw new HpackError('bad-index', 'index 0 is not valid');
    if (index <= STATIC_TABLE_LENGTH) return STATIC_TABLE[index];
    const at = this.entries.length - (index - STATIC_TABLE_LENGTH);
    if (at < this.head) {
      const count = this.entries.length - this.head;
      throw new HpackError('bad-index', `index ${index} is past the end of the table (${count} dynamic entries)`);
    }
    return this.entries[at];
  }

  private insert(name: string, value: string): void {
    const entrySize = name.length + value.length + ENTRY_OVERHEAD;
    this.evict(entrySize);
    // An entry larger than the table empties it and is not added (RFC 7541 §4.4).
    if (entrySize > this.maxSize) return;
    this.entries.push([name, value]);
    this.size += entrySize;
  }

  /** Evicts the oldest entries until `incoming` more octets fit under the max size. */
  private evict(incoming: number): void {
    while (this.size + incoming > this.maxSize && this.head < this.entries.length) {
      const [name, value] = this.entries[this.head++];
      this.size -= name.length + value.length + ENTRY_OVERHEAD;
    }
    if (this.head === this.entries.length) {
      this.entries = [];
      this.head = 0;
    } else if (this.head > 64 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}
