// The HTTP/2 tap: decodes both directions of a relayed HTTP/2 connection (h2 after TLS, or h2c
// with prior knowledge). Per direction a frame parser and an HPACK decoder; every frame becomes an
// `h2.frame` event, and the stream assembler (h2-streams.ts) turns streams into exchanges.
// SETTINGS_HEADER_TABLE_SIZE and SETTINGS_MAX_FRAME_SIZE are followed: a raise applies at once, a
// cut once the peer acknowledges it. The first decode error is reported (decode.failed, decoder
// `h2` or `hpack`) and the tap goes opaque for the connection; the relay is never held up.
import { nowMs } from '../capture/clock.js';
import type { Failure, H2HeaderBlock, HeaderList, Side } from '../capture/events.js';
import { H2DecodeError, H2FrameParser, LARGEST_MAX_FRAME_SIZE, DEFAULT_MAX_FRAME_SIZE, type H2Event, type HeaderBlockEvent } from '../decode/h2/frame-parser.js';
import { SettingId, type H2Frame, type SettingEntry, type SettingsFrame } from '../decode/h2/frame-types.js';
import { HpackDecoder, HpackError } from '../decode/hpack/decoder.js';
import { frameEvent } from './h2-frame-event.js';
import { H2Streams, type H2TapContext } from './h2-streams.js';
import type { Tap } from './tap.js';

export type { H2TapContext, StreamUpgradeInfo } from './h2-streams.js';

/** Unacknowledged SETTINGS remembered per side; a peer that never acknowledges cannot grow it. */
const MAX_UNACKED_SETTINGS = 32;
const DEFAULT_TABLE_SIZE = 4096;

interface Direction {
  side: Side;
  parser: H2FrameParser;
  /** Decodes the header blocks this side's encoder sends. */
  hpack: HpackDecoder;
  /** Limits the other side set on this direction. */
  tableSizeLimit: number;
  maxFrameSize: number;
  /** SETTINGS this side sent that the other side has not acknowledged yet, oldest first. */
  unacked: SettingEntry[][];
  /** Frames of the header block being received, reported once the block is decoded. */
  held: Array<{ frame: H2Frame; time: number }>;
}

export class H2Tap implements Tap {
  private readonly client: Direction;
  private readonly server: Direction;
  private readonly streams: H2Streams;
  private mode: 'h2' | 'opaque' | 'closed' = 'h2';
  private readonly ended: Side[] = [];

  constructor(private readonly ctx: H2TapContext) {
    this.client = direction('client');
    this.server = direction('server');
    this.streams = new H2Streams(ctx);
  }

  onData(from: Side, chunk: Buffer): void {
    if (this.mode !== 'h2') return;
    const dir = from === 'client' ? this.client : this.server;
    const time = nowMs();
    let events: H2Event[];
    let failure: H2DecodeError | HpackError | null = null;
    try {
      events = dir.parser.push(chunk);
    } catch (err) {
      if (!(err instanceof H2DecodeError)) throw err;
      events = err.eventsBefore;
      failure = err;
    }
    try {
      for (const event of events) this.handle(dir, event, time);
    } catch (err) {
      if (!(err instanceof HpackError)) throw err;
      failure = err; // earlier in the byte stream than a framing error of the same chunk
    }
    if (failure) this.decodeFailed(dir, failure);
  }

  onEnd(from: Side): void {
    if (!this.ended.includes(from)) this.ended.push(from);
  }

  onClose(error: Failure | null): void {
    if (this.mode === 'closed') return;
    if (this.mode === 'h2') {
      this.flushHeld(this.client);
      this.flushHeld(this.server);
      this.streams.closeAll(error, this.ended);
    }
    this.mode = 'closed';
  }

  private handle(dir: Direction, event: H2Event, time: number): void {
    if (event.type === 'frame') this.onFrame(dir, event.frame, time);
    else if (event.type === 'header-block') this.onHeaderBlock(dir, event, time);
  }

