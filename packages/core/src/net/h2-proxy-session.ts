// HTTP/2 to the proxy (ALPN h2 on the HTTPS proxy port): one Node HTTP/2 server session per TLS
// connection, never listening itself. Each stream is checked for proxy credentials, then becomes a
// tunnel (CONNECT host:port, RFC 9113 §8.5) or a proxied request (`:scheme http`, `:authority`).
import http2 from 'node:http2';
import type tls from 'node:tls';
import type { HeaderList } from '../capture/events.js';
import type { ConnectionRecord } from './connection-registry.js';
import { startServerSession } from './h2-server-session.js';
import { pairsFromRaw } from './hop-by-hop.js';
import { authorizeStream } from './h2-proxy-auth.js';
import { answerStream, pseudoHeader } from './h2-proxy-answer.js';
import { handleH2Request } from './h2-proxy-forward.js';
import { handleH2Connect, type TunnelTracker } from './h2-proxy-tunnel.js';
import type { ProxyContext } from './proxy-context.js';
import type { TlsHandler } from './tunnel.js';

export class H2ProxySessions {
  private readonly server: http2.Http2Server;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private openTunnels = 0;
  private idleWaiters: Array<() => void> = [];
  private readonly tracker: TunnelTracker = {
    opened: () => void this.openTunnels++,
    closed: () => {
      if (--this.openTunnels > 0) return;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    },
  };

  constructor(
    private readonly ctx: ProxyContext,
    private readonly onTls?: TlsHandler,
  ) {
    this.server = http2.createServer({
      // Advertised so that an extended CONNECT (:protocol) reaches us and gets a readable 501
      // instead of nghttp2's PROTOCOL_ERROR.
      settings: { enableConnectProtocol: true, maxHeaderListSize: ctx.config.maxHeaderBytes },
    });
  }

  /** Serves a TLS connection that negotiated h2; `record` is the connection's row. */
  serve(socket: tls.TLSSocket, record: ConnectionRecord): void {
    const s = startServerSession(this.server, socket, record, this.sessions);
    if (!s) return;
    const client = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    s.on('stream', (stream: http2.ServerHttp2Stream, _headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
      stream.on('error', () => {}); // what matters is recorded by the handlers
      this.onStream(record, client, stream, pairsFromRaw(rawHeaders));
    });
  }

  /** Resolves once every CONNECT stream's close has been recorded. */
  whenTunnelsClosed(): Promise<void> {
    if (this.openTunnels === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Asks every session's client to open no new streams (GOAWAY); open ones carry on. */
  goAway(): void {
    for (const s of this.sessions) s.close();
  }

  private onStream(record: ConnectionRecord, client: { address: string; port: number }, stream: http2.ServerHttp2Stream, headers: HeaderList): void {
    const { ctx } = this;
    const allowed = authorizeStream(ctx, record, stream, headers);
    if (!allowed) return;
    if (pseudoHeader(headers, ':protocol') !== undefined) {
      answerStream(
        stream,
        501,
        `extended CONNECT (:protocol ${pseudoHeader(headers, ':protocol')}) to the proxy is not supported: open a CONNECT host:port tunnel and speak the protocol inside it`,
      );
      return;
    }
    if (pseudoHeader(headers, ':method') === 'CONNECT') handleH2Connect(ctx, record, client, stream, allowed.headers, allowed.user, this.tracker, this.onTls);
    else handleH2Request(ctx, record, stream, allowed.headers);
  }
}
