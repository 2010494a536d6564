// SOCKS5 messages (RFC 1928, and RFC 1929 username/password): a pure reader for what a client
// sends and encoders for what the proxy answers. The reader takes bytes however they arrive (one
// at a time is fine), is asked for the message the handshake expects next, and answers null
// until that message is complete. Garbage throws Socks5Error with a stable code.
import { formatIpv4, formatIpv6, ipv4Bytes, ipv6Bytes } from './socks5-address.js';

export const SOCKS5_VERSION = 0x05;
export const SOCKS4_VERSION = 0x04;
/** RFC 1929 §2: the version of the username/password subnegotiation. */
export const USERPASS_VERSION = 0x01;

export const Socks5Method = { noAuth: 0x00, userPass: 0x02, noneAcceptable: 0xff } as const;
export const Socks5Command = { connect: 0x01, bind: 0x02, udpAssociate: 0x03 } as const;
export const Socks5AddressType = { ipv4: 0x01, domain: 0x03, ipv6: 0x04 } as const;
export const Socks5Reply = {
  succeeded: 0x00,
  generalFailure: 0x01,
  notAllowed: 0x02,
  networkUnreachable: 0x03,
  hostUnreachable: 0x04,
  connectionRefused: 0x05,
  ttlExpired: 0x06,
  commandNotSupported: 0x07,
  addressTypeNotSupported: 0x08,
} as const;

export type Socks5ErrorCode =
  | 'bad-version' // not 0x05 where a SOCKS5 message starts
  | 'bad-auth-version' // not 0x01 where a username/password message starts
  | 'bad-reserved' // the request's reserved octet is not 0x00
  | 'bad-address-type' // an address type RFC 1928 does not define (answered 0x08)
  | 'bad-domain' // an empty domain name, or one with octets outside printable ASCII
  | 'bad-port' // port 0
  | 'too-much-data'; // more bytes held than any handshake needs

export class Socks5Error extends Error {
  constructor(
    readonly code: Socks5ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'Socks5Error';
  }
}

export interface Socks5Greeting {
  /** Authentication methods offered, in the client's order. */
  methods: number[];
}

export interface Socks5Credentials {
  user: string;
  pass: string;
}

export interface Socks5Request {
  command: number;
  addressType: number;
  /** Dotted quad, RFC 5952 IPv6 text (no brackets), or the domain name as sent. */
  host: string;
  port: number;
}

/**
 * Bytes held at most. The largest handshake message is 513 bytes (RFC 1929 with 255-byte name
 * and password); the rest of the bound is room for data a client sends ahead of our answers
 * (a ClientHello right after the request), which becomes the tunnel's first bytes.
 */
export const DEFAULT_MAX_BUFFERED = 64 * 1024;

export class Socks5Reader {
  private held: Buffer = Buffer.alloc(0);

  constructor(private readonly maxBuffered = DEFAULT_MAX_BUFFERED) {}

