// CONNECT host:port on the proxy port: check the client's proxy credentials (when --proxy-auth is
// on), dial the upstream first (so a failure becomes a 502/504 the client can read), answer 200,
// then let the tunnel decide what flows inside.
import type http from 'node:http';
import type { Socket } from 'node:net';
import { pairsFromRaw } from './hop-by-hop.js';
import { parseAuthority } from './authority.js';
import { describeUpstreamFailure, failureFromError, statusForFailure } from './failure.js';
import { answerAndClose } from './plain-response.js';
import type { ConnectionRecord } from './connection-registry.js';
import { recordConnectionLife } from './connection-life.js';
import type { ProxyContext } from './proxy-context.js';
import { answerProxyAuthOnSocket, authorizeProxyRequest, clientKeepsAlive, redactProxyAuthorization } from './proxy-auth-gate.js';
import { startTunnel, type TlsHandler } from './tunnel.js';
import { dialTunnelUpstream } from './tunnel-dial.js';

const ESTABLISHED = Buffer.from('HTTP/1.1 200 Connection established\r\n\r\n', 'latin1');

/** `serveAgain` hands the socket back to the HTTP parser (a client retrying after a 407 on the same connection). */
export function handleConnect(
  ctx: ProxyContext,
  req: http.IncomingMessage,
  socket: Socket,
  head: Buffer,
  onTls?: TlsHandler,
  serveAgain?: (socket: Socket) => void,
): void {
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
  let headers = pairsFromRaw(req.rawHeaders);
  let user: string | null = null;
  if (ctx.config.proxyAuth) {
    const auth = authorizeProxyRequest(ctx.config.proxyAuth, headers);
    if (!auth.ok) {
      // No tunnel was opened: the connection carries the refusal (a retry on it may still succeed).
      record.error ??= auth.failure;
      answerProxyAuthOnSocket(socket, clientKeepsAlive(req.httpVersion, headers), head, serveAgain);
      return;
    }
    user = auth.user;
    headers = redactProxyAuthorization(headers);
  }
  const tunnel = record.listener === 'proxy-tls' ? openNestedTunnel(ctx, record, socket) : record;
  ctx.bus.emit({
    kind: 'conn.tunnel',
    connId: tunnel.id,
    host: target.host,
    port: target.port,
    via: 'connect',
    user,
    target: req.url ?? '',
    headers,
  });

  dialTunnelUpstream(ctx, tunnel, target, () => socket.destroyed).then(
    (dial) => {
      if (!dial) return;
      // A client that vanishes now takes the upstream with it (the relay takes over after detection).
      socket.write(ESTABLISHED);
      startTunnel({ ctx, record: tunnel, client: socket, server: dial.socket, target }, head, onTls);
    },
    (err) => {
      const failure = failureFromError(err, 'internal');
      tunnel.error ??= failure;
      answerAndClose(socket, statusForFailure(failure.reason), describeUpstreamFailure(failure, target.host, target.port));
    },
  );
}

/**
 * On the HTTPS proxy port the connection's row holds the TLS handshake with hopscope itself; the
 * tunnel gets a row of its own inside it (as an HTTP/2 CONNECT stream does), so that what happens
 * in the tunnel, an intercepted handshake included, does not overwrite it.
 */
function openNestedTunnel(ctx: ProxyContext, parent: ConnectionRecord, socket: Socket): ConnectionRecord {
  const record = ctx.registry.addNested(ctx.ids.nextConnId(), socket, parent.listener);
  recordConnectionLife(ctx, record, socket, parent.id);
  return record;
}
