// A FIFO of received chunks for the WebSocket frame parser. Header fields are read through
// `take(n)` (a view when the bytes lie in one chunk); payload bytes are copied out, so frames
// never alias (or mutate) the buffers the relay forwards.

export class WsChunkQueue {
  private chunks: Buffer[] = [];
  /** Bytes already consumed from chunks[0]. */
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

  /** Removes and returns the first n bytes; the caller checks `n <= length`. */
  take(n: number): Buffer {
    const first = this.chunks[0];
    if (first !== undefined && first.length - this.offset >= n) {
      const view = first.subarray(this.offset, this.offset + n);
      this.advance(n);
      return view;
    }
    const out = Buffer.allocUnsafe(n);
    this.copyInto(out, 0, n);
    return out;
  }

  /** Removes the first n bytes, copying them into target at targetOffset. */
  copyInto(target: Buffer, targetOffset: number, n: number): void {
    let written = 0;
    while (written < n) {
      const chunk = this.chunks[0];
      const step = Math.min(n - written, chunk.length - this.offset);
      chunk.copy(target, targetOffset + written, this.offset, this.offset + step);
      written += step;
      this.advance(step);
    }
  }

  /** Removes the first n bytes without reading them. */
  skip(n: number): void {
    let left = n;
    while (left > 0) {
      const step = Math.min(left, this.chunks[0].length - this.offset);
      left -= step;
      this.advance(step);
    }
  }

  private advance(n: number): void {
    this.offset += n;
    this.total -= n;
    if (this.offset === this.chunks[0].length) {
      this.chunks.shift();
      this.offset = 0;
    }
  }
}
