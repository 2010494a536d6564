// WebSocket frames by hand (RFC 6455 §5.2) for the peers `ws` cannot play: an RFC 8441 client on
// an HTTP/2 stream and an HTTP/2 server that accepts extended CONNECT. permessage-deflate (RFC 7692)
// without context takeover, so that each message inflates on its own.
import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';

export interface Frame {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  payload: Buffer;
}

const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/** One frame; `mask` for frames a client sends; `deflate` compresses the payload and sets RSV1. */
export function encodeFrame(opcode: number, data: Buffer | string, options: { mask: boolean; deflate?: boolean }): Buffer {
  let payload = Buffer.isBuffer(data) ? data : Buffer.from(data);
  if (options.deflate) {
    const out = zlib.deflateRawSync(payload, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    payload = out.subarray(0, out.length - TAIL.length);
  }
  const length = payload.length;
  const head = length < 126 ? Buffer.alloc(2) : length < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  head[0] = 0x80 | (options.deflate ? 0x40 : 0) | opcode;
  if (length < 126) head[1] = length;
  else if (length < 65536) {
    head[1] = 126;
    head.writeUInt16BE(length, 2);
  } else {
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(length), 2);
  }
  if (!options.mask) return Buffer.concat([head, payload]);
  head[1] |= 0x80;
  const key = randomBytes(4);
  const masked = Buffer.from(payload);
  for (let i = 0; i < masked.length; i++) masked[i] ^= key[i & 3];
  return Buffer.concat([head, key, masked]);
}

/** Reads whole frames from a byte stream; unmasks and (for RSV1) inflates payloads. */
export class FrameReader {
  private buffered = Buffer.alloc(0);
  readonly frames: Frame[] = [];
  private waiters: Array<() => void> = [];

  push(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    for (;;) {
      const b = this.buffered;
      if (b.length < 2) break;
      let length = b[1] & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (b.length < 4) break;
        length = b.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (b.length < 10) break;
        length = Number(b.readBigUInt64BE(2));
        offset = 10;
      }
      const masked = (b[1] & 0x80) !== 0;
      const key = masked ? b.subarray(offset, offset + 4) : null;
      if (masked) offset += 4;
      if (b.length < offset + length) break;
      let payload = Buffer.from(b.subarray(offset, offset + length));
      if (key) for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
      const rsv1 = (b[0] & 0x40) !== 0;
      if (rsv1) payload = zlib.inflateRawSync(Buffer.concat([payload, TAIL]), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
      this.frames.push({ fin: (b[0] & 0x80) !== 0, rsv1, opcode: b[0] & 0x0f, payload });
      this.buffered = b.subarray(offset + length);
    }
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves once `count` frames have arrived. */
  async until(count: number): Promise<Frame[]> {
    while (this.frames.length < count) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.frames;
  }
}
