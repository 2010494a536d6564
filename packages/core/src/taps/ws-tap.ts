// The WebSocket tap: one object per WebSocket, fed the bytes the relay forwards after the handshake
// (the 101 of an HTTP/1.1 Upgrade, or the DATA of an RFC 8441 stream). Per direction a frame parser
// and a message assembler run synchronously; with permessage-deflate an inflater per direction
// works off the hot path and hands messages back in wire order. Each message becomes a capture
// event (with its frames' headers) as soon as it is decoded. A protocol error is reported once (decode.failed) and
// the tap only counts bytes from then on: it never changes or holds up what is relayed.
import type { CaptureBus } from '../capture/bus.js';
import { nowMs } from '../capture/clock.js';
import type { Failure, HeaderList, Side, WsDeflateParams, WsFrameHeader } from '../capture/events.js';
import { extensionsIn, negotiateDeflate } from '../decode/ws/extensions.js';
import { type WsFrame, WsFrameParser, isControlOpcode } from '../decode/ws/frame-parser.js';
import { type InflateLimiter, WsInflater } from '../decode/ws/inflater.js';
import { type WsMessage, type WsWireMessage, WsMessageAssembler, describeMessage } from '../decode/ws/message-assembler.js';
import { WsDecodeError } from '../decode/ws/ws-errors.js';
import type { Tap, TapContext, UpgradeInfo } from './tap.js';

export interface WsTapOptions {
  connId: number;
  bus: CaptureBus;
  /** The handshake exchange: the 101, or the 2xx to an extended CONNECT. */
  exchangeId: number;
  requestHeaders: HeaderList;
  responseHeaders: HeaderList;
  /** Decoded payload bytes per message handed to the bus; the rest is counted. */
  payloadLimit: number;
  /** Compressed bytes kept per message to inflate it; a longer one loses the deflate context. Default 16 MiB. */
  maxCompressedPayload?: number;
  /** Frame headers kept per message; the rest are only counted. Default 1024. */
  maxFramesPerMessage?: number;
  /** Decoded bytes of a compressed message past which inflating stops as a deflate bomb. Default 64 MiB. */
  maxDecodedSize?: number;
  /** Decoded/compressed ratio past which a message (over 4 MiB decoded) is a bomb. Default 400. */
  maxInflateRatio?: number;
  /** Bounds concurrent inflation; default: the process-wide limiter. */
  inflateLimiter?: InflateLimiter;
}

const DEFAULT_COMPRESSED_CAP = 16 * 1024 * 1024;
const DEFAULT_MAX_FRAMES = 1024;

/** A message handed to the inflater, waiting to come back decoded (in order). */
interface Pending {
  index: number;
  time: number;
  headers: WsFrameHeader[];
  /** Left open when its side ended: failing to inflate it is not a protocol error. */
  unfinished: boolean;
}

interface Direction {
  side: Side;
  parser: WsFrameParser;
  assembler: WsMessageAssembler;
  inflater: WsInflater | null;
  pending: Pending[];
  /** Index, frame count and frame headers of the fragmented message being received. */
  openIndex: number;
  openFrames: number;
  openHeaders: WsFrameHeader[];
  messages: number;
  bytes: number;
  ended: boolean;
  sentClose: boolean;
}

/** True when a switch (101, or 2xx to an extended CONNECT) went to the WebSocket protocol. */
export function isWebSocketUpgrade(info: UpgradeInfo): boolean {
  const upgrade = headerValue(info.responseHeaders, 'upgrade') ?? headerValue(info.requestHeaders, ':protocol');
  return upgrade !== undefined && /(^|,)\s*websocket\s*(,|$)/i.test(upgrade);
}

/** The tap for what follows a protocol switch: a WebSocket tap, or null (opaque) for anything else. */
export function tapAfterUpgrade(ctx: Pick<TapContext, 'connId' | 'bus' | 'bodyCaptureLimit' | 'wsLimits'>, info: UpgradeInfo): Tap | null {
  if (!isWebSocketUpgrade(info)) return null;
  return new WsTap({
    connId: ctx.connId,
    bus: ctx.bus,
    exchangeId: info.exchangeId,
    requestHeaders: info.requestHeaders,
    responseHeaders: info.responseHeaders,
    payloadLimit: ctx.bodyCaptureLimit,
    maxDecodedSize: ctx.wsLimits?.messageCap,
    maxInflateRatio: ctx.wsLimits?.inflateRatio,
  });
}

export class WsTap implements Tap {
  private readonly client: Direction;
  private readonly server: Direction;
  private readonly maxFrames: number;
  private nextIndex = 0;
  private opaque = false;
  private decodeError: Failure | null = null;
  private firstClose: { side: Side; code: number | null; reason: string } | null = null;
  /** Sides that ended, in order. */
  private readonly endOrder: Side[] = [];
  private aborted: { side: Side; where: 'frame' | 'message' } | null = null;
  private closed = false;

