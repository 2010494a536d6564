// permessage-deflate decompression (RFC 7692 §7.2.2), one inflater per direction.
//
// Why an async queue: the tap runs on the relay's hot path, which must stay synchronous and
// bounded (DESIGN.md: taps never push back on the pump). `push()` only queues the wire message
// and returns; a persistent `zlib.createInflateRaw` stream per direction does the work on libuv's
// thread pool, one message at a time, so the LZ77 window carries over between messages exactly
// as the sender's does. Results come back in wire order through the sink (uncompressed messages
// wait behind compressed ones, so order never changes). A shared InflateLimiter bounds how many
// directions inflate at once; per message the decoded bytes kept are capped, the rest counted, and
// a size or ratio limit stops a deflate bomb; a queue limit stops a direction that falls behind.
// WsSyncInflater does the same synchronously (seeding each message with the previous window as a
// preset dictionary) for tests and tools; the two are checked against each other.
import zlib from 'node:zlib';
import type { DeflateDirectionParams } from './extensions.js';
import { type WsMessage, type WsWireMessage, describeMessage } from './message-assembler.js';
import { WsDecodeError } from './ws-errors.js';

const SYNC_TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

export interface WsInflaterOptions {
  /** Decoded bytes kept per message; the rest is counted. Default 16 MiB. */
  maxMessagePayload?: number;
  /** Decoded bytes per message past which inflating stops as a deflate bomb. Default 64 MiB. */
  maxDecodedSize?: number;
  /** Decoded/compressed ratio past which a message is a bomb, once over ratioFloor. Default 400. */
  maxRatio?: number;
  /** Decoded bytes under which the ratio is not checked. Default 4 MiB. */
  ratioFloor?: number;
  /** Compressed bytes waiting or inflating past which the inflater gives up. Default 64 MiB. */
  maxQueuedBytes?: number;
  /** Bounds concurrent inflation across inflaters. Default: one limiter shared process-wide. */
  limiter?: InflateLimiter;
}

export interface WsInflaterSink {
  message(message: WsMessage): void;
  /**
   * The inflater stopped: a WsDecodeError (bad-deflate, deflate-bomb, deflate-truncated,
   * deflate-backlog), with the partly decoded message when there is one; or whatever a sink
   * function threw (a bug in the caller), since async callbacks have no caller to throw to.
   */
  error(err: Error, partial: WsMessage | null): void;
}

/** A counting semaphore: at most `concurrency` messages inflate at once across its users. */
export class InflateLimiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly concurrency = 4) {}

  acquire(start: () => void): void {
    if (this.active < this.concurrency) {
      this.active += 1;
      start();
    } else {
      this.waiting.push(start);
    }
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active -= 1;
  }
}

/** The default limiter: as many messages inflate at once as libuv has pool threads by default. */
const sharedLimiter = new InflateLimiter(4);

class Limits {
  readonly maxMessagePayload: number;
  readonly windowBits: number;
  readonly keepWindow: boolean;
  private readonly maxDecodedSize: number;
  private readonly maxRatio: number;
  private readonly ratioFloor: number;

  constructor(params: DeflateDirectionParams, options: WsInflaterOptions) {
    this.maxMessagePayload = options.maxMessagePayload ?? 16 * 1024 * 1024;
    this.maxDecodedSize = options.maxDecodedSize ?? 64 * 1024 * 1024;
    this.maxRatio = options.maxRatio ?? 400;
    this.ratioFloor = options.ratioFloor ?? 4 * 1024 * 1024;
    // zlib cannot deflate with a 256-byte window and silently uses 512 bytes when asked for 8.
    this.windowBits = Math.max(9, params.maxWindowBits);
    this.keepWindow = !params.noContextTakeover;
  }

  /** Decoded bytes past which a message of inputSize compressed bytes is a bomb. */
  bombLimit(inputSize: number): number {
    return Math.min(this.maxDecodedSize, Math.max(this.ratioFloor, this.maxRatio * inputSize));
  }
}

/** Keeps the last `size` bytes of the decoded stream: the LZ77 window a new zlib stream starts from. */
class WindowTail {
  private parts: Buffer[] = [];
  private bytes = 0;

  constructor(private readonly size: number) {}

  add(chunk: Buffer): void {
    this.parts.push(chunk);
    this.bytes += chunk.length;
    while (this.parts.length > 1 && this.bytes - this.parts[0].length >= this.size) {
      this.bytes -= this.parts.shift()!.length;
    }
  }

