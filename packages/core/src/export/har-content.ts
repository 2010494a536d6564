// Bodies as HAR text: content coding removed when it can be (the store keeps it as sent), text
// kept as text when it decodes cleanly in its charset, everything else in base64.
import { TextDecoder } from 'node:util';
import zlib from 'node:zlib';
import type { HeaderList } from '../capture/events.js';
import type { StoredBody } from '../store/row-types.js';

/** Largest decoded body the exporter builds; beyond it the body stays encoded (a zip bomb guard). */
export const MAX_DECODED_BYTES = 64 * 1024 * 1024;

export interface HarBodyText {
  text: string;
  base64: boolean;
}

export interface DecodedBody {
  data: Buffer;
  /** Content codings still applied to `data`, outermost last, e.g. `gzip`; '' when none. */
  stillEncoded: string;
}

export function headerValue(headers: HeaderList | null, name: string): string | null {
  if (!headers) return null;
  const lower = name.toLowerCase();
  for (const [n, v] of headers) if (n.toLowerCase() === lower) return v;
  return null;
}

/** All values of a header (duplicates joined by HTTP's list rules where the caller wants that). */
export function headerValues(headers: HeaderList | null, name: string): string[] {
  if (!headers) return [];
  const lower = name.toLowerCase();
  return headers.filter(([n]) => n.toLowerCase() === lower).map(([, v]) => v);
}

/**
 * Removes the content codings named in Content-Encoding (applied in order, so removed last first).
 * Stops at the first coding it cannot remove (unknown, corrupt, truncated or too large) and says
 * which codings remain.
 */
export function removeContentEncoding(body: StoredBody, headers: HeaderList | null): DecodedBody {
  const codings = headerValues(headers, 'content-encoding')
    .join(',')
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
  let data = body.data;
  // A cut body cannot be inflated to the end; leave it as stored.
  if (body.truncated) return { data, stillEncoded: codings.join(', ') };
  while (codings.length > 0) {
    const decoded = decodeOne(codings[codings.length - 1], data);
    if (!decoded) break;
    data = decoded;
    codings.pop();
  }
  return { data, stillEncoded: codings.join(', ') };
}

function decodeOne(coding: string, data: Buffer): Buffer | null {
  const opts = { maxOutputLength: MAX_DECODED_BYTES };
  try {
    switch (coding) {
      case 'gzip':
      case 'x-gzip':
        return zlib.gunzipSync(data, opts);
      case 'deflate':
        // RFC 9110 says zlib-wrapped; some servers send raw deflate.
        try {
          return zlib.inflateSync(data, opts);
        } catch {
          return zlib.inflateRawSync(data, opts);
        }
      case 'br':
        return zlib.brotliDecompressSync(data, opts);
      default:
        return null;
    }
  } catch {
    return null;
  }
}

const TEXTUAL_TYPE =
  /^(text\/|application\/([\w.+-]*\+)?(json|xml|javascript|ecmascript|x-www-form-urlencoded|graphql|yaml|x-yaml|csv|x-ndjson|ld\+json|manifest\+json)$|image\/svg\+xml$)/;

/** The media type without parameters, lower case (`text/html`). */
export function mediaType(contentType: string | null): string {
  return (contentType ?? '').split(';')[0].trim().toLowerCase();
}

function charsetOf(contentType: string | null): string | null {
  const m = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType ?? '');
  return m ? m[1].toLowerCase() : null;
}

/**
 * Text when the body is text: a textual media type (or none, and the bytes look like text) that
 * decodes without error in its charset (UTF-8 by default). Otherwise base64 of the bytes.
 */
export function bodyText(data: Buffer, contentType: string | null): HarBodyText {
  if (data.length === 0) return { text: '', base64: false };
  const type = mediaType(contentType);
  const charset = charsetOf(contentType) ?? 'utf-8';
  const textual = TEXTUAL_TYPE.test(type) || (type === '' && looksLikeText(data));
  if (textual) {
    const text = decodeStrict(data, charset);
    if (text !== null) return { text, base64: false };
  }
  return { text: data.toString('base64'), base64: true };
}

/** Fatal decoders by charset label (null: a label TextDecoder does not know). */
const decoders = new Map<string, TextDecoder | null>();

function decodeStrict(data: Buffer, charset: string): string | null {
  let decoder = decoders.get(charset);
  if (decoder === undefined) {
    try {
      decoder = new TextDecoder(charset, { fatal: true, ignoreBOM: true });
    } catch {
      decoder = null;
    }
    if (decoders.size < 64) decoders.set(charset, decoder);
  }
  try {
    return decoder ? decoder.decode(data) : null;
  } catch {
    return null; // bytes that are not valid in the charset
  }
}

/** No NUL and no C0 controls other than tab, CR, LF, FF and ESC in the first 4 KiB. */
function looksLikeText(data: Buffer): boolean {
  const end = Math.min(data.length, 4096);
  for (let i = 0; i < end; i++) {
    const b = data[i];
    if (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d && b !== 0x0c && b !== 0x1b) return false;
  }
  return true;
}