  constructor(private readonly o: WsTapOptions) {
    this.maxFrames = o.maxFramesPerMessage ?? DEFAULT_MAX_FRAMES;
    const deflate = negotiateDeflate(o.requestHeaders, o.responseHeaders);
    // Extensions we cannot decode may use any RSV bit: let them through rather than fail.
    const foreign = extensionsIn(o.responseHeaders).some((ext) => ext.name !== 'permessage-deflate');
    this.client = this.direction('client', deflate?.client ?? null, foreign);
    this.server = this.direction('server', deflate?.server ?? null, foreign);
    o.bus.emit({
      kind: 'ws.opened',
      exchangeId: o.exchangeId,
      connId: o.connId,
      subprotocol: headerValue(o.responseHeaders, 'sec-websocket-protocol') ?? null,
      extensions: joinedHeader(o.responseHeaders, 'sec-websocket-extensions'),
      deflate: deflate ? { client: params(deflate.client), server: params(deflate.server) } : null,
    });
  }

  onData(from: Side, chunk: Buffer): void {
    const dir = this.dir(from);
    dir.bytes += chunk.length;
    if (this.opaque || dir.ended) return;
    let frames: WsFrame[];
    let failure: WsDecodeError | null = null;
    try {
      frames = dir.parser.push(chunk);
    } catch (err) {
      if (!(err instanceof WsDecodeError)) throw err;
      frames = err.frames;
      failure = err;
    }
    const time = nowMs();
    try {
      for (const frame of frames) this.onFrame(dir, frame, time);
    } catch (err) {
      if (!(err instanceof WsDecodeError)) throw err;
      failure = err; // earlier in the byte stream than a parser error
    }
    if (failure) this.fail(from, failure.code, failure.message);
  }

  onEnd(from: Side): void {
    if (!this.endOrder.includes(from)) this.endOrder.push(from);
    this.finishDirection(this.dir(from));
  }

  onClose(error: Failure | null): void {
    if (this.closed) return;
    this.closed = true;
    this.finishDirection(this.client);
    this.finishDirection(this.server);
    const inflaters = [this.client.inflater, this.server.inflater].filter((i): i is WsInflater => i !== null);
    if (inflaters.length === 0) return this.emitClosed(error);
    // The last messages may still be inflating: the close comes after them.
    void Promise.all(inflaters.map((i) => i.idle())).then(() => {
      for (const inflater of inflaters) inflater.close();
      this.emitClosed(error);
    });
  }

  private direction(side: Side, deflate: WsDeflateParams | null, foreign: boolean): Direction {
    const compressedCap = Math.max(this.o.maxCompressedPayload ?? DEFAULT_COMPRESSED_CAP, this.o.payloadLimit);
    const dir: Direction = {
      side,
      parser: new WsFrameParser({
        side,
        maxFramePayload: deflate ? compressedCap : this.o.payloadLimit,
        allowedRsv: { rsv1: deflate !== null || foreign, rsv2: foreign, rsv3: foreign },
      }),
      assembler: new WsMessageAssembler({
        deflate: deflate !== null,
        maxMessagePayload: this.o.payloadLimit,
        maxCompressedPayload: compressedCap,
      }),
      inflater: null,
      pending: [],
      openIndex: -1,
      openFrames: 0,
      openHeaders: [],
      messages: 0,
      bytes: 0,
      ended: false,
      sentClose: false,
    };
    if (deflate) {
      dir.inflater = new WsInflater(
        deflate,
        {
          message: (message) => {
            const p = dir.pending.shift()!;
            this.emitMessage(dir, message, p.index, p.time, p.headers);
          },
          error: (err, partial) => {
            const p = dir.pending.shift();
            if (partial && p) this.emitMessage(dir, partial, p.index, p.time, p.headers);
            if (p?.unfinished) return;
            const code = err instanceof WsDecodeError ? err.code : 'internal';
            this.fail(side, code, err.message);
          },
        },
        {
          maxMessagePayload: this.o.payloadLimit,
          maxDecodedSize: this.o.maxDecodedSize,
          maxRatio: this.o.maxInflateRatio,
          ...(this.o.inflateLimiter ? { limiter: this.o.inflateLimiter } : {}),
        },
      );
    }
    return dir;
  }

  private dir(side: Side): Direction {
    return side === 'client' ? this.client : this.server;
  }

  private onFrame(dir: Direction, frame: WsFrame, time: number): void {
    const wire = dir.assembler.push(frame); // throws on a sequencing violation
    const header: WsFrameHeader = {
      time,
      fin: frame.fin,
      rsv1: frame.rsv1,
      rsv2: frame.rsv2,
      rsv3: frame.rsv3,
      opcode: frame.opcode,
      masked: frame.masked,
      maskKey: frame.maskKey ? frame.maskKey.toString('hex') : null,
      payloadLength: frame.payloadLength,
      wireSize: frame.wireSize,
    };
    if (isControlOpcode(frame.opcode)) return this.onWireMessage(dir, wire!, this.nextIndex++, time, [header], false);
    if (frame.opcode !== 0) {
      dir.openIndex = this.nextIndex++;
      dir.openFrames = 0;
      dir.openHeaders = [];
    }
    if (dir.openFrames++ < this.maxFrames) dir.openHeaders.push(header);
    if (wire) this.onWireMessage(dir, wire, dir.openIndex, time, dir.openHeaders, false);
  }

