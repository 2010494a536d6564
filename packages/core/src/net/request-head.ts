// Bytes the active path writes upstream itself: the request head (end-to-end headers in the
// client's order and case, hop-by-hop ones dropped) and chunked framing for bodies that had no
// length. Strings are latin1: header text came from Node's parser as one byte per character.
import type { HeaderList } from '../capture/events.js';
import { endToEndHeaders } from './hop-by-hop.js';

/** How the request body is framed towards the upstream. */
export type RequestBodyFraming = 'none' | 'length' | 'chunked';

/**
 * `METHOD path HTTP/1.1` and the end-to-end headers; `Host` first when the client sent none,
 * `Transfer-Encoding: chunked` re-declared when the body is chunked (the client's own framing is
 * hop-by-hop), `Content-Length` when the client's Connection header named it.
 */
export function requestHead(method: string, path: string, headers: HeaderList, hostFallback: string, framing: RequestBodyFraming): string {
  let head = `${method} ${path} HTTP/1.1\r\n`;
  const flat = endToEndHeaders(headers);
  let hasHost = false;
  let hasLength = false;
  for (let i = 0; i < flat.length; i += 2) {
    if (!hasHost && flat[i].length === 4 && flat[i].toLowerCase() === 'host') hasHost = true;
    if (!hasLength && flat[i].length === 14 && flat[i].toLowerCase() === 'content-length') hasLength = true;
  }
  if (!hasHost) head += `Host: ${hostFallback}\r\n`;
  for (let i = 0; i < flat.length; i += 2) head += `${flat[i]}: ${flat[i + 1]}\r\n`;
  if (framing === 'chunked') head += 'Transfer-Encoding: chunked\r\n';
  // `Connection: content-length` must not strip the length of a body that is sent anyway: the
  // upstream would read that body as the next request (request smuggling).
  if (framing === 'length' && !hasLength) head += `Content-Length: ${declaredLength(headers)}\r\n`;
  return `${head}\r\n`;
}

/** The body framing the client's request declared (Node's parser already validated it). */
export function requestFraming(headers: HeaderList): RequestBodyFraming {
  let length: string | null = null;
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (lower === 'transfer-encoding' && /(^|,)\s*chunked\s*$/i.test(value)) return 'chunked';
    if (lower === 'content-length') length = value;
  }
  return length !== null && Number(length) > 0 ? 'length' : 'none';
}

function declaredLength(headers: HeaderList): string {
  for (const [name, value] of headers) if (name.toLowerCase() === 'content-length') return value.trim();
  return '0';
}

/** The size line that goes before a chunk of `size` bytes. */
export function chunkSizeLine(size: number): string {
  return `${size.toString(16)}\r\n`;
}

/** The last chunk, with the request's trailers, ending the body. */
export function lastChunk(trailers: HeaderList): string {
  let text = '0\r\n';
  for (const [name, value] of trailers) text += `${name}: ${value}\r\n`;
  return `${text}\r\n`;
}
