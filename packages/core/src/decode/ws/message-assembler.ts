// Frames → messages (RFC 6455 §5.4, §5.5; RFC 7692 §6.1), one assembler per direction, synchronous.
// Fragments are joined; a control frame between fragments is its own message, in wire order.
// The assembler yields wire messages (payload still compressed when RSV1 said so); describeMessage
// turns a wire message and its decoded payload into what the capture shows.
import { isUtf8 } from 'node:buffer';
import { type WsFrame, type WsOpcodeName, isControlOpcode } from './frame-parser.js';
import { WsDecodeError } from './ws-errors.js';

/** A message as it went over the wire: frames joined, payload not yet inflated. */
export interface WsWireMessage {
  opcode: number;
  name: WsOpcodeName;
  /** False only for a message left open when the stream ended (see finish()). */
  fin: boolean;
  frames: number;
  /** Header and payload bytes of all its frames. */
  wireSize: number;
  /** RSV1 on the first frame under permessage-deflate: the payload is compressed. */
  compressed: boolean;
  /** Payload bytes on the wire, all frames together. */
  payloadSize: number;
  /** The joined wire payload, at most the assembler's cap. */
  payload: Buffer;
  /** Some wire payload was not kept (a frame or the message went over a cap). */
  payloadTruncated: boolean;
}

export interface WsClose {
  /** Null when the close frame had no payload. */
  code: number | null;
  reason: string;
  /** False for codes RFC 6455 §7.4 forbids on the wire (e.g. 1005, 1006, 1015, below 1000). */
  codeValid: boolean;
}

/** A message as the capture shows it. */
export interface WsMessage {
  opcode: number;
  name: WsOpcodeName;
  fin: boolean;
  frames: number;
  wireSize: number;
  compressed: boolean;
  /** Payload bytes on the wire (compressed size when compressed). */
  payloadSize: number;
  /** The decoded payload, at most the cap. */
  payload: Buffer;
  /** Decoded size in full, counted past the cap. */
  decodedSize: number;
  payloadTruncated: boolean;
  /** Text messages: the payload as text (invalid sequences replaced). */
  text?: string;
  /** Text and close messages: whether the text or close reason is valid UTF-8. */
  utf8Valid?: boolean;
  close?: WsClose;
}

export interface WsMessageAssemblerOptions {
  /** Wire payload bytes kept per uncompressed message; default 16 MiB. */
  maxMessagePayload?: number;
  /** Wire payload bytes kept per compressed message (inflating needs all of it); default 16 MiB. */
  maxCompressedPayload?: number;
  /** permessage-deflate was negotiated: RSV1 marks a compressed message. */
  deflate?: boolean;
}

const DEFAULT_CAP = 16 * 1024 * 1024;

interface OpenMessage {
  first: WsFrame;
  compressed: boolean;
  cap: number;
  frames: number;
  wireSize: number;
  payloadSize: number;
  parts: Buffer[];
  kept: number;
  truncated: boolean;
}

export class WsMessageAssembler {
  private readonly maxMessagePayload: number;
  private readonly maxCompressedPayload: number;
  private readonly deflate: boolean;
  private open: OpenMessage | null = null;

  constructor(options: WsMessageAssemblerOptions = {}) {
    this.maxMessagePayload = options.maxMessagePayload ?? DEFAULT_CAP;
    this.maxCompressedPayload = options.maxCompressedPayload ?? DEFAULT_CAP;
    this.deflate = options.deflate ?? false;
  }

  /** True while a fragmented message waits for its final frame. */
  get fragmenting(): boolean {
    return this.open !== null;
  }

  /** The message this frame completes, if any. Throws WsDecodeError on a sequencing violation. */
  push(frame: WsFrame): WsWireMessage | null {
    if (this.deflate && frame.rsv1 && (isControlOpcode(frame.opcode) || frame.opcode === 0)) {
      throw new WsDecodeError('bad-rsv', `RSV1 set on a ${frame.name} frame`);
    }
    if (isControlOpcode(frame.opcode)) {
      if (frame.name === 'close' && frame.payloadLength === 1) {
        throw new WsDecodeError('bad-close', 'close frame with a 1-byte payload');
      }
      const message = this.start(frame);
      return this.complete(message, true);
    }
    if (frame.opcode === 0) {
      if (!this.open) throw new WsDecodeError('bad-continuation', 'continuation frame with no message to continue');
      this.append(this.open, frame);
    } else {
      if (this.open) {
        throw new WsDecodeError('bad-fragmentation', `${frame.name} frame inside a fragmented ${this.open.first.name} message`);
      }
      this.open = this.start(frame);
    }
    if (!frame.fin) return null;
    const message = this.open;
    this.open = null;
    return this.complete(message, true);
  }

