// HTTP/2 constants (RFC 9113 §6, §7, §6.5.2, plus the registered extensions a capture shows by name),
// the shape of a decoded frame, and the decoder's error.
import type { H2Event } from './frame-parser.js';

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

/** Types decoded as raw payloads but shown by their registered names. */
const EXTENSION_TYPE_NAMES: Record<number, string> = {
  0xa: 'ALTSVC', // RFC 7838
  0xc: 'ORIGIN', // RFC 8336
  0x10: 'PRIORITY_UPDATE', // RFC 9218
};

const TYPE_NAMES: string[] = Object.keys(FrameType);

export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

/** Which flag bits mean something for each frame type, in bit order. */
const FLAGS_BY_TYPE: Record<number, Array<[bit: number, name: string]>> = {
  [FrameType.DATA]: [[0x1, 'END_STREAM'], [0x8, 'PADDED']],
  [FrameType.HEADERS]: [[0x1, 'END_STREAM'], [0x4, 'END_HEADERS'], [0x8, 'PADDED'], [0x20, 'PRIORITY']],
  [FrameType.SETTINGS]: [[0x1, 'ACK']],
  [FrameType.PUSH_PROMISE]: [[0x4, 'END_HEADERS'], [0x8, 'PADDED']],
  [FrameType.PING]: [[0x1, 'ACK']],
  [FrameType.CONTINUATION]: [[0x4, 'END_HEADERS']],
};

export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

const ERROR_NAMES: string[] = Object.keys(ErrorCode);

export const SettingId = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
  ENABLE_CONNECT_PROTOCOL: 0x8, // RFC 8441
  NO_RFC7540_PRIORITIES: 0x9, // RFC 9218
} as const;

const SETTING_NAMES = new Map<number, string>(Object.entries(SettingId).map(([name, id]) => [id, name]));

const hex = (n: number) => `0x${n.toString(16)}`;

/** `DATA`, `ALTSVC`, or `UNKNOWN_0xfa` for a type nobody registered. */
export function frameTypeName(type: number): string {
  return TYPE_NAMES[type] ?? EXTENSION_TYPE_NAMES[type] ?? `UNKNOWN_${hex(type)}`;
}

/** Names of the set flag bits for this frame type; bits without a meaning show as hex. */
export function flagNames(type: number, flags: number): string[] {
  const names: string[] = [];
  let rest = flags;
  for (const [bit, name] of FLAGS_BY_TYPE[type] ?? []) {
    if (flags & bit) {
      names.push(name);
      rest &= ~bit;
    }
  }
  for (let bit = 1; bit <= 0x80; bit <<= 1) if (rest & bit) names.push(hex(bit));
  return names;
}

export function errorCodeName(code: number): string {
  return ERROR_NAMES[code] ?? `UNKNOWN_${hex(code)}`;
}

export function settingName(id: number): string {
  return SETTING_NAMES.get(id) ?? `UNKNOWN_${hex(id)}`;
}

// ---- decoded frames ------------------------------------------------------------------------

export interface FrameBase {
  type: number;
  typeName: string;
  flags: number;
  flagNames: string[];
  /** With the reserved bit cleared. */
  streamId: number;
  /** Payload length from the frame header (padding included). */
  length: number;
}

export interface PriorityInfo {
  exclusive: boolean;
  streamDependency: number;
  /** 1..256 (the wire value plus one). */
  weight: number;
}

export interface DataFrame extends FrameBase {
  kind: 'data';
  /** Without padding. */
  data: Buffer;
  /** Pad Length octet when PADDED, else null. */
  padLength: number | null;
  endStream: boolean;
}

export interface HeadersFrame extends FrameBase {
  kind: 'headers';
  fragment: Buffer;
  padLength: number | null;
  /** Present when the PRIORITY flag is set. */
  priority: PriorityInfo | null;
  endStream: boolean;
  endHeaders: boolean;
}

export interface PriorityFrame extends FrameBase {
  kind: 'priority';
  priority: PriorityInfo;
}

export interface RstStreamFrame extends FrameBase {
  kind: 'rst-stream';
  errorCode: number;
  errorName: string;
}

export type SettingEntry = [id: number, name: string, value: number];

export interface SettingsFrame extends FrameBase {
  kind: 'settings';
  ack: boolean;
  /** In wire order, duplicates kept. */
  settings: SettingEntry[];
}

export interface PushPromiseFrame extends FrameBase {
  kind: 'push-promise';
  promisedStreamId: number;
  fragment: Buffer;
  padLength: number | null;
  endHeaders: boolean;
}

export interface PingFrame extends FrameBase {
  kind: 'ping';
  ack: boolean;
  opaqueData: Buffer;
}

export interface GoawayFrame extends FrameBase {
  kind: 'goaway';
  lastStreamId: number;
  errorCode: number;
  errorName: string;
  debugData: Buffer;
}

export interface WindowUpdateFrame extends FrameBase {
  kind: 'window-update';
  /** 0 is a peer error (RFC 9113 §6.9) but framing is intact, so it is shown, not thrown. */
  increment: number;
}

export interface ContinuationFrame extends FrameBase {
  kind: 'continuation';
  fragment: Buffer;
  endHeaders: boolean;
}

/** A type this parser does not decode (extensions, GREASE): shown with its raw payload. */
export interface UnknownFrame extends FrameBase {
  kind: 'unknown';
  payload: Buffer;
}

export type H2Frame =
  | DataFrame
  | HeadersFrame
  | PriorityFrame
  | RstStreamFrame
  | SettingsFrame
  | PushPromiseFrame
  | PingFrame
  | GoawayFrame
  | WindowUpdateFrame
  | ContinuationFrame
  | UnknownFrame;

// ---- errors --------------------------------------------------------------------------------

export type H2DecodeErrorCode =
  | 'bad-preface' // the client direction did not start with the connection preface
  | 'frame-size' // longer than the max frame size, or the wrong length for the type
  | 'protocol' // bad padding, stream id rules, SETTINGS not first, CONTINUATION out of place
  | 'header-block-too-large' // HEADERS + CONTINUATIONs over maxHeaderBlockSize
  | 'unusable'; // push() after an earlier error

export class H2DecodeError extends Error {
  override name = 'H2DecodeError';
  /** Events decoded by the same push() before the error, so a caller can still show them. */
  eventsBefore: H2Event[] = [];
  constructor(
    readonly code: H2DecodeErrorCode,
    message: string,
  ) {
    super(message);
  }
}
