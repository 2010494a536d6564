// HTTP content codings (RFC 9110 §8.4): which a message says it applied, and undoing them. Used
// by the inspector's decoded body route and by the filter's body search.
import zlib from 'node:zlib';
import type { HeaderList } from '../capture/events.js';

/** Decoded output cap: a small compressed body can expand enormously. */
const MAX_DECODED = 64 * 1024 * 1024;

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
