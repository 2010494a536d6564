// CONNECT host:port on the proxy port: dial the upstream first (so a failure becomes a 502/504
// the client can read), answer 200, then let the tunnel decide what flows inside.
import type http from 'node:http';
import type { Socket } from 'node:net';
import { pairsFromRaw } from './hop-by-hop.js';
import { parseAuthority } from './authority.js';
import { describeUpstreamFailure, failureFromError, statusForFailure } from './failure.js';
import { answerAndClose } from './plain-response.js';
import type { ProxyContext } from './proxy-context.js';
import { startTunnel, type TlsHandler } from './tunnel.js';
import { dialTunnelTarget } from './tunnel-dial.js';

const ESTABLISHED = Buffer.from('HTTP/1.1 200 Connection established\r\n\r\n', 'latin1');

export function handleConnect(ctx: ProxyContext, req: http.IncomingMessage, socket: Socket, head: Buffer, onTls?: TlsHandler): void {
  const record = ctx.registry.get(socket);
  if (!record) {
    socket.destroy();
    return;
  }
  let target: { host: string; port: number };
  try {
    target = parseAuthority(req.url ?? '');
  } catch (err) {
    record.error ??= { reason: 'bad-request', message: (err as Error).message };
    answerAndClose(socket, 400, (err as Error).message);
    return;
  }
  ctx.bus.emit({
    kind: 'conn.tunnel',
    connId: record.id,
    host: target.host,
    port: target.port,
    target: req.url ?? '',
    headers: pairsFromRaw(req.rawHeaders),
  });

  dialTunnelTarget(ctx, target.host, target.port).then(
    (dial) => {
      if (socket.destroyed) {
        dial.socket.destroy();
        return;
      }
      ctx.bus.emit({
        kind: 'conn.upstream',
        connId: record.id,
        remoteAddress: dial.remoteAddress,
        remotePort: dial.remotePort,
        dnsMs: dial.dnsMs,
        connectMs: dial.connectMs,
      });
      // A client that vanishes now takes the upstream with it (the relay takes over after detection).
      socket.write(ESTABLISHED);
      startTunnel({ ctx, record, client: socket, server: dial.socket, target }, head, onTls);
    },
    (err) => {
      const failure = failureFromError(err, 'internal');
      record.error ??= failure;
      answerAndClose(socket, statusForFailure(failure.reason), describeUpstreamFailure(failure, target.host, target.port));
    },
  );
}
