// The SOCKS-only port (--socks HOST:PORT). Each connection is recorded like any other front
// door's (listener `socks`) and then speaks SOCKS5; the proxy port understands SOCKS5 as well.
import net, { type AddressInfo } from 'node:net';
import type { ProxyContext } from './proxy-context.js';
import type { ProxyServer } from './proxy-server.js';
import type { TlsHandler } from './tunnel.js';
import { serveSocksOnly } from './socks5-front-door.js';
import { listenOn } from './listen.js';

export class SocksListener {
  private readonly server: net.Server;

  constructor(ctx: ProxyContext, proxy: ProxyServer, onTls?: TlsHandler) {
    // Half-open like the proxy port: a tunnel carries each side's end across on its own.
    this.server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
      const record = proxy.recordConnection(socket, 'socks');
      serveSocksOnly(ctx, record, socket, onTls);
    });
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return listenOn(this.server, host, port);
  }

  /**
   * Stops accepting; resolves once every connection it accepted is gone. Those are in the
   * connection registry, so ProxyServer.close() ends them after its grace period.
   */
  close(): Promise<void> {
    if (!this.server.listening) return Promise.resolve();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