  private onWireMessage(dir: Direction, wire: WsWireMessage, index: number, time: number, headers: WsFrameHeader[], unfinished: boolean): void {
    // Who closed first is a matter of wire order, and the two sides may come back from their
    // inflaters in either order. A control frame is never compressed: a close is read now.
    const described = dir.inflater && wire.name !== 'close' ? null : describeMessage(wire);
    if (described?.close) this.firstClose ??= { side: dir.side, code: described.close.code, reason: described.close.reason };
    if (!dir.inflater) return this.emitMessage(dir, described ?? describeMessage(wire), index, time, headers);
    // Everything goes through the inflater once deflate is on, so order never changes.
    dir.pending.push({ index, time, headers, unfinished });
    dir.inflater.push(wire);
  }

  private emitMessage(dir: Direction, m: WsMessage, index: number, time: number, frameHeaders: WsFrameHeader[]): void {
    dir.messages++;
    if (m.close) dir.sentClose = true;
    const cut = m.payload.length > this.o.payloadLimit;
    this.o.bus.emit({
      kind: 'ws.message',
      time,
      exchangeId: this.o.exchangeId,
      connId: this.o.connId,
      side: dir.side,
      messageIndex: index,
      opcode: m.opcode,
      fin: m.fin,
      frames: m.frames,
      wireSize: m.wireSize,
      payloadSize: m.payloadSize,
      decodedSize: m.decodedSize,
      compressed: m.compressed,
      payload: ownBytes(cut ? m.payload.subarray(0, this.o.payloadLimit) : m.payload),
      truncated: m.payloadTruncated || cut,
      utf8Valid: m.utf8Valid ?? null,
      closeCode: m.close ? m.close.code : null,
      closeReason: m.close ? m.close.reason : null,
      frameHeaders,
    });
  }

  /** No more bytes from this side: a message it left open is reported unfinished. */
  private finishDirection(dir: Direction): void {
    if (dir.ended) return;
    dir.ended = true;
    if (this.opaque) return;
    const wire = dir.assembler.finish();
    if (dir.parser.midFrame) this.aborted ??= { side: dir.side, where: 'frame' };
    else if (wire) this.aborted ??= { side: dir.side, where: 'message' };
    if (wire) this.onWireMessage(dir, wire, dir.openIndex, nowMs(), dir.openHeaders, true);
  }

  private fail(side: Side, code: string, message: string): void {
    if (this.opaque) return;
    this.opaque = true;
    this.decodeError = { reason: 'decode', message: `${side} WebSocket stream: ${message}`, code };
    this.o.bus.emit({ kind: 'decode.failed', connId: this.o.connId, decoder: 'ws', side, code, message });
  }

  private emitClosed(transport: Failure | null): void {
    const first = this.firstClose;
    this.o.bus.emit({
      kind: 'ws.closed',
      exchangeId: this.o.exchangeId,
      connId: this.o.connId,
      closedBy: first?.side ?? null,
      closeCode: first?.code ?? null,
      closeReason: first ? first.reason : null,
      clean: this.client.sentClose && this.server.sentClose,
      error: transport ?? this.decodeError ?? this.endFailure(),
      messagesFromClient: this.client.messages,
      messagesFromServer: this.server.messages,
      bytesFromClient: this.client.bytes,
      bytesFromServer: this.server.bytes,
    });
  }

  /** Why a WebSocket that ended without a transport error ended abnormally, if it did. */
  private endFailure(): Failure | null {
    if (this.aborted) {
      const { side, where } = this.aborted;
      return { reason: 'aborted', message: `the ${side} ended the connection in the middle of a ${where}` };
    }
    if (this.firstClose) return null;
    const side = this.endOrder[0];
    return { reason: 'closed', message: `${side ? `the ${side}` : 'the connection'} closed without a close frame` };
  }
}

/**
 * The payload with a buffer of its own when it is a view into a shared one (a small Buffer lives in
 * an 8 KiB pool slab): the store may post it to its writer thread, which would copy the whole slab.
 */
function ownBytes(bytes: Buffer): Uint8Array {
  return bytes.byteLength === bytes.buffer.byteLength ? bytes : new Uint8Array(bytes);
}

function params(p: WsDeflateParams): WsDeflateParams {
  return { noContextTakeover: p.noContextTakeover, maxWindowBits: p.maxWindowBits };
}

function headerValue(headers: HeaderList, name: string): string | undefined {
  for (const [n, v] of headers) if (n.toLowerCase() === name) return v;
  return undefined;
}

function joinedHeader(headers: HeaderList, name: string): string | null {
  const values = headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);
  return values.length > 0 ? values.join(', ') : null;
}
