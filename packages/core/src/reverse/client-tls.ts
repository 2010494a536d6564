// The TLS handshake of the reverse listener (--reverse-tls): hopscope's front-door TLS
// (net/front-door-tls.ts) with certificates minted for the listener's names only (localhost,
// 127.0.0.1, ::1, the listen address and the --reverse host prefixes); a client without SNI, or
// with another name, gets one for the address it dialled.
import type { Socket } from 'node:net';
import type tls from 'node:tls';
import type { LeafMinter } from '../ca/leaf-minter.js';
import type { ConnectionRecord } from '../net/connection-registry.js';
import { recordFrontDoorTls, wrapFrontDoorTls, type FrontDoorTls, type FrontDoorTlsOptions } from '../net/front-door-tls.js';
import type { ProxyContext } from '../net/proxy-context.js';

export interface ClientTlsOptions {
  minter: LeafMinter;
  /** Lower-case names (hosts and addresses) a certificate may be minted for. */
  names: ReadonlySet<string>;
  watchKeylog?: (socket: tls.TLSSocket) => void;
  /** A client that opens TLS and stops gets this long to finish the handshake. */
  handshakeTimeoutMs: number;
}

/** The names the listener answers to: loopback, its own address, and the rules' host prefixes. */
export function listenerNames(listenHost: string, ruleHosts: ReadonlyArray<string | null>): Set<string> {
  const names = new Set(['localhost', '127.0.0.1', '::1']);
  if (listenHost !== '0.0.0.0' && listenHost !== '::' && listenHost !== '') names.add(listenHost.toLowerCase());
  for (const host of ruleHosts) if (host) names.add(host.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1'));
  return names;
}

/**
 * Wraps an accepted connection in server-side TLS and records the handshake on `record`; `onSecure`
 * runs in the turn the handshake ends (before any request is read) with the ALPN choice.
 */
export function acceptClientTls(
  ctx: ProxyContext,
  record: ConnectionRecord,
  raw: Socket,
  o: ClientTlsOptions,
  onSecure: (socket: tls.TLSSocket, alpn: 'h2' | 'http/1.1') => void,
): void {
  const options: FrontDoorTlsOptions = {
    ...o,
    closedDuringHandshake: { reason: 'closed', message: 'the client closed the connection during the TLS handshake' },
  };
  let wrapped: FrontDoorTls;
  try {
    wrapped = wrapFrontDoorTls(raw, options);
  } catch (err) {
    record.error = { reason: 'internal', message: (err as Error).message };
    raw.destroy();
    return;
  }
  recordFrontDoorTls(ctx, record, wrapped, options, (alpn) => onSecure(wrapped.socket, alpn));
}
