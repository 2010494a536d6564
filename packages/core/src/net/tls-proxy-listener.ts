// The HTTPS proxy port (--listen-tls): clients reach the proxy itself over TLS. Each accepted
// connection is recorded with listener `proxy-tls`, its handshake as the client TLS leg, and then
// ALPN decides: http/1.1 (or none) goes to the same HTTP/1.x handling as the plain proxy port
// (absolute-form, CONNECT, Upgrade); h2 becomes an HTTP/2 session whose streams are CONNECT
// tunnels or proxied requests (h2-proxy-session.ts).
import net, { type AddressInfo } from 'node:net';
import type { Interception } from './interception.js';
import type { ProxyContext } from './proxy-context.js';
import type { ProxyServer } from './proxy-server.js';
import type { TlsHandler } from './tunnel.js';
import { H2ProxySessions } from './h2-proxy-session.js';
import { listenOn } from './listen.js';
import { recordFrontDoorTls, wrapFrontDoorTls, type FrontDoorTls, type FrontDoorTlsOptions } from './front-door-tls.js';

export class TlsProxyListener {
  private readonly server: net.Server;
  private readonly h2: H2ProxySessions;

  constructor(
    ctx: ProxyContext,
    private readonly proxy: ProxyServer,
    private readonly interception: Interception,
    onTls?: TlsHandler,
  ) {
    this.h2 = new H2ProxySessions(ctx, onTls);
    this.server = net.createServer({ noDelay: true }, (raw) => this.accept(ctx, raw));
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return listenOn(this.server, host, port);
  }

  /**
   * Stops accepting and tells HTTP/2 clients to open no more streams (GOAWAY). Resolves once every
   * connection of this port, and every tunnel inside one, is gone and recorded: ProxyServer.close()
   * ends the ones that are left after its grace.
   */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.h2.goAway();
    await closed;
    await this.h2.whenTunnelsClosed();
  }

  private accept(ctx: ProxyContext, raw: net.Socket): void {
    const options: FrontDoorTlsOptions = {
      minter: this.interception.minter,
      watchKeylog: (socket) => this.interception.watchKeylog(socket),
      handshakeTimeoutMs: ctx.config.headersTimeoutMs, // a handshake is the TLS front door's "headers"
      closedDuringHandshake: {
        reason: 'cert-rejected',
        message: 'the client closed the connection during the TLS handshake (it probably does not trust the hopscope CA)',
      },
    };
    let tls: FrontDoorTls;
    try {
      tls = wrapFrontDoorTls(raw, options);
    } catch (err) {
      // Only a local address no certificate can name gets here (never seen): recorded, then closed.
      const record = this.proxy.recordConnection(raw, 'proxy-tls');
      record.error = { reason: 'internal', message: (err as Error).message };
      raw.destroy();
      return;
    }
    // Recorded by the TLS socket: it is the socket Node's HTTP server and the handlers see. Its bytes
    // are counted on the wire, as every other connection's are, TLS records included.
    const record = this.proxy.recordConnection(tls.socket, 'proxy-tls', null, raw);
    recordFrontDoorTls(ctx, record, tls, options, (alpn) => {
      if (alpn === 'h2') this.h2.serve(tls.socket, record);
      else this.proxy.serveHttp(tls.socket);
    });
  }
}
