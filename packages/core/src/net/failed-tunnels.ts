// A tunnel that failed before anything went through it (a client that does not trust the CA, an
// upstream that refused the connection or failed its TLS handshake) leaves no exchange behind, yet
// the exchange list is where people look first. Each such tunnel becomes one failed CONNECT
// exchange on its connection, so the failure shows up like any other request, in the inspector
// and in HAR files, and its Connection view explains it.
import { STATUS_CODES } from 'node:http';
import type { CaptureBus } from '../capture/bus.js';
import type { ConnTunnelRequested, Failure } from '../capture/events.js';
import type { IdAllocator } from '../capture/ids.js';
import { formatAuthority } from './authority.js';
import { statusForFailure } from './failure.js';

interface TunnelState {
  request: ConnTunnelRequested;
  /** hopscope answered 200: the upstream TCP connection was up. */
  established: boolean;
  tls: boolean;
  tlsFailed: boolean;
  exchanges: number;
}

/** Subscribes to the bus; returns the unsubscribe function. */
export function recordFailedTunnels(bus: CaptureBus, ids: IdAllocator): () => void {
  const tunnels = new Map<number, TunnelState>();
  return bus.subscribe((event) => {
    switch (event.kind) {
      case 'conn.tunnel':
        tunnels.set(event.connId, { request: event, established: false, tls: false, tlsFailed: false, exchanges: 0 });
        return;
      case 'conn.upstream':
        withTunnel(event.connId, (t) => (t.established = true));
        return;
      case 'conn.detected':
        withTunnel(event.connId, (t) => (t.tls = event.protocol === 'tls'));
        return;
      case 'tls.failed':
        withTunnel(event.connId, (t) => (t.tlsFailed = true));
        return;
      case 'http.request':
        withTunnel(event.connId, (t) => t.exchanges++);
        return;
      case 'conn.closed': {
        const tunnel = tunnels.get(event.connId);
        tunnels.delete(event.connId);
        if (tunnel && tunnel.exchanges === 0 && event.error && (!tunnel.established || tunnel.tlsFailed)) {
          emitFailedConnect(bus, ids, tunnel, event.error);
        }
        return;
      }
    }
  });

  function withTunnel(connId: number, update: (tunnel: TunnelState) => void): void {
    const tunnel = tunnels.get(connId);
    if (tunnel) update(tunnel);
  }
}

function emitFailedConnect(bus: CaptureBus, ids: IdAllocator, tunnel: TunnelState, error: Failure): void {
  const { request } = tunnel;
  const exchangeId = ids.nextExchangeId();
  const scheme = tunnel.tls || request.port === 443 ? 'https' : 'http';
  // The CONNECT as the client sent it: a SOCKS5 request, a stream on the HTTPS proxy port's HTTP/2,
  // else HTTP/1.1.
  const protocol = request.via === 'socks5' ? 'SOCKS5' : request.via === 'h2-connect' ? 'h2' : 'HTTP/1.1';
  bus.emit({
    kind: 'http.request',
    time: request.time,
    exchangeId,
    connId: request.connId,
    streamId: null,
    protocol,
    method: 'CONNECT',
    target: request.target,
    url: `${scheme}://${formatAuthority(request.host, request.port)}`,
    scheme,
    host: request.host,
    port: request.port,
    headers: request.headers,
  });
  // What hopscope answered the CONNECT: 200 once the upstream was reached, else the error status.
  // A SOCKS5 client got a reply code, not an HTTP status: its exchange has no response, only the failure.
  if (protocol !== 'SOCKS5') {
    const status = tunnel.established ? 200 : statusForFailure(error.reason);
    bus.emit({
      kind: 'http.response',
      exchangeId,
      protocol,
      status,
      statusText: tunnel.established ? 'Connection established' : (STATUS_CODES[status] ?? ''),
      headers: [],
    });
  }
  const timings = { dnsMs: null, connectMs: null, tlsMs: null, requestEnd: null, responseStart: null };
  bus.emit({ kind: 'http.failed', exchangeId, error, requestBodySize: 0, responseBodySize: 0, timings });
}
