// A pure parser of a TLS ClientHello from the first bytes a client sends (RFC 8446 §4.1.2,
// RFC 6066 §3 SNI, RFC 7301 ALPN). It never decrypts anything and never throws: the caller keeps
// appending bytes and asks again while the answer is `need-more`.
import type { ClientHelloInfo } from '../capture/events.js';

export type HelloResult =
  | { status: 'need-more' }
  | { status: 'not-tls' }
  | { status: 'ok'; hello: ClientHelloInfo }
  | { status: 'error'; code: HelloErrorCode; message: string };

export type HelloErrorCode =
  | 'bad-record' // a record header that is not a TLS handshake record
  | 'not-client-hello' // the first handshake message is something else
  | 'hello-too-large' // over MAX_HELLO_BYTES
  | 'truncated' // a length inside the hello runs past its end
  | 'bad-hello' // another structural fault in the hello body
  | 'bad-extension' // an extension we read (SNI, ALPN, supported_versions) is malformed
  | 'duplicate-extension'; // the same extension type twice (RFC 8446 §4.2 forbids it)

/** Largest handshake message accepted as a ClientHello. */
export const MAX_HELLO_BYTES = 64 * 1024;

const RECORD_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 0x01;
const MAX_RECORD_FRAGMENT = 16384; // TLSPlaintext.length limit, RFC 8446 §5.1
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;
const EXT_SUPPORTED_VERSIONS = 43;

/** Whether a connection's first byte may start a TLS handshake record. */
export function looksLikeTls(firstByte: number): boolean {
  return firstByte === RECORD_HANDSHAKE;
}

/** GREASE values (RFC 8701): 0x?A?A with both bytes equal. They are not real versions or protocols. */
function isGrease(value: number): boolean {
  return (value & 0x0f0f) === 0x0a0a && value >> 8 === (value & 0xff);
}

