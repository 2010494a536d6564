// A CONNECT stream on an HTTP/2 connection to the proxy (RFC 9113 §8.5: `:method CONNECT`,
// `:authority host:port`): a tunnel of its own, recorded as a child connection of the HTTP/2 one.
// The upstream is dialled first, `:status 200` answered only once it is up (502/504 with the
// reason otherwise), then the stream is the client leg of the same detection, interception and
// relay as an HTTP/1.1 CONNECT tunnel.
import type http2 from 'node:http2';
import type { Socket } from 'node:net';
import type { HeaderList } from '../capture/events.js';
import { parseAuthority, type Authority } from './authority.js';
import type { ConnectionRecord } from './connection-registry.js';
import { describeUpstreamFailure, failureFromError, statusForFailure } from './failure.js';
import { answerStream, pseudoHeader } from './h2-proxy-answer.js';
import type { ProxyContext } from './proxy-context.js';
import { startTunnel, type TlsHandler } from './tunnel.js';
import { dialTunnelUpstream } from './tunnel-dial.js';

const EMPTY = Buffer.alloc(0);

/** Counts the tunnels whose close is not recorded yet (shutdown waits for them). */
export interface TunnelTracker {
  opened(): void;
  closed(): void;
}

export function handleH2Connect(
  ctx: ProxyContext,
  parent: ConnectionRecord,
  client: { address: string; port: number },
  stream: http2.ServerHttp2Stream,
  headers: HeaderList,
  user: string | null,
  tracker: TunnelTracker,
  onTls?: TlsHandler,
): void {
  const authority = pseudoHeader(headers, ':authority') ?? '';
  let target: Authority;
  try {
    target = parseAuthority(authority);
  } catch (err) {
    answerStream(stream, 400, (err as Error).message);
    return;
  }
  const tunnel = recordStreamTunnel(ctx, parent, client, stream, tracker);
  const { record } = tunnel;
  ctx.bus.emit({
    kind: 'conn.tunnel',
    connId: record.id,
    host: target.host,
    port: target.port,
    via: 'h2-connect',
    user,
    target: authority,
    headers,
  });

  dialTunnelUpstream(ctx, record, target, () => stream.destroyed || stream.closed).then(
    (dial) => {
      if (!dial) return;
      tunnel.upstream(dial.socket);
      stream.respond({ ':status': 200 });
      startTunnel({ ctx, record, client: stream, server: dial.socket, target }, EMPTY, onTls);
    },
    (err) => {
      const failure = failureFromError(err, 'internal');
      record.error ??= failure;
      answerStream(stream, statusForFailure(failure.reason), describeUpstreamFailure(failure, target.host, target.port));
    },
  );
}

/**
 * Records the stream as a connection (conn.opened with the HTTP/2 connection as parent) and
 * reports its close once the stream and, when one was dialled, the upstream socket are both gone.
 * Bytes: DATA payload received on the stream, and what the upstream sent.
 */
function recordStreamTunnel(
  ctx: ProxyContext,
  parent: ConnectionRecord,
  client: { address: string; port: number },
  stream: http2.ServerHttp2Stream,
  tracker: TunnelTracker,
): { record: ConnectionRecord; upstream(socket: Socket): void } {
  const record = ctx.registry.add(ctx.ids.nextConnId(), stream, 'proxy-tls');
  tracker.opened();
  ctx.bus.emit({ kind: 'conn.opened', connId: record.id, parentId: parent.id, listener: 'proxy-tls', clientAddress: client.address, clientPort: client.port });
  let fromClient = 0;
  let upstream: Socket | null = null;
  let open = 1; // the stream, plus the upstream once dialled
  let rstCode = 0;
  const closed = () => {
    if (--open > 0) return;
    ctx.registry.remove(record);
    // After the relay's own close handlers, which record the error that ended it.
    setImmediate(() => {
      // NO_ERROR and CANCEL close a stream without an 'error' event; CANCEL is still the client going away.
      if (rstCode !== 0) record.error ??= { reason: 'reset', message: `the stream was reset (RST_STREAM code ${rstCode})`, code: `RST_STREAM_${rstCode}` };
      ctx.bus.emit({ kind: 'conn.closed', connId: record.id, bytesFromClient: fromClient, bytesFromServer: upstream?.bytesRead ?? 0, error: record.error });
      tracker.closed();
    });
  };
  // Stream errors are the tunnel's to record (startTunnel, relay); a reset before it starts is seen here.
  stream.once('close', () => {
    rstCode = stream.rstCode ?? 0;
    closed();
  });
  return {
    record,
    upstream(socket) {
      upstream = socket;
      open++;
      socket.once('close', closed);
      // Counted alongside the tunnel's own reader, which takes over in the same turn.
      stream.on('data', (chunk: Buffer) => (fromClient += chunk.length));
    },
  };
}
