// Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection and are never forwarded,
// nor is any header the Connection header names. Everything else keeps its order, case and
// duplicates.
import type { HeaderList } from '../capture/events.js';

const ALWAYS_HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Node's `rawHeaders` ([name, value, name, value, …]) as a header list. */
export function pairsFromRaw(raw: readonly string[]): HeaderList {
  const pairs: HeaderList = [];
  for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([raw[i], raw[i + 1]]);
  return pairs;
}

/** Names listed in every Connection header, lower-cased. */
export function connectionTokens(headers: HeaderList): Set<string> {
  const tokens = new Set<string>();
  for (const [name, value] of headers) {
    if (name.toLowerCase() !== 'connection') continue;
    for (const token of value.split(',')) {
      const t = token.trim().toLowerCase();
      if (t) tokens.add(t);
    }
  }
  return tokens;
}

/**
 * The end-to-end part of a header list, flattened the way Node's http module accepts it.
 * `keep` names hop-by-hop headers to forward anyway (the Upgrade exception of a protocol switch).
 */
export function endToEndHeaders(headers: HeaderList, keep: readonly string[] = []): string[] {
  const dropped = connectionTokens(headers);
  const kept = new Set(keep.map((k) => k.toLowerCase()));
  const out: string[] = [];
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (kept.has(lower) || (!ALWAYS_HOP_BY_HOP.has(lower) && !dropped.has(lower))) out.push(name, value);
  }
  return out;
}

export function headerValue(headers: HeaderList, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [n, v] of headers) if (n.toLowerCase() === lower) return v;
  return undefined;
}
