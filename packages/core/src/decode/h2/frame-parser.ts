// HTTP/2 frame parser (RFC 9113 §3.4, §4, §6): one per direction, `push(bytes) → events`.
// Frames that lie inside one pushed chunk are returned as views into it (no copy); the caller
// must not reuse a chunk's memory after pushing it. A frame is held until it is complete, so
// memory per parser is bounded by maxFrameSize plus the header block being assembled.
import { ByteQueue } from '../byte-queue.js';
import { type FrameHeader, decodePayload, hasValidLength } from './frame-payload.js';
import { type H2Frame, type PriorityInfo, FrameType, H2DecodeError, frameTypeName } from './frame-types.js';

export { H2DecodeError, type H2DecodeErrorCode } from './frame-types.js';

export const CONNECTION_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const DEFAULT_MAX_FRAME_SIZE = 16_384;
export const LARGEST_MAX_FRAME_SIZE = 2 ** 24 - 1;
const FRAME_HEADER_SIZE = 9;

/** A complete header block: HEADERS or PUSH_PROMISE plus its CONTINUATIONs, ready for HPACK. */
export interface HeaderBlockEvent {
  type: 'header-block';
  streamId: number;
  /** Whether a HEADERS block opens a stream or carries trailers needs stream state: the tap's job. */
  kind: 'headers' | 'push-promise';
  promisedStreamId: number | null;
  block: Buffer;
  /** END_STREAM of the HEADERS frame (always false for PUSH_PROMISE). */
  endStream: boolean;
  priority: PriorityInfo | null;
  /** How many frames carried the block (1 when no CONTINUATION). */
  frameCount: number;
}

export type H2Event = { type: 'preface' } | { type: 'frame'; frame: H2Frame } | HeaderBlockEvent;

export interface H2FrameParserOptions {
  /** SETTINGS_MAX_FRAME_SIZE the receiver of this direction allows; default 16384, at most 2^24-1. */
  maxFrameSize?: number;
  /** True for the client → server direction, which starts with the 24-byte preface. */
  expectPreface: boolean;
  /** Cap on an assembled header block in bytes (CONTINUATION floods); default 1 MiB. */
  maxHeaderBlockSize?: number;
}

interface PendingBlock {
  streamId: number;
  kind: 'headers' | 'push-promise';
  promisedStreamId: number | null;
  endStream: boolean;
  priority: PriorityInfo | null;
  fragments: Buffer[];
  size: number;
}

const STREAM_REQUIRED = new Set<number>([
  FrameType.DATA,
  FrameType.HEADERS,
  FrameType.PRIORITY,
  FrameType.RST_STREAM,
  FrameType.PUSH_PROMISE,
  FrameType.CONTINUATION,
]);
const CONNECTION_ONLY = new Set<number>([FrameType.SETTINGS, FrameType.PING, FrameType.GOAWAY]);

export class H2FrameParser {
  private readonly queue = new ByteQueue();
  private state: 'preface' | 'header' | 'payload';
  private maxFrameSize: number;
  private readonly maxHeaderBlockSize: number;
  private header: FrameHeader | null = null;
  private pending: PendingBlock | null = null;
  private sawFirstFrame = false;
  private failure: H2DecodeError | null = null;

  constructor(options: H2FrameParserOptions) {
    this.maxFrameSize = checkMaxFrameSize(options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE);
    this.maxHeaderBlockSize = options.maxHeaderBlockSize ?? 1024 * 1024;
    this.state = options.expectPreface ? 'preface' : 'header';
  }

  /** Follow a SETTINGS_MAX_FRAME_SIZE from the peer that receives this direction. */
  setMaxFrameSize(size: number): void {
    this.maxFrameSize = checkMaxFrameSize(size);
  }

  /**
   * Decodes what the bytes complete. Throws H2DecodeError on a protocol error; after that the
   * parser is unusable (every later push throws code `unusable`): the caller goes opaque.
   */
  push(chunk: Buffer): H2Event[] {
    if (this.failure) {
      throw new H2DecodeError('unusable', `parser failed earlier: ${this.failure.message}`);
    }
    const events: H2Event[] = [];
    this.queue.push(chunk);
    try {
      this.run(events);
    } catch (err) {
      if (err instanceof H2DecodeError) {
        err.eventsBefore = events;
        this.failure = err;
      } else {
        this.failure = new H2DecodeError('unusable', `internal error: ${String(err)}`);
      }
      throw err;
    }
    return events;
  }

