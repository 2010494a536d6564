// A queue of received buffers that the decoders (HTTP/1, HTTP/2, WebSocket) read from. It copies
// only when a read spans more than one buffer; body bytes can be taken as views into the pushed
// buffers, or copied out when a decoder must not alias what the relay forwards.

export class ByteQueue {
  private chunks: Buffer[] = [];
  /** Index of the first unread chunk; consumed chunks before it are compacted away lazily. */
  private first = 0;
  private total = 0;
  // Cache of where the last lookup landed (chunk index and its logical start), so forward scans
  // over many small chunks stay linear. Any consume invalidates it.
  private cacheChunk = 0;
  private cacheStart = 0;

  get length(): number {
    return this.total;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** The byte at logical position `pos` (0 = next unread byte). */
  byteAt(pos: number): number {
    if (pos < 0 || pos >= this.total) throw new RangeError(`byteAt(${pos}) outside 0..${this.total}`);
    const ci = this.locate(pos);
    return this.chunks[ci][pos - this.cacheStart];
  }

  /** Position of the first `byte` at or after `from`, or -1. */
  indexOf(byte: number, from = 0): number {
    if (from >= this.total) return -1;
    let ci = this.locate(Math.max(0, from));
    let start = this.cacheStart;
    let offset = Math.max(0, from) - start;
    while (ci < this.chunks.length) {
      const chunk = this.chunks[ci];
      const i = chunk.indexOf(byte, offset);
      if (i >= 0) {
        this.cacheChunk = ci;
        this.cacheStart = start;
        return start + i;
      }
      start += chunk.length;
      offset = 0;
      ci++;
    }
    return -1;
  }

  /** Removes and returns exactly `n` bytes; a view when they sit in one chunk, else a copy. */
  consume(n: number): Buffer {
    if (n > this.total) throw new RangeError(`consume(${n}) with ${this.total} queued`);
    if (n === 0) return Buffer.alloc(0);
    const head = this.chunks[this.first];
    if (head.length >= n) return this.take(n);
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const piece = this.take(Math.min(n - filled, this.chunks[this.first].length));
      piece.copy(out, filled);
      filled += piece.length;
    }
    return out;
  }

  /** Removes and returns up to `max` bytes from the first chunk only: never copies. */
  consumeUpTo(max: number): Buffer {
    if (this.total === 0 || max <= 0) return Buffer.alloc(0);
    return this.take(Math.min(max, this.chunks[this.first].length));
  }

  /** Removes the first `n` bytes, copying them into `target` at `targetOffset`. */
  copyInto(target: Buffer, targetOffset: number, n: number): void {
    let written = 0;
    while (written < n) {
      const piece = this.take(Math.min(n - written, this.chunks[this.first].length));
      piece.copy(target, targetOffset + written);
      written += piece.length;
    }
  }

  skip(n: number): void {
    let left = n;
    while (left > 0) left -= this.take(Math.min(left, this.chunks[this.first].length)).length;
  }

  /** Removes and returns everything queued. */
  drain(): Buffer {
    return this.consume(this.total);
  }

  private take(n: number): Buffer {
    const head = this.chunks[this.first];
    let piece: Buffer;
    if (n === head.length) {
      piece = head;
      this.first++;
      if (this.first === this.chunks.length) {
        this.chunks = [];
        this.first = 0;
      } else if (this.first > 64 && this.first * 2 > this.chunks.length) {
        this.chunks = this.chunks.slice(this.first);
        this.first = 0;
      }
    } else {
      piece = head.subarray(0, n);
      this.chunks[this.first] = head.subarray(n);
    }
    this.total -= n;
    this.cacheChunk = this.first;
    this.cacheStart = 0;
    return piece;
  }

  /** Index of the chunk holding `pos`; leaves that chunk's logical start in cacheStart. */
  private locate(pos: number): number {
    let ci = this.cacheChunk;
    let start = this.cacheStart;
    if (ci < this.first || pos < start) {
      ci = this.first;
      start = 0;
    }
    while (pos >= start + this.chunks[ci].length) {
      start += this.chunks[ci].length;
      ci++;
    }
    this.cacheChunk = ci;
    this.cacheStart = start;
    return ci;
  }
}