  /** At end of stream: the message still waiting for its final frame, marked fin: false. */
  finish(): WsWireMessage | null {
    const message = this.open;
    this.open = null;
    return message ? this.complete(message, false) : null;
  }

  private start(frame: WsFrame): OpenMessage {
    const compressed = this.deflate && frame.rsv1;
    const message: OpenMessage = {
      first: frame,
      compressed,
      cap: compressed ? this.maxCompressedPayload : this.maxMessagePayload,
      frames: 0,
      wireSize: 0,
      payloadSize: 0,
      parts: [],
      kept: 0,
      truncated: false,
    };
    this.append(message, frame);
    return message;
  }

  private append(message: OpenMessage, frame: WsFrame): void {
    message.frames += 1;
    message.wireSize += frame.wireSize;
    message.payloadSize += frame.payloadLength;
    if (frame.payloadTruncated) message.truncated = true;
    const room = message.cap - message.kept;
    const part = frame.payload.length > room ? frame.payload.subarray(0, room) : frame.payload;
    if (part.length < frame.payload.length) message.truncated = true;
    if (part.length > 0) {
      message.parts.push(part);
      message.kept += part.length;
    }
  }

  private complete(message: OpenMessage, fin: boolean): WsWireMessage {
    const { first } = message;
    return {
      opcode: first.opcode,
      name: first.name,
      fin,
      frames: message.frames,
      wireSize: message.wireSize,
      compressed: message.compressed,
      payloadSize: message.payloadSize,
      payload: message.parts.length === 1 ? message.parts[0] : Buffer.concat(message.parts, message.kept),
      payloadTruncated: message.truncated,
    };
  }
}

/** What an inflater made of a compressed payload. */
export interface DecodedPayload {
  payload: Buffer;
  /** Full decoded size, counted past the cap. */
  size: number;
  truncated: boolean;
}

/**
 * The capture's view of a wire message: `decoded` is the inflated payload of a compressed
 * message; without it the wire payload is the message payload.
 */
export function describeMessage(wire: WsWireMessage, decoded?: DecodedPayload): WsMessage {
  const payload = decoded ? decoded.payload : wire.payload;
  const truncated = decoded ? decoded.truncated : wire.payloadTruncated;
  const message: WsMessage = {
    opcode: wire.opcode,
    name: wire.name,
    fin: wire.fin,
    frames: wire.frames,
    wireSize: wire.wireSize,
    compressed: wire.compressed,
    payloadSize: wire.payloadSize,
    payload,
    decodedSize: decoded ? decoded.size : wire.payloadSize,
    payloadTruncated: truncated,
  };
  if (wire.name === 'text') {
    const { text, valid } = decodeUtf8(payload, truncated || !wire.fin);
    message.text = text;
    message.utf8Valid = valid;
  } else if (wire.name === 'close') {
    if (payload.length < 2) {
      message.close = { code: null, reason: '', codeValid: true };
    } else {
      const code = payload.readUInt16BE(0);
      const { text, valid } = decodeUtf8(payload.subarray(2), truncated);
      message.close = { code, reason: text, codeValid: isValidCloseCode(code) };
      message.utf8Valid = valid;
    }
  }
  return message;
}

/** RFC 6455 §7.4: codes an endpoint may send in a close frame. */
export function isValidCloseCode(code: number): boolean {
  if (code >= 3000 && code <= 4999) return true;
  return code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006;
}

/**
 * Decodes UTF-8, keeping invalid sequences as U+FFFD and saying so. When the bytes were cut
 * (`cut`), a sequence left incomplete at the end by the cut is not counted as invalid.
 */
export function decodeUtf8(bytes: Buffer, cut: boolean): { text: string; valid: boolean } {
  if (isUtf8(bytes)) return { text: bytes.toString('utf8'), valid: true };
  if (cut) {
    try {
      const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes, { stream: true });
      return { text, valid: true };
    } catch {
      // invalid before the cut
    }
  }
  return { text: bytes.toString('utf8'), valid: false };
}
