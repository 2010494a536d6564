// The first-bytes detector: one ordered decision table, asked again after every unwrap
// (after CONNECT, after TLS). Each rule either decides, defers ("need more bytes") or passes.
import { looksLikeTls } from '../decode/client-hello.js';

export type Detection = 'need-more' | 'tls' | 'h2c' | 'http1' | 'opaque';

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const MAX_METHOD_LENGTH = 24;

type Rule = (buf: Buffer) => Detection | null;

const rules: Rule[] = [
  // 1. A TLS record: handshake content type, protocol major version 3.
  (buf) => (looksLikeTls(buf[0]) ? (buf.length < 2 ? 'need-more' : buf[1] === 0x03 ? 'tls' : null) : null),
  // 2. The HTTP/2 connection preface (cleartext, prior knowledge).
  (buf) => {
    const n = Math.min(buf.length, H2_PREFACE.length);
    if (buf.compare(H2_PREFACE, 0, n, 0, n) !== 0) return null;
    return n === H2_PREFACE.length ? 'h2c' : 'need-more';
  },
  // 3. An HTTP/1 request line: a method token and a space.
  (buf) => {
    for (let i = 0; i < buf.length && i <= MAX_METHOD_LENGTH; i++) {
      const c = buf[i];
      if (c === 0x20) return i > 0 ? 'http1' : null;
      if (!isTokenChar(c)) return null;
    }
    return buf.length <= MAX_METHOD_LENGTH ? 'need-more' : null;
  },
];

export function detectProtocol(buf: Buffer): Detection {
  if (buf.length === 0) return 'need-more';
  for (const rule of rules) {
    const verdict = rule(buf);
    if (verdict) return verdict;
  }
  return 'opaque';
}

function isTokenChar(c: number): boolean {
  // Methods in practice: upper-case letters, digits, '-' and '_'.
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f;
}
