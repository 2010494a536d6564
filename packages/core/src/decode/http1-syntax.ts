// The syntax of HTTP/1.x heads and framing (RFC 9112): start lines, header fields (obs-fold
// included), the Content-Length and Transfer-Encoding rules that decide how a body is framed, and
// chunk-size lines. Pure functions over text that throw Http1DecodeError; the state machine that
// feeds them bytes is http1-decoder.ts.
import type { HeaderList } from '../capture/events.js';
import { Http1DecodeError } from './http1-errors.js';

export type Http1Version = '1.0' | '1.1';

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Controls other than HT are never valid in a header value (this also catches a bare CR).
const BAD_VALUE_CHAR = /[\x00-\x08\x0a-\x1f\x7f]/;
const BAD_TARGET_CHAR = /[\x00-\x20\x7f]/;

/** Splits a block ending in an empty line into its lines (no line breaks, no final empty line). */
export function blockLines(block: Buffer, code: 'bad-start-line' | 'bad-header'): string[] {
  const lines = block.toString('latin1').split('\n');
  lines.length -= 2; // the empty line and what follows its LF
  return lines.map((line, i) => {
    const text = line.endsWith('\r') ? line.slice(0, -1) : line;
    if (text.includes('\r')) throw new Http1DecodeError(i === 0 ? code : 'bad-header', 'bare CR in a line');
    return text;
  });
}

/** Header or trailer field lines, with obs-fold continuation lines folded into one space. */
export function parseFields(lines: string[]): HeaderList {
  const headers: HeaderList = [];
  for (const line of lines) {
    if (line[0] === ' ' || line[0] === '\t') {
      const last = headers[headers.length - 1];
      if (!last) throw new Http1DecodeError('bad-header', 'continuation line without a field');
      const more = trimOws(line);
      if (BAD_VALUE_CHAR.test(more)) throw new Http1DecodeError('bad-header', `control character in ${last[0]}`);
      last[1] = last[1] === '' ? more : more === '' ? last[1] : `${last[1]} ${more}`;
      continue;
    }
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    if (colon < 0 || !TOKEN.test(name)) {
      throw new Http1DecodeError('bad-header', `not a header field: ${JSON.stringify(line.slice(0, 80))}`);
    }
    const value = trimOws(line.slice(colon + 1));
    if (BAD_VALUE_CHAR.test(value)) throw new Http1DecodeError('bad-header', `control character in ${name}`);
    headers.push([name, value]);
  }
  return headers;
}

function trimOws(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && (s[start] === ' ' || s[start] === '\t')) start++;
  while (end > start && (s[end - 1] === ' ' || s[end - 1] === '\t')) end--;
  return s.slice(start, end);
}

function parseVersion(text: string, where: string): Http1Version {
  const m = /^HTTP\/(\d)\.(\d)$/.exec(text);
  if (!m) throw new Http1DecodeError('bad-start-line', `no HTTP version in the ${where}`);
  if (m[1] !== '1') throw new Http1DecodeError('bad-version', `HTTP/${m[1]}.${m[2]} is not HTTP/1.x`);
  return m[2] === '0' ? '1.0' : '1.1';
}

export function parseRequestLine(line: string): { method: string; target: string; version: Http1Version } {
  const parts = line.split(' ');
  if (parts.length !== 3) throw new Http1DecodeError('bad-start-line', `request line ${JSON.stringify(line.slice(0, 80))}`);
  const [method, target, version] = parts;
  if (!TOKEN.test(method)) throw new Http1DecodeError('bad-start-line', `bad method ${JSON.stringify(method.slice(0, 40))}`);
  if (target === '' || BAD_TARGET_CHAR.test(target)) throw new Http1DecodeError('bad-start-line', 'bad request target');
  return { method, target, version: parseVersion(version, 'request line') };
}

export function parseStatusLine(line: string): { status: number; statusText: string; version: Http1Version } {
  const firstSpace = line.indexOf(' ');
  if (firstSpace < 0) throw new Http1DecodeError('bad-start-line', `status line ${JSON.stringify(line.slice(0, 80))}`);
  const version = parseVersion(line.slice(0, firstSpace), 'status line');
  const rest = line.slice(firstSpace + 1);
  // Lenient like real clients: "HTTP/1.1 200" without a reason phrase is accepted.
  const m = /^(\d{3})(?: (.*))?$/.exec(rest);
  if (!m) throw new Http1DecodeError('bad-start-line', `bad status in ${JSON.stringify(line.slice(0, 80))}`);
  const statusText = m[2] ?? '';
  if (BAD_VALUE_CHAR.test(statusText)) throw new Http1DecodeError('bad-start-line', 'control character in reason phrase');
  return { status: Number(m[1]), statusText, version };
}

function headerValues(headers: HeaderList, lowerName: string): string[] | null {
  let values: string[] | null = null;
  for (const [name, value] of headers) {
    if (name.length === lowerName.length && name.toLowerCase() === lowerName) (values ??= []).push(value);
  }
  return values;
}

/** Transfer codings in order, lower-cased; null when the message has none. */
function transferCodings(headers: HeaderList): string[] | null {
  const values = headerValues(headers, 'transfer-encoding');
  if (!values) return null;
  const codings = values.flatMap((v) => v.split(',')).map((c) => trimOws(c).toLowerCase()).filter((c) => c !== '');
  return codings.length > 0 ? codings : null;
}

/** Content-Length, or null when absent; repeated equal values are accepted (RFC 9110 §8.6). */
function contentLength(headers: HeaderList): number | null {
  const values = headerValues(headers, 'content-length');
  if (!values) return null;
  let length: number | null = null;
  for (const item of values.flatMap((v) => v.split(','))) {
    const text = trimOws(item);
    if (!/^\d+$/.test(text)) throw new Http1DecodeError('bad-content-length', `Content-Length ${JSON.stringify(text.slice(0, 40))}`);
    const n = Number(text);
    if (!Number.isSafeInteger(n)) throw new Http1DecodeError('bad-content-length', `Content-Length ${text} too large`);
    if (length !== null && n !== length) throw new Http1DecodeError('bad-content-length', 'conflicting Content-Length values');
    length = n;
  }
  return length;
}

export function requestFraming(headers: HeaderList): number | 'chunked' {
  const codings = transferCodings(headers);
  if (codings) {
    if (codings[codings.length - 1] !== 'chunked') {
      throw new Http1DecodeError('bad-transfer-encoding', `request Transfer-Encoding ${codings.join(', ')}`);
    }
    return 'chunked';
  }
  return contentLength(headers) ?? 0;
}

export function responseFraming(headers: HeaderList): number | 'chunked' | 'until-close' {
  const codings = transferCodings(headers);
  if (codings) return codings[codings.length - 1] === 'chunked' ? 'chunked' : 'until-close';
  return contentLength(headers) ?? 'until-close';
}

export function parseChunkSize(line: string): number {
  const m = /^([0-9A-Fa-f]+)[ \t]*(?:;.*)?$/.exec(line);
  if (!m) throw new Http1DecodeError('bad-chunk-size', `chunk-size line ${JSON.stringify(line.slice(0, 40))}`);
  const digits = m[1].replace(/^0+(?=.)/, '');
  const size = digits.length <= 14 ? parseInt(digits, 16) : Infinity;
  if (!Number.isSafeInteger(size)) throw new Http1DecodeError('bad-chunk-size', `chunk size ${m[1]} too large`);
  return size;
}
