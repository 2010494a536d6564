// The proxy port. Node's HTTP server is the listener (its parser is the one Node trusts against
// request smuggling, and it tracks header timeouts), but hopscope owns each accepted connection:
// it records it, then hands it to the HTTP parser for absolute-form requests and CONNECT.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { ProxyContext } from './proxy-context.js';
import { handleForwardRequest } from './forward-handler.js';
import { handleConnect } from './connect-handler.js';
import { handleUpgradeRequest } from './ws-upgrade-handler.js';
import { recordConnectionLife } from './connection-life.js';
import { listenOn } from './listen.js';
import { answerAndClose } from './plain-response.js';
import type { TlsHandler } from './tunnel.js';
import type { ConnectionRecord } from './connection-registry.js';
import { serveHttpOrSocks } from './socks5-front-door.js';

type ConnectionListener = (this: http.Server, socket: Socket) => void;

export class ProxyServer {
  private readonly server: http.Server;
  private readonly httpConnectionListener: ConnectionListener;

  constructor(
    private readonly ctx: ProxyContext,
    private readonly onTls?: TlsHandler,
  ) {
    this.server = http.createServer({
      maxHeaderSize: ctx.config.maxHeaderBytes,
      requestTimeout: 0, // uploads may take as long as they take
      headersTimeout: ctx.config.headersTimeoutMs, // slowloris: a header block trickled in gets a 408
      // Node checks header deadlines on this interval (30 s by default): often enough that one fires on time.
      connectionsCheckingInterval: checkingInterval(ctx.config.headersTimeoutMs),
      keepAliveTimeout: ctx.config.keepAliveTimeoutMs,
      noDelay: true,
      requireHostHeader: false, // an absolute-form target names the host; HTTP/1.0 clients may omit Host
    });
    // Node would silently drop headers past 2,000 from what we forward; the byte limit above is the real bound.
    this.server.maxHeadersCount = 0;
    // Take Node's own connection handler out, so that every connection is ours first.
    const [listener] = this.server.listeners('connection') as ConnectionListener[];
    this.httpConnectionListener = listener;
    this.server.removeAllListeners('connection');
    this.server.on('connection', (socket: Socket) => {
      const record = this.recordConnection(socket, 'proxy');
      // The first byte tells SOCKS (0x05, 0x04) from HTTP (a method's letter).
      serveHttpOrSocks(ctx, record, socket, () => this.serveHttp(socket), this.server.headersTimeout, this.onTls);
    });

    const forward = (req: http.IncomingMessage, res: http.ServerResponse) => handleForwardRequest(ctx, req, res);
    this.server.on('request', forward);
    this.server.on('checkContinue', forward); // forward Expect: 100-continue and relay the upstream's 100
    this.server.on('connect', (req: http.IncomingMessage, socket: Socket, head: Buffer) =>
      handleConnect(ctx, req, socket, head, this.onTls, (s) => this.serveHttp(s)),
    );
    // ws:// through the proxy: an absolute-form request with Upgrade (Node routes every one here).
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => handleUpgradeRequest(ctx, req, socket, head, (s) => this.serveHttp(s)));
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.rejectMalformed(err, socket));
  }

  listen(): Promise<AddressInfo> {
    return listenOn(this.server, this.ctx.config.listenHost, this.ctx.config.listenPort);
  }

  /**
   * Stops accepting, lets in-flight exchanges finish within the grace period, then closes
   * every connection that is left (idle keep-alives at once, tunnels after the grace).
   */
  async close(graceMs = this.ctx.config.shutdownGraceMs): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.ctx.registry.whenNoExchangesInFlight(),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs))),
    ]);
    clearTimeout(timer);
    for (const record of this.ctx.registry.records()) record.socket.destroy();
    this.ctx.httpAgent.destroy();
    this.ctx.httpsAgent.destroy();
    await closed;
  }

  /**
   * Every front door (the proxy port, the HTTPS proxy port, the SOCKS port) records an accepted
   * connection here first: its row, its error and its close.
   */
  recordConnection(socket: Socket, listener: string, parentId: number | null = null, wire: Socket = socket): ConnectionRecord {
    const { ctx } = this;
    const record = ctx.registry.add(ctx.ids.nextConnId(), socket, listener);
    recordConnectionLife(ctx, record, socket, parentId, wire);
    return record;
  }

  /** Serves a recorded connection (plain or TLS) as HTTP/1.x proxy traffic: absolute-form requests, CONNECT, Upgrade. */
  serveHttp(socket: Socket): void {
    this.httpConnectionListener.call(this.server, socket);
  }

  private rejectMalformed(err: NodeJS.ErrnoException, socket: Socket): void {
    const record = this.ctx.registry.get(socket);
    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
    const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    // The client hung up inside a message: an abort, not a malformed request.
    const cutShort = err.code === 'HPE_INVALID_EOF_STATE';
    if (record) {
      record.error ??= {
        reason: tooLarge ? 'headers-too-large' : timedOut ? 'timeout' : cutShort ? 'aborted' : 'bad-request',
        message: err.message,
        ...(err.code ? { code: err.code } : {}),
      };
    }
    // While an exchange is in flight the client is owed its answer first: a 400 written now would
    // be read as that answer (a pipelined request) or land inside it (a body that broke mid-way).
    if (err.code === 'ECONNRESET' || !socket.writable || (record?.inFlight ?? 0) > 0) {
      socket.destroy();
      return;
    }
    const status = tooLarge ? 431 : timedOut ? 408 : 400;
    const what = tooLarge ? 'request header block too large' : timedOut ? 'request headers took too long' : 'malformed request';
    answerAndClose(socket, status, `${what} (${err.code ?? err.message})`);
  }
}

/** A quarter of the header timeout, between 10 ms and 1 s; Node's own 30 s when there is no header timeout. */
function checkingInterval(headersTimeoutMs: number): number {
  return headersTimeoutMs > 0 ? Math.min(1_000, Math.max(10, Math.floor(headersTimeoutMs / 4))) : 30_000;
}
