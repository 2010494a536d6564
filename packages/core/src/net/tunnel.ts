// Inside an established tunnel: read the first bytes, ask the detector what they are, then hand
// both legs to the relay with the tap that decodes that protocol (or to TLS interception).
import type { Duplex } from 'node:stream';
import type { ClientHelloInfo, DetectedProtocol } from '../capture/events.js';
import { parseClientHello } from '../decode/client-hello.js';
import { Http1Tap } from '../taps/http1-tap.js';
import { H2Tap } from '../taps/h2-tap.js';
import { guardTap, opaqueTap, type Tap, type TapContext, type WsLimits } from '../taps/tap.js';
import { tapAfterUpgrade } from '../taps/ws-tap.js';
import type { ProxyContext } from './proxy-context.js';
import type { ConnectionRecord } from './connection-registry.js';
import { detectProtocol } from './detect.js';
import { mayBeH2cServerStart } from './h2c-server-start.js';
import { relay } from './relay.js';
import { failureFromError } from './failure.js';

/** Largest amount of client bytes held while deciding (a ClientHello fits easily). */
const MAX_DETECTION_BYTES = 64 * 1024;

export interface TunnelTarget {
  host: string;
  port: number;
}

export interface Tunnel {
  ctx: ProxyContext;
  record: ConnectionRecord;
  client: Duplex;
  server: Duplex;
  target: TunnelTarget;
}

/**
 * What to do with a TLS ClientHello: the interception layer (TLS issue) plugs in here.
 * Returning false leaves the tunnel to be relayed blind.
 */
export type TlsHandler = (tunnel: Tunnel, hello: ClientHelloInfo, firstBytes: Buffer) => boolean;

export function startTunnel(tunnel: Tunnel, head: Buffer, onTls?: TlsHandler): void {
  const { client, server } = tunnel;
  const fromClient: Buffer[] = head.length > 0 ? [head] : [];
  const fromServer: Buffer[] = [];
  let buffered = head.length;
  let done = false;
  // A first message that starts but never completes (a ClientHello trickled or cut short) must not
  // hold the decision forever: after the header timeout the tunnel is relayed as it is.
  let stalled: NodeJS.Timeout | null = null;

  /** Ends detection once: false when it had ended already. */
  const settle = (): boolean => {
    if (done) return false;
    done = true;
    if (stalled) clearTimeout(stalled);
    return true;
  };

  const finish = (protocol: DetectedProtocol, hello: ClientHelloInfo | null) => {
    if (!settle()) return;
    client.pause();
    server.pause();
    client.removeListener('data', onClientData);
    server.removeListener('data', onServerData);
    client.removeListener('end', onClientEnd);
    for (const leg of [client, server]) {
      leg.removeListener('error', onEarlyError);
      leg.removeListener('close', onEarlyClose);
    }
    const firstBytes = Buffer.concat(fromClient);
    if (protocol === 'tls' && hello && onTls?.(tunnel, hello, firstBytes)) return;
    emitDetected(tunnel, protocol, hello, false);
    relayWithTap(tunnel, protocol === 'http1' || protocol === 'h2c' ? protocol : 'opaque', 'http', fromClient, fromServer);
  };

  const waitForMore = () => {
    stalled ??= setTimeout(() => {
      tunnel.ctx.bus.emit({
        kind: 'decode.failed',
        connId: tunnel.record.id,
        decoder: 'detect',
        side: 'client',
        code: 'stalled',
        message: `the client's first message was still incomplete after ${tunnel.ctx.config.headersTimeoutMs} ms; relayed without decoding`,
      });
      finish('opaque', null);
    }, tunnel.ctx.config.headersTimeoutMs);
  };

  const examine = () => {
    const bytes = fromClient.length === 1 ? fromClient[0] : Buffer.concat(fromClient);
    const verdict = detectProtocol(bytes);
    if (verdict === 'need-more') return buffered > MAX_DETECTION_BYTES ? finish('opaque', null) : waitForMore();
    if (verdict !== 'tls') return finish(verdict, null);
    const parsed = parseClientHello(bytes);
    if (parsed.status === 'need-more' && buffered <= MAX_DETECTION_BYTES) return waitForMore();
    if (parsed.status === 'ok') return finish('tls', parsed.hello);
    if (parsed.status === 'error') {
      tunnel.ctx.bus.emit({
        kind: 'decode.failed',
        connId: tunnel.record.id,
        decoder: 'tls-hello',
        side: 'client',
        code: parsed.code,
        message: parsed.message,
      });
    }
    finish('tls', null);
  };

  function onClientData(chunk: Buffer) {
    fromClient.push(chunk);
    buffered += chunk.length;
    examine();
  }
  // A server that speaks first (SMTP, SSH, …) makes the tunnel opaque at once.
  function onServerData(chunk: Buffer) {
    fromServer.push(chunk);
    if (mayBeH2cServerStart(fromServer, fromClient)) return;
    finish('opaque', null);
  }
  function onClientEnd() {
    // A client that hangs up inside its ClientHello: say so, rather than leave only an opaque tunnel.
    if (fromClient.length > 0 && detectProtocol(Buffer.concat(fromClient)) === 'tls') {
      tunnel.ctx.bus.emit({
        kind: 'decode.failed',
        connId: tunnel.record.id,
        decoder: 'tls-hello',
        side: 'client',
        code: 'truncated',
        message: `the client ended the connection after ${buffered} bytes, inside its ClientHello`,
      });
    }
    finish('opaque', null);
  }

  // Until the relay takes over, either leg failing or closing ends both.
  function onEarlyError(err: Error) {
    tunnel.record.error ??= failureFromError(err, 'reset');
  }
  function onEarlyClose() {
    if (!settle()) return;
    client.destroy();
    server.destroy();
  }

  client.on('data', onClientData);
  server.on('data', onServerData);
  client.once('end', onClientEnd);
  for (const leg of [client, server]) {
    leg.on('error', onEarlyError);
    leg.once('close', onEarlyClose);
  }
  if (head.length > 0) examine();
}

