// gRPC bodies: a series of length-prefixed messages (a flag byte, then a 4-byte big-endian length),
// each a protobuf shown without a schema. gRPC-Web adds a trailers frame (flag 0x80) at the end of
// the response. https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md
import { decodeInBrowser } from './body-decode.js';
import { decodeRawMessage, formatRawMessage, hexBytes } from './protobuf-raw.js';

export interface GrpcFrame {
  compressed: boolean;
  /** gRPC-Web's trailers frame: HTTP/1-style header lines, not a message. */
  trailers: boolean;
  payload: Uint8Array;
}

export interface GrpcFrames {
  frames: GrpcFrame[];
  /** Bytes of a last frame cut short (a truncated or unfinished body). */
  incomplete: number;
}

/** True for application/grpc and application/grpc-web, with or without a +proto style suffix. */
export function isGrpcContentType(contentType: string | null): boolean {
  const type = (contentType ?? '').split(';')[0].trim().toLowerCase();
  return /^application\/grpc(-web)?(\+[a-z0-9.-]+)?$/.test(type) && !type.endsWith('+json');
}

export function splitGrpcFrames(bytes: Uint8Array): GrpcFrames {
  const frames: GrpcFrame[] = [];
  let at = 0;
  while (bytes.length - at >= 5) {
    const flags = bytes[at];
    const length = new DataView(bytes.buffer, bytes.byteOffset + at + 1, 4).getUint32(0);
    if (length > bytes.length - at - 5) break;
    frames.push({ compressed: (flags & 1) === 1, trailers: (flags & 0x80) !== 0, payload: bytes.subarray(at + 5, at + 5 + length) });
    at += 5 + length;
  }
  return { frames, incomplete: bytes.length - at };
}

/**
 * The messages of a gRPC body as text, `protoc --decode_raw` style, each under a heading.
 * `encoding` is the grpc-encoding header of the same side (compressed messages use it).
 */
export async function describeGrpcBody(bytes: Uint8Array, encoding: string | null): Promise<string> {
  const { frames, incomplete } = splitGrpcFrames(bytes);
  const parts: string[] = [];
  let n = 0;
  for (const frame of frames) {
    if (frame.trailers) {
      parts.push(`trailers (gRPC-Web)\n${new TextDecoder().decode(frame.payload).trim()}`);
      continue;
    }
    n++;
    let payload = frame.payload;
    let heading = `message ${n} · ${frame.payload.length} bytes`;
    if (frame.compressed) {
      const coding = (encoding ?? '').trim().toLowerCase();
      const decoded = coding && coding !== 'identity' ? await decodeInBrowser(payload, [coding]) : null;
      if (!decoded || decoded.warning) {
        parts.push(`${heading}, compressed (${coding || 'no grpc-encoding given'}): not decoded\n${hexBytes(payload, 256)}`);
        continue;
      }
      payload = decoded.bytes;
      heading += `, ${coding} → ${payload.length} bytes`;
    }
    const fields = decodeRawMessage(payload);
    const shown = fields === null ? `not a protobuf message:\n${hexBytes(payload, 256)}` : fields.length === 0 ? '(empty)' : formatRawMessage(fields);
    parts.push(`${heading}\n${shown}`);
  }
  if (incomplete > 0) parts.push(`… ${incomplete} bytes of a message that did not arrive whole`);
  return parts.length > 0 ? parts.join('\n\n') : '(no messages)';
}
