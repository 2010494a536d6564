// The WebSocket opening handshake on each side of a translation (RFC 6455 §4, RFC 8441 §4-5):
// HTTP/1.1 says Upgrade with a Sec-WebSocket-Key the server proves it read (Sec-WebSocket-Accept);
// HTTP/2 says extended CONNECT with `:protocol websocket` and has no key. Pure functions.
import { createHash, randomBytes } from 'node:crypto';
import type { HeaderList } from '../capture/events.js';
import { endToEndHeaders } from '../net/hop-by-hop.js';
import { pseudoHeader, withoutPseudo } from './header-translation.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)). */
export function websocketAccept(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

/** A fresh Sec-WebSocket-Key: 16 random bytes in base64. */
export function newWebSocketKey(): string {
  return randomBytes(16).toString('base64');
}

/** A key is the base64 of 16 bytes (RFC 6455 §4.2.1). */
export function isValidKey(key: string | undefined): key is string {
  return key !== undefined && /^[A-Za-z0-9+/]{22}==$/.test(key.trim());
}

function values(headers: HeaderList, name: string): string[] {
  return headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);
}

/** An HTTP/1.1 request asking for WebSocket: GET with Upgrade: websocket (the Connection token is Node's check). */
export function asksForWebSocket(headers: HeaderList): boolean {
  return values(headers, 'upgrade').some((v) => /(^|,)\s*websocket\s*(,|$)/i.test(v));
}

/** An HTTP/2 extended CONNECT for WebSocket (RFC 8441 §4). */
export function isExtendedConnect(headers: HeaderList): boolean {
  return pseudoHeader(headers, ':method') === 'CONNECT' && pseudoHeader(headers, ':protocol') !== undefined;
}

export function firstValue(headers: HeaderList, name: string): string | undefined {
  return values(headers, name)[0];
}

/** Handshake fields that belong to one leg only and are rebuilt for the other. */
const PER_LEG = new Set(['sec-websocket-key', 'sec-websocket-accept']);

/** The end-to-end fields of a handshake (request or response) without the per-leg key and accept. */
export function handshakeFields(headers: HeaderList): HeaderList {
  const flat = endToEndHeaders(withoutPseudo(headers));
  const out: HeaderList = [];
  for (let i = 0; i < flat.length; i += 2) if (!PER_LEG.has(flat[i].toLowerCase())) out.push([flat[i], flat[i + 1]]);
  return out;
}

/** The 101 an HTTP/1.1 client gets once the upstream accepted (its fields carried, the accept ours). */
export function switchingProtocolsHead(clientKey: string, upstreamResponse: HeaderList): { head: string; headers: HeaderList } {
  const headers: HeaderList = [
    ['Upgrade', 'websocket'],
    ['Connection', 'Upgrade'],
    ['Sec-WebSocket-Accept', websocketAccept(clientKey)],
    ...handshakeFields(upstreamResponse),
  ];
  let head = 'HTTP/1.1 101 Switching Protocols\r\n';
  for (const [name, value] of headers) head += `${name}: ${value}\r\n`;
  return { head: `${head}\r\n`, headers };
}
