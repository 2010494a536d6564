// Which protocol a client speaks on a port that accepts SOCKS, decided by the first byte of its
// first chunk (one read per connection): 0x05 is a SOCKS5 greeting, 0x04 a SOCKS4 request (refused),
// and on the proxy port anything else (an HTTP method starts with a letter) goes to HTTP.
import type { Socket } from 'node:net';
import type { ConnectionRecord } from './connection-registry.js';
import type { ProxyContext } from './proxy-context.js';
import { plainResponse } from './plain-response.js';
import type { TlsHandler } from './tunnel.js';
import { SOCKS4_VERSION, SOCKS5_VERSION } from './socks5-messages.js';
import { closeWith, refuseSocks4, serveSocks5 } from './socks5-handler.js';

/**
 * The proxy port: SOCKS5 to its handler, SOCKS4 refused, the rest to `serveHttp` with the chunk
 * put back first. `idleTimeoutMs` bounds the wait for that first chunk (the HTTP server's own
 * headers timeout only starts once it has the socket).
 */
export function serveHttpOrSocks(
  ctx: ProxyContext,
  record: ConnectionRecord,
  socket: Socket,
  serveHttp: () => void,
  idleTimeoutMs: number,
  onTls?: TlsHandler,
): void {
  readFirstChunk(record, socket, idleTimeoutMs, (chunk) => {
    if (chunk[0] === SOCKS5_VERSION) return serveSocks5(ctx, record, socket, chunk, onTls);
    if (chunk[0] === SOCKS4_VERSION) return refuseSocks4(record, socket, ctx.config.connectTimeoutMs);
    socket.unshift(chunk);
    serveHttp();
    // Node's HTTP server reads the socket's handle directly from now on; the chunk put back sits in
    // the stream's buffer, and resuming hands it to the HTTP parser (on the next tick, before any
    // further read from the handle).
    socket.resume();
  }, () => closeWith(socket, plainResponse(408, `hopscope: no request within ${idleTimeoutMs} ms`), ctx.config.connectTimeoutMs));
}

/** The SOCKS-only port (--socks): SOCKS5, or a refusal that says what this port is. */
export function serveSocksOnly(ctx: ProxyContext, record: ConnectionRecord, socket: Socket, onTls?: TlsHandler): void {
  const lingerMs = ctx.config.connectTimeoutMs;
  readFirstChunk(record, socket, ctx.config.connectTimeoutMs, (chunk) => {
    if (chunk[0] === SOCKS5_VERSION) return serveSocks5(ctx, record, socket, chunk, onTls);
    if (chunk[0] === SOCKS4_VERSION) return refuseSocks4(record, socket, lingerMs);
    const first = chunk[0];
    record.error ??= {
      reason: 'bad-request',
      message: `not a SOCKS5 greeting (first byte 0x${first.toString(16).padStart(2, '0')}): this port speaks SOCKS5 only`,
      code: 'not-socks',
    };
    // An HTTP client pointed here by mistake gets a line it can show; anything else just a close.
    const looksLikeHttp = (first >= 0x41 && first <= 0x5a) || (first >= 0x61 && first <= 0x7a);
    const answer = looksLikeHttp ? plainResponse(400, 'hopscope: this is a SOCKS5 port (socks5://); HTTP proxying is on the proxy port') : null;
    closeWith(socket, answer, lingerMs);
  }, () => socket.destroy());
}

/** One read at connection start; the socket is left paused for whoever takes it next. */
function readFirstChunk(
  record: ConnectionRecord,
  socket: Socket,
  timeoutMs: number,
  onChunk: (chunk: Buffer) => void,
  onIdle: () => void,
): void {
  const onTimeout = () => {
    socket.removeListener('data', onData);
    socket.setTimeout(0);
    record.error ??= { reason: 'timeout', message: `the client sent nothing within ${timeoutMs} ms` };
    onIdle();
  };
  const onData = (chunk: Buffer) => {
    socket.pause();
    socket.setTimeout(0);
    socket.removeListener('timeout', onTimeout);
    onChunk(chunk);
  };
  socket.once('data', onData);
  socket.setTimeout(timeoutMs);
  socket.once('timeout', onTimeout);
}