export function emitDetected(tunnel: Tunnel, protocol: DetectedProtocol, hello: ClientHelloInfo | null, intercepted: boolean): void {
  tunnel.ctx.bus.emit({ kind: 'conn.detected', connId: tunnel.record.id, protocol, hello, intercepted });
}

/** Relays both legs, decoding with the tap for `protocol`. */
export function relayWithTap(
  tunnel: Tunnel,
  protocol: 'http1' | 'h2' | 'h2c' | 'opaque',
  scheme: 'http' | 'https',
  pendingFromClient: Buffer[] = [],
  pendingFromServer: Buffer[] = [],
): void {
  const { record, client, server } = tunnel;
  const tap =
    protocol === 'http1'
      ? guardTap(makeHttp1Tap(tunnel, scheme), reportTapBug(tunnel))
      : (protocol === 'h2' || protocol === 'h2c') && tunnel.ctx.config.h2Tap !== false
        ? guardTap(makeH2Tap(tunnel, protocol, scheme), reportTapBug(tunnel))
        : opaqueTap;
  // conn.closed goes out when the client socket closes, which the relay does as soon as either leg
  // fails: note why first, so the connection row says it.
  for (const leg of [client, server]) {
    leg.on('error', (err) => {
      record.error ??= failureFromError(err, 'reset');
    });
  }
  relay({
    client,
    server,
    tap,
    pendingFromClient,
    pendingFromServer,
    onClosed: (error) => {
      if (error) record.error ??= error;
    },
  });
}

function makeHttp1Tap(tunnel: Tunnel, scheme: 'http' | 'https'): Tap {
  const { ctx, record, target } = tunnel;
  const tapCtx: TapContext = {
    connId: record.id,
    bus: ctx.bus,
    ids: ctx.ids,
    scheme,
    host: target.host,
    port: target.port,
    bodyCaptureLimit: ctx.config.bodyCaptureLimit,
    maxHeaderBytes: ctx.config.maxHeaderBytes,
    wsLimits: wsLimitsOf(ctx),
    // After a 101 to WebSocket (ws:// in a tunnel, wss:// intercepted) the WebSocket tap decodes.
    onUpgrade: (info) => tapAfterUpgrade(tapCtx, info),
  };
  return new Http1Tap(tapCtx);
}

function makeH2Tap(tunnel: Tunnel, protocol: 'h2' | 'h2c', scheme: 'http' | 'https'): Tap {
  const { ctx, record, target } = tunnel;
  return new H2Tap({
    connId: record.id,
    bus: ctx.bus,
    ids: ctx.ids,
    scheme,
    host: target.host,
    port: target.port,
    bodyCaptureLimit: ctx.config.bodyCaptureLimit,
    protocol,
    // RFC 8441: an extended CONNECT stream (`:protocol websocket`) that got its 2xx carries a WebSocket.
    onStreamUpgrade: (info) =>
      tapAfterUpgrade({ connId: record.id, bus: ctx.bus, bodyCaptureLimit: ctx.config.bodyCaptureLimit, wsLimits: wsLimitsOf(ctx) }, info),
  });
}

/** The WebSocket tap's limits from the proxy's settings (--ws-message-cap, --ws-inflate-ratio). */
export function wsLimitsOf(ctx: ProxyContext): WsLimits {
  return { messageCap: ctx.config.wsMessageCap, inflateRatio: ctx.config.wsInflateRatio };
}

function reportTapBug(tunnel: Tunnel) {
  return (err: unknown, side: 'client' | 'server' | null) => {
    tunnel.ctx.bus.emit({
      kind: 'decode.failed',
      connId: tunnel.record.id,
      decoder: 'tap',
      side: side ?? 'client',
      code: 'internal',
      message: (err as Error)?.stack ?? String(err),
    });
  };
}