  private onFrame(dir: Direction, frame: H2Frame, time: number): void {
    if (frame.kind === 'headers' || frame.kind === 'push-promise' || frame.kind === 'continuation') {
      dir.held.push({ frame, time });
      return;
    }
    if (this.ctx.bus.hasListeners) this.ctx.bus.emit(frameEvent(this.ctx.connId, dir.side, frame, null, time));
    switch (frame.kind) {
      case 'data':
        this.streams.onData(dir.side, frame.streamId, frame.data, frame.endStream, time);
        return;
      case 'settings':
        this.onSettings(dir, frame);
        return;
      case 'rst-stream':
        this.streams.onReset(dir.side, frame.streamId, frame.errorName);
        return;
      case 'goaway':
        this.streams.onGoaway(dir.side, frame.lastStreamId, frame.errorName);
        return;
      default:
        return;
    }
  }

  private onHeaderBlock(dir: Direction, event: HeaderBlockEvent, time: number): void {
    let decoded;
    try {
      decoded = dir.hpack.decodeBlock(event.block);
    } catch (err) {
      this.flushHeld(dir);
      throw err;
    }
    const held = dir.held;
    dir.held = [];
    if (this.ctx.bus.hasListeners) {
      const block: H2HeaderBlock = {
        fields: decoded.fields,
        tableSizeUpdates: decoded.tableSizeUpdates,
        headerListSize: decoded.headerListSize,
        size: event.block.length,
        frames: event.frameCount,
        dynamicTableSize: dir.hpack.tableSize,
      };
      held.forEach((h, i) => this.ctx.bus.emit(frameEvent(this.ctx.connId, dir.side, h.frame, i === 0 ? block : null, h.time)));
    }
    const headers: HeaderList = decoded.fields.map((f) => [f.name, f.value]);
    if (event.kind === 'headers') this.streams.onHeaders(dir.side, event.streamId, headers, event.endStream, time);
    else if (dir.side === 'server') this.streams.onPushPromise(event.streamId, event.promisedStreamId!, headers, time);
  }

  /** SETTINGS from one side limit what the other side sends: its frames and its HPACK encoder. */
  private onSettings(dir: Direction, frame: SettingsFrame): void {
    const other = dir === this.client ? this.server : this.client;
    if (frame.ack) {
      // `dir` acknowledges the oldest SETTINGS the other side sent: now they bind `dir` exactly.
      const settings = other.unacked.shift();
      if (settings) applySettings(dir, settings, true);
      return;
    }
    dir.unacked.push(frame.settings);
    if (dir.unacked.length > MAX_UNACKED_SETTINGS) dir.unacked.shift();
    applySettings(other, frame.settings, false);
  }

  private flushHeld(dir: Direction): void {
    const held = dir.held;
    dir.held = [];
    if (!this.ctx.bus.hasListeners) return;
    for (const h of held) this.ctx.bus.emit(frameEvent(this.ctx.connId, dir.side, h.frame, null, h.time));
  }

  private decodeFailed(dir: Direction, err: H2DecodeError | HpackError): void {
    this.flushHeld(this.client);
    this.flushHeld(this.server);
    const decoder = err instanceof HpackError ? 'hpack' : 'h2';
    this.ctx.bus.emit({ kind: 'decode.failed', connId: this.ctx.connId, decoder, side: dir.side, code: err.code, message: err.message });
    this.mode = 'opaque';
    this.streams.closeAll({ reason: 'decode', message: `${decoder}: ${err.message}`, code: err.code }, this.ended);
  }
}

function direction(side: Side): Direction {
  return {
    side,
    parser: new H2FrameParser({ expectPreface: side === 'client' }),
    hpack: new HpackDecoder(),
    tableSizeLimit: DEFAULT_TABLE_SIZE,
    maxFrameSize: DEFAULT_MAX_FRAME_SIZE,
    unacked: [],
    held: [],
  };
}

/** A raise applies as soon as it is announced (lenient), the exact value once acknowledged. */
function applySettings(target: Direction, settings: SettingEntry[], acknowledged: boolean): void {
  for (const [id, , value] of settings) {
    if (id === SettingId.HEADER_TABLE_SIZE) {
      target.tableSizeLimit = acknowledged ? value : Math.max(target.tableSizeLimit, value);
      target.hpack.setMaxTableSizeLimit(target.tableSizeLimit);
    } else if (id === SettingId.MAX_FRAME_SIZE && value >= DEFAULT_MAX_FRAME_SIZE && value <= LARGEST_MAX_FRAME_SIZE) {
      target.maxFrameSize = acknowledged ? value : Math.max(target.maxFrameSize, value);
      target.parser.setMaxFrameSize(target.maxFrameSize);
    }
  }
}
