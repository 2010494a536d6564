// Undoing HTTP content codings (RFC 9110 §8.4) on Node: for the inspector's decoded body route and
// the filter's body search. Which codings a message names: content-encoding-header.ts.
import zlib from 'node:zlib';

/** Decoded output cap: a small compressed body can expand enormously. */
const MAX_DECODED = 64 * 1024 * 1024;

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
