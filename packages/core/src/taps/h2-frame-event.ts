// Maps a decoded HTTP/2 frame to the `h2.frame` capture event: the header fields, and per type the
// decoded payload fields. Payload bytes are never carried (DATA belongs to the exchange's body);
// only small things are, as hex or text, with caps.
import type { H2FrameDetails, H2HeaderBlock, NewCaptureEvent, Side } from '../capture/events.js';
import type { H2Frame } from '../decode/h2/frame-types.js';

const MAX_DEBUG_DATA = 1024;
const MAX_UNKNOWN_HEX = 64;

export function frameEvent(
  connId: number,
  side: Side,
  frame: H2Frame,
  headerBlock: H2HeaderBlock | null,
  time: number,
): NewCaptureEvent {
  return {
    kind: 'h2.frame',
    time,
    connId,
    side,
    streamId: frame.streamId,
    type: frame.type,
    typeName: frame.typeName,
    flags: frame.flags,
    flagNames: frame.flagNames,
    length: frame.length,
    padLength: 'padLength' in frame ? frame.padLength : null,
    details: frameDetails(frame, headerBlock),
  };
}

function frameDetails(frame: H2Frame, headerBlock: H2HeaderBlock | null): H2FrameDetails | null {
  switch (frame.kind) {
    case 'data':
      return null;
    case 'headers': {
      const details: H2FrameDetails = { fragmentLength: frame.fragment.length };
      if (frame.priority) details.priority = { ...frame.priority };
      if (headerBlock) details.headerBlock = headerBlock;
      return details;
    }
    case 'push-promise': {
      const details: H2FrameDetails = { promisedStreamId: frame.promisedStreamId, fragmentLength: frame.fragment.length };
      if (headerBlock) details.headerBlock = headerBlock;
      return details;
    }
    case 'continuation':
      return { fragmentLength: frame.fragment.length };
    case 'priority':
      return { priority: { ...frame.priority } };
    case 'rst-stream':
      return { errorCode: frame.errorCode, errorName: frame.errorName };
    case 'settings':
      if (frame.ack && frame.settings.length === 0) return null;
      return { settings: frame.settings.map(([id, name, value]) => ({ id, name, value })) };
    case 'ping':
      return { pingData: frame.opaqueData.toString('hex') };
    case 'goaway':
      return {
        lastStreamId: frame.lastStreamId,
        errorCode: frame.errorCode,
        errorName: frame.errorName,
        debugData: frame.debugData.toString('utf8', 0, Math.min(frame.debugData.length, MAX_DEBUG_DATA)),
        debugDataLength: frame.debugData.length,
      };
    case 'window-update':
      return { increment: frame.increment };
    case 'unknown':
      return { payloadHex: frame.payload.toString('hex', 0, Math.min(frame.payload.length, MAX_UNKNOWN_HEX)) };
  }
}