  take(): Buffer | undefined {
    if (this.bytes === 0) return undefined;
    const all = Buffer.concat(this.parts, this.bytes);
    return all.length > this.size ? all.subarray(all.length - this.size) : all;
  }
}

interface Job {
  wire: WsWireMessage;
  limit: number;
  kept: Buffer[];
  keptBytes: number;
  size: number;
  done: boolean;
}

export class WsInflater {
  private readonly limits: Limits;
  private readonly limiter: InflateLimiter;
  private readonly maxQueuedBytes: number;
  private readonly window: WindowTail;
  private stream: zlib.InflateRaw | null = null;
  /** Bytes written to the current stream: more than it consumed means BFINAL ended it. */
  private streamIn = 0;
  private readonly queue: WsWireMessage[] = [];
  private queuedBytes = 0;
  private job: Job | null = null;
  private waitingForSlot = false;
  private contextLost = false;
  private stopped = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    params: DeflateDirectionParams,
    private readonly sink: WsInflaterSink,
    options: WsInflaterOptions = {},
  ) {
    this.limits = new Limits(params, options);
    this.limiter = options.limiter ?? sharedLimiter;
    this.maxQueuedBytes = options.maxQueuedBytes ?? 64 * 1024 * 1024;
    this.window = new WindowTail(1 << this.limits.windowBits);
  }

  /** Queues a message; never blocks and never throws. Ignored once the inflater has stopped. */
  push(wire: WsWireMessage): void {
    if (this.stopped) return;
    if (wire.compressed) {
      this.queuedBytes += wire.payload.length;
      if (this.queuedBytes > this.maxQueuedBytes) {
        this.fail(new WsDecodeError('deflate-backlog', `over ${this.maxQueuedBytes} compressed bytes waiting to inflate`), null);
        return;
      }
    }
    this.queue.push(wire);
    this.pump();
  }

  /** Resolves once everything pushed so far has been delivered (or the inflater stopped). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Drops what is queued and frees the zlib stream. */
  close(): void {
    this.stopped = true;
    this.queue.length = 0;
    this.dropStream();
    this.notifyIdle();
  }

  private isIdle(): boolean {
    return this.stopped || (this.queue.length === 0 && this.job === null && !this.waitingForSlot);
  }

  private pump(): void {
    while (!this.stopped && !this.job && !this.waitingForSlot && this.queue.length > 0) {
      const wire = this.queue[0];
      if (!wire.compressed) {
        this.queue.shift();
        if (!this.deliver(describeMessage(wire))) return;
        continue;
      }
      if (this.contextLost) {
        this.fail(new WsDecodeError('deflate-truncated', 'an earlier compressed message was cut, so its window is lost'), null);
        return;
      }
      this.waitingForSlot = true;
      this.limiter.acquire(() => {
        this.waitingForSlot = false;
        if (this.stopped) return this.limiter.release();
        this.start(this.queue.shift()!);
      });
    }
    if (this.isIdle()) this.notifyIdle();
  }

  private start(wire: WsWireMessage): void {
    const job: Job = { wire, limit: this.limits.bombLimit(wire.payload.length), kept: [], keptBytes: 0, size: 0, done: false };
    this.job = job;
    const stream = this.stream ?? this.openStream();
    const parts = wire.payloadTruncated ? [wire.payload] : [wire.payload, SYNC_TAIL];
    const input = parts.filter((part) => part.length > 0);
    if (input.length === 0) {
      // Nothing kept to inflate (a cap of 0): complete on the next tick, as zlib would.
      process.nextTick(() => this.finish(job, null));
      return;
    }
    input.forEach((part, i) => {
      this.streamIn += part.length;
      stream.write(part, i === input.length - 1 ? (err) => this.finish(job, err ?? null) : undefined);
    });
  }

  private openStream(): zlib.InflateRaw {
    const dictionary = this.limits.keepWindow ? this.window.take() : undefined;
    const stream = zlib.createInflateRaw({ windowBits: this.limits.windowBits, ...(dictionary ? { dictionary } : {}) });
    stream.on('data', (chunk: Buffer) => this.onOutput(chunk));
    stream.on('error', (err) => {
      if (this.job) this.finish(this.job, err);
    });
    this.stream = stream;
    this.streamIn = 0;
    return stream;
  }

  private onOutput(chunk: Buffer): void {
    const job = this.job;
    if (!job || job.done) return;
    job.size += chunk.length;
    const room = this.limits.maxMessagePayload - job.keptBytes;
    if (room > 0) {
      const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
      job.kept.push(part);
      job.keptBytes += part.length;
    }
    if (this.limits.keepWindow) this.window.add(chunk);
    if (job.size > job.limit) {
      const err = new WsDecodeError('deflate-bomb', `${job.wire.payload.length} compressed bytes inflated past ${job.limit}`);
      this.finish(job, err);
    }
  }

  private finish(job: Job, err: Error | null): void {
    if (job.done) return;
    job.done = true;
    this.job = null;
    this.limiter.release();
    const truncated = err !== null || job.wire.payloadTruncated || job.size > job.keptBytes;
    const message = describeMessage(job.wire, { payload: Buffer.concat(job.kept, job.keptBytes), size: job.size, truncated });
    this.queuedBytes -= job.wire.payload.length;
    if (err) {
      const failure = err instanceof WsDecodeError ? err : new WsDecodeError('bad-deflate', err.message);
      this.fail(failure, message);
      return;
    }
    const stream = this.stream!;
    if (job.wire.payloadTruncated || stream.bytesWritten < this.streamIn) {
      // Cut input, or BFINAL ended the deflate stream: the next message needs a fresh stream,
      // seeded with the window when context carries over.
      this.dropStream();
      if (job.wire.payloadTruncated && this.limits.keepWindow) this.contextLost = true;
    } else if (!this.limits.keepWindow) {
      stream.reset();
    }
    if (this.deliver(message)) this.pump();
  }

  /** Hands a message to the sink; false when the sink threw and the inflater stopped. */
  private deliver(message: WsMessage): boolean {
    try {
      this.sink.message(message);
      return true;
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)), null);
      return false;
    }
  }

  private fail(err: Error, partial: WsMessage | null): void {
    if (this.stopped) return;
    this.close();
    try {
      this.sink.error(err, partial);
    } catch {
      // nothing left to report to
    }
  }

  private dropStream(): void {
    if (this.stream) {
      this.stream.removeAllListeners('data');
      this.stream.on('error', () => {});
      this.stream.destroy();
      this.stream = null;
    }
    if (this.job) {
      this.job.done = true;
      this.job = null;
      this.limiter.release();
    }
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

/** The same decoding, synchronous: for tests and offline tools, never for the relay's hot path. */
export class WsSyncInflater {
  private readonly limits: Limits;
  private window: Buffer = Buffer.alloc(0);
  private contextLost = false;

  constructor(params: DeflateDirectionParams, options: WsInflaterOptions = {}) {
    this.limits = new Limits(params, options);
  }

  /** The message as the capture shows it; throws WsDecodeError when a compressed one does not inflate. */
  inflate(wire: WsWireMessage): WsMessage {
    if (!wire.compressed) return describeMessage(wire);
    if (this.contextLost) throw new WsDecodeError('deflate-truncated', 'an earlier compressed message was cut, so its window is lost');
    const limit = this.limits.bombLimit(wire.payload.length);
    const input = wire.payloadTruncated ? wire.payload : Buffer.concat([wire.payload, SYNC_TAIL]);
    const dictionary = this.limits.keepWindow && this.window.length > 0 ? this.window : undefined;
    let out: Buffer;
    try {
      out = zlib.inflateRawSync(input, {
        windowBits: this.limits.windowBits,
        finishFlush: zlib.constants.Z_SYNC_FLUSH,
        maxOutputLength: limit,
        ...(dictionary ? { dictionary } : {}),
      });
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new WsDecodeError('deflate-bomb', `${wire.payload.length} compressed bytes inflated past ${limit}`);
      }
      throw new WsDecodeError('bad-deflate', (err as Error).message);
    }
    if (this.limits.keepWindow) {
      const size = 1 << this.limits.windowBits;
      const joined = out.length >= size ? out : Buffer.concat([this.window, out]);
      this.window = Buffer.from(joined.subarray(Math.max(0, joined.length - size)));
      if (wire.payloadTruncated) this.contextLost = true;
    }
    const kept = out.length > this.limits.maxMessagePayload ? out.subarray(0, this.limits.maxMessagePayload) : out;
    return describeMessage(wire, { payload: kept, size: out.length, truncated: wire.payloadTruncated || kept.length < out.length });
  }
}
