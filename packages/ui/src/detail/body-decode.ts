// Turns a stored body into bytes to show: base64/text from the API, then content codings undone
// in the browser with DecompressionStream where it can, else by the server (?decode=1).
import type { BodyJson } from '../../../core/src/inspector/protocol.js';

export function bodyBytes(body: BodyJson): Uint8Array | null {
  if (body.encoding === 'utf8') return new TextEncoder().encode(body.data ?? '');
  if (body.encoding === 'base64') {
    const bin = atob(body.data ?? '');
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  return null;
}

export { contentCodings } from '../../../core/src/decode/content-encoding-header.js';

// Spelled from the constructors, not the DOM's own names, so this file also type-checks under
// Node's types (the root tests read gRPC bodies with it).
type Format = ConstructorParameters<typeof DecompressionStream>[0];
type BlobParts = ConstructorParameters<typeof Blob>[0];

const STREAM_FORMATS: Record<string, string[]> = {
  gzip: ['gzip'],
  'x-gzip': ['gzip'],
  // HTTP "deflate" is meant to be zlib-wrapped; some servers send it raw.
  deflate: ['deflate', 'deflate-raw'],
  br: ['br', 'brotli'],
};

export function canDecodeInBrowser(coding: string): boolean {
  return (STREAM_FORMATS[coding] ?? []).some(supported);
}

function supported(format: string): boolean {
  try {
    new DecompressionStream(format as Format);
    return true;
  } catch {
    return false;
  }
}

export interface Decoded {
  bytes: Uint8Array;
  /** Set when decoding stopped early (a truncated or corrupt body): what was decoded is kept. */
  warning: string | null;
}

/** Undoes one coding; a stream error keeps the output so far (truncated bodies decode partly). */
async function inflate(data: Uint8Array, format: string): Promise<Decoded> {
  const stream = new Blob([data] as BlobParts).stream().pipeThrough(new DecompressionStream(format as Format));
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let warning: string | null = null;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
    }
  } catch (err) {
    warning = `decoding stopped early: ${(err as Error).message || 'the data ends or is corrupt'}`;
  }
  const size = chunks.reduce((n, c) => n + c.length, 0);
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return { bytes, warning };
}

/** Undoes all codings in the browser; null when one of them is not supported here. */
export async function decodeInBrowser(data: Uint8Array, codings: string[]): Promise<Decoded | null> {
  let current: Decoded = { bytes: data, warning: null };
  for (const coding of [...codings].reverse()) {
    const formats = (STREAM_FORMATS[coding] ?? []).filter(supported);
    if (formats.length === 0) return null;
    let result: Decoded | null = null;
    for (const format of formats) {
      result = await inflate(current.bytes, format);
      if (!result.warning || result.bytes.length > 0) break;
    }
    current = { bytes: result!.bytes, warning: result!.warning ?? current.warning };
  }
  return current;
}

export type BodyKind = 'json' | 'text' | 'image' | 'binary' | 'empty';

const TEXT_TYPES = /^(text\/|application\/(json|.*\+json|xml|.*\+xml|javascript|ecmascript|x-www-form-urlencoded|graphql|x-ndjson|yaml|toml))/i;

/** How to show bytes, from the content type first and the bytes second. */
export function classifyBody(bytes: Uint8Array, contentType: string | null): BodyKind {
  if (bytes.length === 0) return 'empty';
  const type = (contentType ?? '').split(';')[0].trim().toLowerCase();
  if (type.startsWith('image/')) return 'image';
  const text = utf8(bytes);
  if (text !== null && (type.includes('json') || /^\s*[[{]/.test(text)) && tryJson(text) !== undefined) return 'json';
  if (TEXT_TYPES.test(type)) return text !== null ? 'text' : 'binary';
  if (text !== null && !/[\u0000-\u0008\u000e-\u001f]/.test(text.slice(0, 4096))) return 'text';
  return 'binary';
}

export function utf8(bytes: Uint8Array): string | null {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

export function tryJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Classic hex dump: offset, 16 bytes, ASCII. */
export function hexDump(bytes: Uint8Array, limit = 64 * 1024): string {
  const lines: string[] = [];
  const n = Math.min(bytes.length, limit);
  for (let off = 0; off < n; off += 16) {
    const slice = bytes.subarray(off, Math.min(off + 16, n));
    const hex = Array.from(slice, (b) => b.toString(16).padStart(2, '0'));
    const left = hex.slice(0, 8).join(' ');
    const right = hex.slice(8).join(' ');
    const ascii = Array.from(slice, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${off.toString(16).padStart(8, '0')}  ${left.padEnd(23)}  ${right.padEnd(23)}  |${ascii}|`);
  }
  if (bytes.length > n) lines.push(`… ${bytes.length - n} more bytes`);
  return lines.join('\n');
}
