// A FIFO of received chunks. `take(n)` returns a view into the first chunk when the n bytes lie
// inside it and copies only when they span chunks. Private to the HTTP/2 decoder.

export class ChunkQueue {
  private chunks: Buffer[] = [];
  /** Index of the first live chunk (no Array.shift: thousands of tiny chunks stay linear). */
  private first = 0;
  /** Bytes already consumed from chunks[first]. */
  private offset = 0;
  private total = 0;

  get length(): number {
    return this.total;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** The byte at `index` from the front; the caller checks `index < length`. */
  byteAt(index: number): number {
    let i = index + this.offset;
    for (let c = this.first; c < this.chunks.length; c++) {
      const chunk = this.chunks[c];
      if (i < chunk.length) return chunk[i];
      i -= chunk.length;
    }
    throw new RangeError('ChunkQueue.byteAt past the end');
  }

  /** Removes and returns the first n bytes; the caller checks `n <= length`. */
  take(n: number): Buffer {
    if (n > this.total) throw new RangeError('ChunkQueue.take past the end');
    if (n === 0) return Buffer.alloc(0);
    this.total -= n;
    const head = this.chunks[this.first];
    if (head.length - this.offset >= n) {
      const view = head.subarray(this.offset, this.offset + n);
      this.offset += n;
      if (this.offset === head.length) this.dropFirst();
      return view;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[this.first];
      const count = Math.min(chunk.length - this.offset, n - filled);
      chunk.copy(out, filled, this.offset, this.offset + count);
      filled += count;
      this.offset += count;
      if (this.offset === chunk.length) this.dropFirst();
    }
    return out;
  }

  private dropFirst(): void {
    this.first++;
    this.offset = 0;
    if (this.first === this.chunks.length) {
      this.chunks = [];
      this.first = 0;
    } else if (this.first > 1024 && this.first * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.first);
      this.first = 0;
    }
  }
}
