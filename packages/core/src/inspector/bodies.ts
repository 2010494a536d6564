// Bodies for the API: inline JSON (text when valid UTF-8, else base64) and content-coding removal
// for the raw route, for codings a browser cannot undo itself (br on most, or any when asked).
import { isUtf8 } from 'node:buffer';
import zlib from 'node:zlib';
import type { HeaderList } from '../capture/events.js';
import type { StoredBody } from '../store/row-types.js';
import type { BodyJson } from './protocol.js';

export type BodyMode = 'auto' | 'base64' | 'none';

/** Bodies larger than this are not inlined in the exchange JSON. */
export const INLINE_BODY_LIMIT = 1024 * 1024;
/** Decoded output cap: a small compressed body can expand enormously. */
const MAX_DECODED = 64 * 1024 * 1024;

export function bodyJson(body: StoredBody | null, mode: BodyMode, inlineLimit = INLINE_BODY_LIMIT): BodyJson | null {
  if (!body) return null;
  const base = { size: body.size, storedSize: body.data.length, truncated: body.truncated };
  if (mode === 'none' || body.data.length > inlineLimit) return { ...base, encoding: 'omitted' };
  if (mode === 'auto' && isUtf8(body.data)) return { ...base, encoding: 'utf8', data: body.data.toString('utf8') };
  return { ...base, encoding: 'base64', data: body.data.toString('base64') };
}

/** The Content-Encoding codings in the order they were applied. */
export function contentCodings(headers: HeaderList | null): string[] {
  const codings: string[] = [];
  for (const [name, value] of headers ?? []) {
    if (name.toLowerCase() !== 'content-encoding') continue;
    for (const c of value.split(',')) {
      const coding = c.trim().toLowerCase();
      if (coding && coding !== 'identity') codings.push(coding);
    }
  }
  return codings;
}

export class UnsupportedCodingError extends Error {}

/**
 * Undoes the content codings (last applied first). A truncated body decodes as far as it goes.
 * Throws UnsupportedCodingError for codings Node cannot undo, and zlib errors for corrupt data.
 */
export function decodeContent(data: Buffer, codings: string[]): Buffer {
  let out = data;
  const partial = { finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: MAX_DECODED };
  for (const coding of [...codings].reverse()) {
    switch (coding) {
      case 'gzip':
      case 'x-gzip':
        out = zlib.gunzipSync(out, partial);
        break;
      case 'deflate':
        // Servers send zlib-wrapped (as specified) or raw deflate (common in practice).
        try {
          out = zlib.inflateSync(out, partial);
        } catch {
          out = zlib.inflateRawSync(out, partial);
        }
        break;
      case 'br':
        out = zlib.brotliDecompressSync(out, {
          finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH,
          maxOutputLength: MAX_DECODED,
        });
        break;
      default:
        throw new UnsupportedCodingError(`cannot decode the content coding "${coding}"`);
    }
  }
  return out;
}
