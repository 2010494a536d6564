// The one way every front door (HTTP/1.1 CONNECT, SOCKS5, HTTP/2 CONNECT streams) opens the
// upstream leg of a tunnel, so that routing rules such as an upstream proxy apply to all of them.
// With --upstream-proxy the leg is a CONNECT tunnel through that proxy (which resolves the target:
// --resolve rules then apply to the proxy's name only); failures name the proxy.
import type { ConnectionRecord } from './connection-registry.js';
import { dialTcp, type DialResult } from './dialer.js';
import type { ProxyContext } from './proxy-context.js';
import { dialThroughUpstreamProxy } from './upstream-proxy-connect.js';

export function dialTunnelTarget(ctx: ProxyContext, host: string, port: number): Promise<DialResult> {
  const { config } = ctx;
  if (!config.upstreamProxy) return dialTcp(host, port, ctx.resolveMap, config.connectTimeoutMs);
  return dialThroughUpstreamProxy(config.upstreamProxy, host, port, ctx.resolveMap, {
    connectTimeoutMs: config.connectTimeoutMs,
    maxHeadBytes: config.maxHeaderBytes,
  });
}

/**
 * Dials a tunnel's upstream leg and records it (conn.upstream). Resolves null when the client went
 * away meanwhile (the new connection is closed again); rejects with the dial's error, which each
 * front door answers in its own protocol.
 */
export async function dialTunnelUpstream(
  ctx: ProxyContext,
  record: ConnectionRecord,
  target: { host: string; port: number },
  clientGone: () => boolean,
): Promise<DialResult | null> {
  const dial = await dialTunnelTarget(ctx, target.host, target.port);
  if (clientGone()) {
    dial.socket.destroy();
    return null;
  }
  ctx.bus.emit({
    kind: 'conn.upstream',
    connId: record.id,
    remoteAddress: dial.remoteAddress,
    remotePort: dial.remotePort,
    dnsMs: dial.dnsMs,
    connectMs: dial.connectMs,
  });
  return dial;
}