  get buffered(): number {
    return this.held.length;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.held.length + chunk.length > this.maxBuffered) {
      throw new Socks5Error('too-much-data', `more than ${this.maxBuffered} bytes sent before the SOCKS5 handshake finished`);
    }
    this.held = this.held.length === 0 ? chunk : Buffer.concat([this.held, chunk]);
  }

  /** VER NMETHODS METHODS… (RFC 1928 §3). */
  readGreeting(): Socks5Greeting | null {
    const b = this.held;
    if (b.length < 1) return null;
    expectVersion(b[0], 'greeting');
    if (b.length < 2 || b.length < 2 + b[1]) return null;
    const methods = [...b.subarray(2, 2 + b[1])];
    this.consume(2 + b[1]);
    return { methods };
  }

  /** VER ULEN UNAME PLEN PASSWD (RFC 1929 §2); names and passwords are read as UTF-8. */
  readCredentials(): Socks5Credentials | null {
    const b = this.held;
    if (b.length < 1) return null;
    if (b[0] !== USERPASS_VERSION) {
      throw new Socks5Error('bad-auth-version', `username/password message with version ${hex(b[0])}, expected 0x01 (RFC 1929)`);
    }
    if (b.length < 2) return null;
    const userEnd = 2 + b[1];
    if (b.length < userEnd + 1) return null;
    const passEnd = userEnd + 1 + b[userEnd];
    if (b.length < passEnd) return null;
    const user = b.toString('utf8', 2, userEnd);
    const pass = b.toString('utf8', userEnd + 1, passEnd);
    this.consume(passEnd);
    return { user, pass };
  }

  /** VER CMD RSV ATYP DST.ADDR DST.PORT (RFC 1928 §4). */
  readRequest(): Socks5Request | null {
    const b = this.held;
    if (b.length < 1) return null;
    expectVersion(b[0], 'request');
    if (b.length < 3) return null;
    if (b[2] !== 0x00) throw new Socks5Error('bad-reserved', `request reserved octet is ${hex(b[2])}, must be 0x00`);
    if (b.length < 4) return null;
    const addressType = b[3];
    let addressEnd: number;
    if (addressType === Socks5AddressType.ipv4) addressEnd = 8;
    else if (addressType === Socks5AddressType.ipv6) addressEnd = 20;
    else if (addressType === Socks5AddressType.domain) {
      if (b.length < 5) return null;
      if (b[4] === 0) throw new Socks5Error('bad-domain', 'empty domain name in request');
      addressEnd = 5 + b[4];
    } else {
      throw new Socks5Error('bad-address-type', `address type ${hex(addressType)} is not one of 0x01 (IPv4), 0x03 (domain), 0x04 (IPv6)`);
    }
    if (b.length < addressEnd + 2) return null;
    const host =
      addressType === Socks5AddressType.ipv4
        ? formatIpv4(b.subarray(4, 8))
        : addressType === Socks5AddressType.ipv6
          ? formatIpv6(b.subarray(4, 20))
          : domainName(b.subarray(5, addressEnd));
    const port = b.readUInt16BE(addressEnd);
    if (port === 0) throw new Socks5Error('bad-port', `request for ${host} with port 0`);
    this.consume(addressEnd + 2);
    return { command: b[1], addressType, host, port };
  }

  /** Everything held after the messages read so far (sent ahead of our answers), and empties the reader. */
  takeRest(): Buffer {
    const rest = this.held;
    this.held = Buffer.alloc(0);
    return rest;
  }

  private consume(n: number): void {
    this.held = this.held.subarray(n);
  }
}

function expectVersion(version: number, what: string): void {
  if (version !== SOCKS5_VERSION) throw new Socks5Error('bad-version', `SOCKS ${what} with version ${hex(version)}, expected 0x05`);
}

function domainName(bytes: Buffer): string {
  for (const c of bytes) {
    if (c < 0x21 || c > 0x7e) throw new Socks5Error('bad-domain', `domain name has octet ${hex(c)} (printable ASCII expected; IDNs go as punycode)`);
  }
  return bytes.toString('latin1');
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(2, '0')}`;
}

// ---- what the proxy sends -----------------------------------------------------------------------

/** VER METHOD: the method chosen (or 0xFF, after which the client must close). */
export function encodeMethodChoice(method: number): Buffer {
  return Buffer.from([SOCKS5_VERSION, method]);
}

/** VER STATUS of RFC 1929: 0x00 accepted; anything else refused, and the server closes. */
export function encodeAuthStatus(accepted: boolean): Buffer {
  return Buffer.from([USERPASS_VERSION, accepted ? 0x00 : 0x01]);
}

/**
 * VER REP RSV ATYP BND.ADDR BND.PORT. `bound` is the proxy's own address of the upstream
 * connection; failures carry 0.0.0.0:0. IPv4-mapped IPv6 addresses go as IPv4.
 */
export function encodeReply(reply: number, bound: { address: string; port: number } | null = null): Buffer {
  const mapped = bound?.address.match(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i)?.[1];
  const address = mapped ?? bound?.address ?? '0.0.0.0';
  const v4 = ipv4Bytes(address);
  const v6 = v4 ? null : ipv6Bytes(address);
  const addressBytes = v4 ?? v6 ?? Buffer.alloc(4);
  const type = v6 ? Socks5AddressType.ipv6 : Socks5AddressType.ipv4;
  const port = Buffer.alloc(2);
  port.writeUInt16BE(v4 || v6 ? (bound?.port ?? 0) : 0);
  return Buffer.concat([Buffer.from([SOCKS5_VERSION, reply, 0x00, type]), addressBytes, port]);
}

/** SOCKS4's "request rejected or failed" (VN 0x00, CD 0x5B), the one answer a SOCKS4 client reads. */
export const SOCKS4_REJECTED = Buffer.from([0x00, 0x5b, 0, 0, 0, 0, 0, 0]);
