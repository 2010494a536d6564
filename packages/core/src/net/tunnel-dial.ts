// The one way every front door (HTTP/1.1 CONNECT, SOCKS5, HTTP/2 CONNECT streams) opens the
// upstream leg of a tunnel, so that routing rules such as an upstream proxy apply to all of them.
import { dialTcp, type DialResult } from './dialer.js';
import type { ProxyContext } from './proxy-context.js';

export function dialTunnelTarget(ctx: ProxyContext, host: string, port: number): Promise<DialResult> {
  return dialTcp(host, port, ctx.resolveMap, ctx.config.connectTimeoutMs);
}