  private run(events: H2Event[]): void {
    for (;;) {
      if (this.state === 'preface') {
        if (!this.matchPreface()) return;
        this.queue.consume(CONNECTION_PREFACE.length);
        events.push({ type: 'preface' });
        this.state = 'header';
      } else if (this.state === 'header') {
        if (this.queue.length < FRAME_HEADER_SIZE) return;
        const raw = this.queue.consume(FRAME_HEADER_SIZE);
        this.header = {
          length: raw.readUIntBE(0, 3),
          type: raw[3],
          flags: raw[4],
          streamId: raw.readUInt32BE(5) & 0x7fffffff,
        };
        this.checkHeader(this.header);
        this.state = 'payload';
      } else {
        const header = this.header!;
        if (this.queue.length < header.length) return;
        const frame = decodePayload(header, this.queue.consume(header.length));
        const block = this.assemble(frame);
        events.push({ type: 'frame', frame });
        if (block) events.push(block);
        this.header = null;
        this.state = 'header';
      }
    }
  }

  /** True when the whole preface is queued; throws at the first byte that differs. */
  private matchPreface(): boolean {
    const have = Math.min(this.queue.length, CONNECTION_PREFACE.length);
    for (let i = 0; i < have; i++) {
      if (this.queue.byteAt(i) !== CONNECTION_PREFACE[i]) {
        throw new H2DecodeError('bad-preface', `connection preface differs at byte ${i}`);
      }
    }
    return have === CONNECTION_PREFACE.length;
  }

  /** Everything decidable from the 9-byte header, checked before the payload is buffered. */
  private checkHeader(h: FrameHeader): void {
    const name = frameTypeName(h.type);
    if (h.length > this.maxFrameSize) {
      throw new H2DecodeError('frame-size', `${name} frame of ${h.length} bytes exceeds max frame size ${this.maxFrameSize}`);
    }
    if (!this.sawFirstFrame) {
      this.sawFirstFrame = true;
      if (h.type !== FrameType.SETTINGS) throw new H2DecodeError('protocol', `first frame is ${name}, not SETTINGS`);
    }
    if (this.pending && (h.type !== FrameType.CONTINUATION || h.streamId !== this.pending.streamId)) {
      throw new H2DecodeError(
        'protocol',
        `${name} on stream ${h.streamId} interrupts the header block of stream ${this.pending.streamId}`,
      );
    }
    if (!this.pending && h.type === FrameType.CONTINUATION) {
      throw new H2DecodeError('protocol', `CONTINUATION on stream ${h.streamId} without a header block in progress`);
    }
    if (STREAM_REQUIRED.has(h.type) && h.streamId === 0) {
      throw new H2DecodeError('protocol', `${name} frame on stream 0`);
    }
    if (CONNECTION_ONLY.has(h.type) && h.streamId !== 0) {
      throw new H2DecodeError('protocol', `${name} frame on stream ${h.streamId}, must be 0`);
    }
    if (!hasValidLength(h)) {
      throw new H2DecodeError('frame-size', `${name} frame with bad length ${h.length}`);
    }
  }

  /** Tracks HEADERS/PUSH_PROMISE + CONTINUATION; returns the block once END_HEADERS arrives. */
  private assemble(frame: H2Frame): HeaderBlockEvent | null {
    let pending = this.pending;
    if (frame.kind === 'headers' || frame.kind === 'push-promise') {
      pending = {
        streamId: frame.streamId,
        kind: frame.kind,
        promisedStreamId: frame.kind === 'push-promise' ? frame.promisedStreamId : null,
        endStream: frame.kind === 'headers' && frame.endStream,
        priority: frame.kind === 'headers' ? frame.priority : null,
        fragments: [],
        size: 0,
      };
    } else if (frame.kind !== 'continuation' || !pending) {
      return null;
    }
    pending.fragments.push(frame.fragment);
    pending.size += frame.fragment.length;
    if (pending.size > this.maxHeaderBlockSize) {
      throw new H2DecodeError(
        'header-block-too-large',
        `header block on stream ${pending.streamId} exceeds ${this.maxHeaderBlockSize} bytes`,
      );
    }
    if (!frame.endHeaders) {
      this.pending = pending;
      return null;
    }
    this.pending = null;
    const { fragments } = pending;
    return {
      type: 'header-block',
      streamId: pending.streamId,
      kind: pending.kind,
      promisedStreamId: pending.promisedStreamId,
      block: fragments.length === 1 ? fragments[0] : Buffer.concat(fragments, pending.size),
      endStream: pending.endStream,
      priority: pending.priority,
      frameCount: fragments.length,
    };
  }
}

function checkMaxFrameSize(size: number): number {
  if (!Number.isInteger(size) || size < DEFAULT_MAX_FRAME_SIZE || size > LARGEST_MAX_FRAME_SIZE) {
    throw new RangeError(`max frame size must be an integer in [16384, 2^24-1], got ${size}`);
  }
  return size;
}