class HelloError extends Error {
  constructor(
    readonly code: HelloErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function parseClientHello(buf: Buffer): HelloResult {
  if (buf.length === 0) return { status: 'need-more' };
  if (!looksLikeTls(buf[0])) return { status: 'not-tls' };
  if (buf.length < 2) return { status: 'need-more' };
  if (buf[1] !== 0x03) return { status: 'not-tls' };
  try {
    const message = reassemble(buf);
    if (message === null) return { status: 'need-more' };
    return { status: 'ok', hello: parseBody(message) };
  } catch (err) {
    if (err instanceof HelloError) return { status: 'error', code: err.code, message: err.message };
    throw err;
  }
}

/**
 * Collects the handshake bytes of consecutive handshake records until the first handshake
 * message is complete; returns its body, or null when more bytes are needed.
 */
function reassemble(buf: Buffer): Buffer | null {
  const fragments: Buffer[] = [];
  let collected = 0;
  let bodyLength = -1;
  let off = 0;
  for (;;) {
    if (off < buf.length && buf[off] !== RECORD_HANDSHAKE) {
      throw new HelloError('bad-record', `record type ${buf[off]} before the ClientHello was complete`);
    }
    if (off + 1 < buf.length && buf[off + 1] !== 0x03) {
      throw new HelloError('bad-record', `record version major ${buf[off + 1]}, expected 3`);
    }
    if (buf.length - off < 5) return null;
    const length = buf.readUInt16BE(off + 3);
    if (length === 0) throw new HelloError('bad-record', 'empty handshake record');
    if (length > MAX_RECORD_FRAGMENT) throw new HelloError('bad-record', `record length ${length} over ${MAX_RECORD_FRAGMENT}`);
    const available = Math.min(length, buf.length - off - 5);
    fragments.push(buf.subarray(off + 5, off + 5 + available));
    collected += available;
    if (bodyLength < 0 && collected >= 1) {
      const type = fragments[0][0]; // never empty here: an empty first fragment returned above
      if (type !== HANDSHAKE_CLIENT_HELLO) throw new HelloError('not-client-hello', `handshake message type ${type}`);
    }
    if (bodyLength < 0 && collected >= 4) {
      const header = Buffer.concat(fragments).subarray(0, 4);
      bodyLength = header.readUIntBE(1, 3);
      if (bodyLength > MAX_HELLO_BYTES) {
        throw new HelloError('hello-too-large', `ClientHello of ${bodyLength} bytes, limit ${MAX_HELLO_BYTES}`);
      }
    }
    if (bodyLength >= 0 && collected >= 4 + bodyLength) {
      return Buffer.concat(fragments).subarray(4, 4 + bodyLength);
    }
    if (available < length) return null;
    off += 5 + length;
  }
}

/** A bounds-checked reader over one vector; overruns are `truncated`. */
class Reader {
  constructor(
    private readonly buf: Buffer,
    private pos = 0,
    private readonly end = buf.length,
    private readonly what = 'ClientHello',
  ) {}

  get left(): number {
    return this.end - this.pos;
  }

  private need(n: number, field: string): void {
    if (this.left < n) throw new HelloError('truncated', `${field} needs ${n} bytes, ${this.what} has ${this.left} left`);
  }

  u8(field: string): number {
    this.need(1, field);
    return this.buf[this.pos++];
  }

  u16(field: string): number {
    this.need(2, field);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  bytes(n: number, field: string): Buffer {
    this.need(n, field);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** A sub-reader over the next `n` bytes (a length-prefixed vector). */
  sub(n: number, field: string): Reader {
    this.need(n, field);
    const r = new Reader(this.buf, this.pos, this.pos + n, field);
    this.pos += n;
    return r;
  }
}

function parseBody(body: Buffer): ClientHelloInfo {
  const r = new Reader(body);
  const version = r.u16('legacy_version');
  r.bytes(32, 'random');
  const sessionIdLength = r.u8('legacy_session_id length');
  if (sessionIdLength > 32) throw new HelloError('bad-hello', `session id of ${sessionIdLength} bytes`);
  r.bytes(sessionIdLength, 'legacy_session_id');
  const suitesLength = r.u16('cipher_suites length');
  if (suitesLength < 2 || suitesLength % 2 !== 0) throw new HelloError('bad-hello', `cipher_suites length ${suitesLength}`);
  r.bytes(suitesLength, 'cipher_suites');
  const compressionLength = r.u8('compression_methods length');
  if (compressionLength < 1) throw new HelloError('bad-hello', 'no compression methods');
  r.bytes(compressionLength, 'compression_methods');

  const info: ClientHelloInfo = { sni: null, alpn: [], version, supportedVersions: [] };
  if (r.left === 0) return info; // SSL 3.0-era hellos may carry no extensions at all
  const extensionsLength = r.u16('extensions length');
  if (extensionsLength !== r.left) {
    const code = extensionsLength > r.left ? 'truncated' : 'bad-hello';
    throw new HelloError(code, `extensions length ${extensionsLength}, ${r.left} bytes follow`);
  }
  const seen = new Set<number>();
  while (r.left > 0) {
    const type = r.u16('extension type');
    const data = r.sub(r.u16('extension length'), `extension ${type}`);
    if (seen.has(type)) throw new HelloError('duplicate-extension', `extension ${type} appears twice`);
    seen.add(type);
    if (type === EXT_SERVER_NAME) info.sni = parseServerName(data);
    else if (type === EXT_ALPN) info.alpn = parseAlpn(data);
    else if (type === EXT_SUPPORTED_VERSIONS) info.supportedVersions = parseSupportedVersions(data);
  }
  return info;
}

function vectorLength(data: Reader, width: 1 | 2, field: string): number {
  const n = width === 1 ? data.u8(field) : data.u16(field);
  if (n !== data.left) throw new HelloError('bad-extension', `${field} ${n}, extension holds ${data.left}`);
  return n;
}

function parseServerName(data: Reader): string | null {
  if (vectorLength(data, 2, 'server_name_list length') === 0) {
    throw new HelloError('bad-extension', 'empty server_name_list');
  }
  let hostName: string | null = null;
  while (data.left > 0) {
    const nameType = data.u8('server name type');
    const name = data.bytes(data.u16('server name length'), 'server name');
    if (nameType !== 0) continue; // only host_name is defined; skip others
    if (hostName !== null) throw new HelloError('bad-extension', 'two host_name entries');
    if (name.length === 0) throw new HelloError('bad-extension', 'empty host_name');
    for (const c of name) {
      if (c <= 0x20 || c >= 0x7f) throw new HelloError('bad-extension', `host_name byte 0x${c.toString(16)}`);
    }
    hostName = name.toString('latin1');
  }
  return hostName;
}

function parseAlpn(data: Reader): string[] {
  if (vectorLength(data, 2, 'protocol_name_list length') < 2) {
    throw new HelloError('bad-extension', 'empty ALPN protocol list');
  }
  const protocols: string[] = [];
  while (data.left > 0) {
    const length = data.u8('protocol name length');
    if (length === 0) throw new HelloError('bad-extension', 'empty ALPN protocol name');
    const name = data.bytes(length, 'protocol name');
    if (length === 2 && isGrease(name.readUInt16BE(0))) continue;
    protocols.push(name.toString('latin1'));
  }
  return protocols;
}

function parseSupportedVersions(data: Reader): number[] {
  const length = vectorLength(data, 1, 'supported_versions length');
  if (length < 2 || length % 2 !== 0) throw new HelloError('bad-extension', `supported_versions length ${length}`);
  const versions: number[] = [];
  while (data.left > 0) {
    const v = data.u16('version');
    if (!isGrease(v)) versions.push(v);
  }
  return versions;
}
