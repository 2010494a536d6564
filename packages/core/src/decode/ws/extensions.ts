// Sec-WebSocket-Extensions (RFC 6455 §9.1) and the permessage-deflate agreement (RFC 7692 §7.1)
// as a passive observer sees it: the 101 response says what was agreed, the request what was
// offered. Violations are listed, not thrown: the peers decide whether to go on, and decoding
// with the safe values below (largest window, keep context) still inflates what they send.
import type { HeaderList } from '../../capture/events.js';

export type ExtensionParam = [name: string, value: string | true];

export interface WsExtension {
  name: string;
  params: ExtensionParam[];
}

/** What the inflater of one direction must know about its sender. */
export interface DeflateDirectionParams {
  /** The sender starts each message with an empty LZ77 window (x_no_context_takeover agreed). */
  noContextTakeover: boolean;
  /** Largest LZ77 window the sender may use, 8..15 (x_max_window_bits agreed, else 15). */
  maxWindowBits: number;
}

export interface DeflateNegotiation {
  /** Messages the client sends: client_no_context_takeover, client_max_window_bits. */
  client: DeflateDirectionParams;
  /** Messages the server sends: server_no_context_takeover, server_max_window_bits. */
  server: DeflateDirectionParams;
  /** The parameters of the accepted permessage-deflate element, as the response wrote them. */
  agreed: ExtensionParam[];
  /** RFC 7692 violations seen in the handshake; empty when it was clean. */
  problems: string[];
}

const HEADER = 'sec-websocket-extensions';
const DEFLATE = 'permessage-deflate';

/** Parses a Sec-WebSocket-Extensions value leniently: names lower-cased, quoted values unquoted. */
export function parseExtensions(value: string): WsExtension[] {
  const extensions: WsExtension[] = [];
  for (const element of splitOutsideQuotes(value, ',')) {
    const [head, ...rest] = splitOutsideQuotes(element, ';');
    const name = head.trim().toLowerCase();
    if (name === '') continue;
    const params: ExtensionParam[] = [];
    for (const raw of rest) {
      const eq = raw.indexOf('=');
      const key = (eq === -1 ? raw : raw.slice(0, eq)).trim().toLowerCase();
      if (key === '') continue;
      params.push([key, eq === -1 ? true : unquote(raw.slice(eq + 1).trim())]);
    }
    extensions.push({ name, params });
  }
  return extensions;
}

/** All Sec-WebSocket-Extensions elements in a header list, in order. */
export function extensionsIn(headers: HeaderList): WsExtension[] {
  return headers.filter(([name]) => name.toLowerCase() === HEADER).flatMap(([, value]) => parseExtensions(value));
}

/**
 * The permessage-deflate parameters per direction, from the upgrade request and the 101 response,
 * or null when the response did not accept permessage-deflate.
 */
export function negotiateDeflate(requestHeaders: HeaderList, responseHeaders: HeaderList): DeflateNegotiation | null {
  const accepted = extensionsIn(responseHeaders).filter((ext) => ext.name === DEFLATE);
  if (accepted.length === 0) return null;
  const offers = extensionsIn(requestHeaders).filter((ext) => ext.name === DEFLATE);
  const problems: string[] = [];
  if (offers.length === 0) problems.push('permessage-deflate accepted but not offered');
  if (accepted.length > 1) problems.push('permessage-deflate accepted more than once');

  const result: DeflateNegotiation = {
    client: { noContextTakeover: false, maxWindowBits: 15 },
    server: { noContextTakeover: false, maxWindowBits: 15 },
    agreed: accepted[0].params,
    problems,
  };
  const seen = new Set<string>();
  for (const [key, value] of accepted[0].params) {
    if (seen.has(key)) problems.push(`${key} repeated`);
    seen.add(key);
    switch (key) {
      case 'server_no_context_takeover':
      case 'client_no_context_takeover':
        if (value !== true) problems.push(`${key} has a value`);
        result[key === 'server_no_context_takeover' ? 'server' : 'client'].noContextTakeover = true;
        break;
      case 'server_max_window_bits':
      case 'client_max_window_bits': {
        const direction = key === 'server_max_window_bits' ? 'server' : 'client';
        if (direction === 'client' && !offers.some((offer) => offer.params.some(([name]) => name === key))) {
          problems.push('client_max_window_bits in the response but not in the offer');
        }
        const bits = value === true ? null : parseWindowBits(value);
        if (bits === null) problems.push(`${key} needs a value from 8 to 15`);
        else result[direction].maxWindowBits = bits;
        break;
      }
      default:
        problems.push(`unknown parameter ${key}`);
    }
  }
  return result;
}

function parseWindowBits(value: string): number | null {
  if (!/^[1-9][0-9]?$/.test(value)) return null;
  const bits = Number(value);
  return bits >= 8 && bits <= 15 ? bits : null;
}

/** Splits on `separator` outside double-quoted strings (which may hold backslash escapes). */
function splitOutsideQuotes(text: string, separator: string): string[] {
  const parts: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted && c === '\\') i++;
    else if (c === '"') quoted = !quoted;
    else if (!quoted && c === separator) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

function unquote(value: string): string {
  if (value.length < 2 || value[0] !== '"' || value[value.length - 1] !== '"') return value;
  return value.slice(1, -1).replace(/\\(.)/g, '$1');
}
