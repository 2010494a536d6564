// The capture row of a connection from open to close: opened now, its first socket error kept,
// closed with the bytes that crossed its socket since then. Shared by every front door and by the
// tunnels nested in one (those start on a socket that has already carried bytes). `wire` is where
// the bytes are counted when `socket` is a TLS layer over it (the HTTPS proxy port).
import type { Socket } from 'node:net';
import type { ConnectionRecord } from './connection-registry.js';
import type { ProxyContext } from './proxy-context.js';
import { failureFromError } from './failure.js';

export function recordConnectionLife(ctx: ProxyContext, record: ConnectionRecord, socket: Socket, parentId: number | null, wire: Socket = socket): void {
  ctx.bus.emit({
    kind: 'conn.opened',
    connId: record.id,
    parentId,
    listener: record.listener,
    clientAddress: socket.remoteAddress ?? '',
    clientPort: socket.remotePort ?? 0,
  });
  const [readBefore, writtenBefore] = [wire.bytesRead, wire.bytesWritten];
  // Whatever else listens, an error on a client socket never reaches the process.
  socket.on('error', (err) => {
    record.error ??= failureFromError(err, 'reset');
  });
  socket.once('close', () => {
    ctx.registry.remove(record);
    ctx.bus.emit({
      kind: 'conn.closed',
      connId: record.id,
      bytesFromClient: wire.bytesRead - readBefore,
      bytesFromServer: wire.bytesWritten - writtenBefore,
      error: record.error,
    });
  });
}
