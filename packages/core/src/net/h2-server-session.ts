// An HTTP/2 server session on a connection hopscope accepted and recorded itself (TLS that
// negotiated h2, or h2c): Node's http2 server is handed the socket as if it had accepted it.
import type http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import type { ConnectionRecord } from './connection-registry.js';
import { failureFromError } from './failure.js';

/**
 * Returns the session (its errors go to the connection's record, and it is kept in `sessions`
 * until it closes), or null when none came up: the socket is then destroyed and the record says why.
 */
export function startServerSession(
  server: http2.Http2Server | http2.Http2SecureServer,
  socket: Duplex,
  record: ConnectionRecord,
  sessions: Set<http2.ServerHttp2Session>,
): http2.ServerHttp2Session | null {
  markHandshakeDone(socket);
  let session: http2.ServerHttp2Session | undefined;
  const take = (s: http2.ServerHttp2Session) => (session = s);
  server.once('session', take);
  server.emit('connection', socket);
  server.removeListener('session', take);
  if (!session) {
    record.error ??= { reason: 'internal', message: 'no HTTP/2 session could be set up on the connection' };
    socket.destroy();
    return null;
  }
  const started = session;
  sessions.add(started);
  started.on('error', (err) => {
    record.error ??= failureFromError(err, 'reset');
  });
  started.once('close', () => sessions.delete(started));
  return started;
}

/**
 * Node clears `secureConnecting` only on sockets a tls.Server accepted; while it is true an
 * Http2Session started on a server-side TLS socket waits for a 'secureConnect' that never comes.
 */
export function markHandshakeDone(socket: Duplex): void {
  if ('encrypted' in socket) (socket as { secureConnecting?: boolean }).secureConnecting = false;
}
