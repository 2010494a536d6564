// Opening a tunnel through the upstream proxy: `CONNECT host:port` on a connection to it, its
// answer read with a bounded head parser, and the socket handed on with any bytes that came after
// the head put back in front, so whoever reads it next (the tunnel's detector, TLS) misses nothing.
import type { Socket } from 'node:net';
import { nowMs } from '../capture/clock.js';
import { formatAuthority } from './authority.js';
import { dialTcp, type DialResult } from './dialer.js';
import { ProxyError } from './failure.js';
import type { ResolveMap } from './resolve-map.js';
import { upstreamProxyAnswerError, upstreamProxyAuthorization, upstreamProxyError, upstreamProxyName, type UpstreamProxy } from './upstream-proxy.js';

export interface TunnelRequestOptions {
  /** Largest answer head accepted. */
  maxHeadBytes: number;
  /** How long the proxy may take to answer; 0 leaves the bound to the caller. */
  timeoutMs: number;
}

/** The CONNECT request hopscope sends (Host, and Proxy-Authorization when credentials were given). */
export function connectRequestHead(proxy: UpstreamProxy, host: string, port: number): string {
  const authority = formatAuthority(host, port);
  const authorization = upstreamProxyAuthorization(proxy);
  return `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${authorization ? `Proxy-Authorization: ${authorization}\r\n` : ''}\r\n`;
}

/**
 * Asks the proxy on `socket` (connected) for a tunnel to host:port. Resolves once it answered
 * 2xx; rejects with a ProxyError naming the proxy (its status, a malformed answer, a close, a
 * timeout). The caller destroys the socket on rejection.
 */
export function requestTunnel(socket: Socket, proxy: UpstreamProxy, host: string, port: number, options: TunnelRequestOptions): Promise<void> {
  const what = `CONNECT ${formatAuthority(host, port)}`;
  return new Promise((resolve, reject) => {
    let received: Buffer = Buffer.alloc(0);
    let timer: NodeJS.Timeout | null = null;
    const finish = (err: Error | null) => {
      if (timer) clearTimeout(timer);
      socket.removeListener('readable', onReadable);
      socket.removeListener('error', onError);
      socket.removeListener('close', onClose);
      socket.removeListener('end', onClose);
      if (err) reject(err);
      else resolve();
    };
    // 'readable' and read(): once the listener is gone the socket is back to its initial, not yet
    // flowing state, so the next reader attaching 'data' (or TLS) starts it with nothing lost.
    const onReadable = () => {
      let chunk: Buffer | null;
      while ((chunk = socket.read() as Buffer | null) !== null) {
        const searchFrom = Math.max(0, received.length - 3);
        received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
        const end = received.indexOf('\r\n\r\n', searchFrom, 'latin1');
        if (end < 0) {
          if (received.length > options.maxHeadBytes) {
            finish(new ProxyError('decode', `${upstreamProxyName(proxy)} sent an answer head over ${options.maxHeadBytes} bytes to ${what}`, 'upstream-proxy-bad-answer'));
            return;
          }
          continue;
        }
        if (end + 4 > options.maxHeadBytes) {
          finish(new ProxyError('decode', `${upstreamProxyName(proxy)} sent an answer head over ${options.maxHeadBytes} bytes to ${what}`, 'upstream-proxy-bad-answer'));
          return;
        }
        const status = /^HTTP\/1\.[01] (\d{3})(?: ([^\r\n]*))?\r\n/.exec(received.toString('latin1', 0, end + 2));
        if (!status) {
          const first = received.toString('latin1', 0, Math.min(end, 80)).split('\r\n')[0];
          finish(new ProxyError('decode', `${upstreamProxyName(proxy)} did not answer ${what} with HTTP: "${first}"`, 'upstream-proxy-bad-answer'));
          return;
        }
        const code = Number(status[1]);
        if (code < 200 || code > 299) {
          finish(upstreamProxyAnswerError(proxy, code, status[2] ?? '', what));
          return;
        }
        const rest = received.subarray(end + 4);
        if (rest.length > 0) socket.unshift(rest);
        finish(null);
        return;
      }
    };
    const onError = (err: Error) => finish(upstreamProxyError(err, proxy));
    const onClose = () =>
      finish(new ProxyError('reset', `${upstreamProxyName(proxy)} closed the connection before answering ${what}`, 'ECONNRESET'));
    if (options.timeoutMs > 0) {
      timer = setTimeout(() => {
        finish(new ProxyError('timeout', `${upstreamProxyName(proxy)} did not answer ${what} within ${options.timeoutMs} ms`, 'ETIMEDOUT'));
      }, options.timeoutMs);
    }
    socket.on('readable', onReadable);
    socket.on('error', onError);
    socket.once('close', onClose);
    socket.once('end', onClose);
    // A proxy that answers and closes at once still has its answer read before 'close'.
    socket.write(connectRequestHead(proxy, host, port), 'latin1');
  });
}

/** A tunnel to host:port through the proxy: TCP to the proxy (--resolve applies to its name), then CONNECT. */
export async function dialThroughUpstreamProxy(
  proxy: UpstreamProxy,
  host: string,
  port: number,
  resolveMap: ResolveMap,
  options: { connectTimeoutMs: number; maxHeadBytes: number },
): Promise<DialResult> {
  let dial: DialResult;
  try {
    dial = await dialTcp(proxy.host, proxy.port, resolveMap, options.connectTimeoutMs);
  } catch (err) {
    throw upstreamProxyError(err, proxy);
  }
  const asked = nowMs();
  try {
    await requestTunnel(dial.socket, proxy, host, port, { maxHeadBytes: options.maxHeadBytes, timeoutMs: options.connectTimeoutMs });
  } catch (err) {
    dial.socket.destroy();
    throw err;
  }
  // The tunnel is usable only once the proxy reached the target: count that wait as connecting.
  return { ...dial, connectMs: dial.connectMs + (nowMs() - asked) };
}
