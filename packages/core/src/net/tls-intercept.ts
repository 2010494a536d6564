// TLS interception inside a CONNECT tunnel, upstream first: the upstream handshake offers the
// client's own ALPN list, then the client handshake is finished with a certificate minted for
// the host and with exactly the protocol upstream chose. Both legs then speak the same protocol
// and the relay carries the plaintext unchanged past the taps.
import tls from 'node:tls';
import { isIP } from 'node:net';
import type { ClientHelloInfo, Failure, TlsLeg } from '../capture/events.js';
import { nowMs } from '../capture/clock.js';
import { chainInfo, localCertificateInfo } from '../ca/cert-info.js';
import { upstreamTlsFailure } from './failure.js';
import { answerTlsFailure } from './tls-failure-answer.js';
import { emitDetected, relayWithTap, type TlsHandler, type Tunnel } from './tunnel.js';
import type { Interception } from './interception.js';

export function makeTlsInterceptor(interception: Interception): TlsHandler {
  return (tunnel, hello, firstBytes) => {
    const host = hello.sni ?? tunnel.target.host;
    // A name no certificate can carry (an odd SNI) is relayed blind rather than broken.
    if (!interception.shouldIntercept(host) || !interception.canMintFor(host)) return false;
    emitDetected(tunnel, 'tls', hello, true);
    intercept(interception, tunnel, hello, firstBytes, host);
    return true;
  };
}

function intercept(interception: Interception, tunnel: Tunnel, hello: ClientHelloInfo, firstBytes: Buffer, host: string): void {
  const { ctx, record } = tunnel;
  const started = nowMs();
  const servername = hello.sni ?? (isIP(tunnel.target.host) ? undefined : tunnel.target.host);
  const upstream = tls.connect({
    socket: tunnel.server,
    host: tunnel.target.host, // what the certificate is checked against when there is no SNI
    ...(servername ? { servername } : {}),
    ...(hello.alpn.length > 0 ? { ALPNProtocols: hello.alpn } : {}),
    secureContext: interception.upstreamContext,
    rejectUnauthorized: interception.verifyUpstream,
  });
  interception.watchKeylog(upstream);
  // Mint while the upstream handshake is on the wire, so the client leg finds it cached.
  setImmediate(() => {
    try {
      interception.minter.secureContextFor(host);
    } catch {
      // acceptClient meets the same error and reports it on the connection
    }
  });
  const connectTimer = setTimeout(
    () => upstream.destroy(Object.assign(new Error(`TLS handshake with ${host} timed out`), { code: 'ETIMEDOUT' })),
    ctx.config.connectTimeoutMs,
  );

  upstream.once('secureConnect', () => {
    clearTimeout(connectTimer);
    upstream.removeListener('error', onUpstreamFailure);
    const alpn = upstream.alpnProtocol || null;
    const client = acceptClient(interception, tunnel, firstBytes, host, alpn ? [alpn] : undefined, hello, () => {
      relayWithTap({ ...tunnel, client, server: upstream }, alpn === 'h2' ? 'h2' : 'http1', 'https');
    });
    client.once('close', () => upstream.destroy());
    // Recorded after the client handshake is under way: describing the chain is not urgent.
    emitTls(tunnel, 'upstream', upstream, hello.sni, hello.alpn, started);
  });

  const onUpstreamFailure = (err: Error) => {
    clearTimeout(connectTimer);
    const failure = upstreamTlsFailure(err);
    record.error ??= failure;
    let certificates: ReturnType<typeof chainInfo> = [];
    try {
      certificates = chainInfo(upstream);
    } catch {
      // no certificate was presented
    }
    ctx.bus.emit({ kind: 'tls.failed', connId: record.id, leg: 'upstream', sni: servername ?? null, alpnOffered: hello.alpn, error: failure, certificates });
    upstream.destroy();
    // Finish the client's handshake anyway, so it can read why in plain words.
    const fallbackAlpn = hello.alpn.includes('http/1.1') ? ['http/1.1'] : hello.alpn.includes('h2') ? ['h2'] : undefined;
    const client = acceptClient(interception, tunnel, firstBytes, host, fallbackAlpn, hello, () => {
      answerTlsFailure(client, failure, host, tunnel.target.port);
    });
  };
  upstream.once('error', onUpstreamFailure);
}

/** Finishes the client's handshake with a leaf for `host`; `onSecure` runs once it is up. */
function acceptClient(
  interception: Interception,
  tunnel: Tunnel,
  firstBytes: Buffer,
  host: string,
  alpn: string[] | undefined,
  hello: ClientHelloInfo,
  onSecure: () => void,
): tls.TLSSocket {
  const { ctx, record } = tunnel;
  const started = nowMs();
  const raw = tunnel.client;
  // The detector already read the ClientHello: put it back for the TLS layer to read again.
  raw.unshift(firstBytes);
  const client = new tls.TLSSocket(raw as import('node:net').Socket, {
    isServer: true,
    secureContext: interception.minter.secureContextFor(host),
    ...(alpn ? { ALPNProtocols: alpn } : {}),
  });
  interception.watchKeylog(client);
  let secure = false;
  client.once('secure', () => {
    secure = true;
    emitTls(tunnel, 'client', client, hello.sni, hello.alpn, started);
    onSecure();
  });
  client.on('error', (err) => {
    if (secure) return; // after the handshake the relay reports errors
    const failure = clientHandshakeFailure(err);
    record.error ??= failure;
    ctx.bus.emit({ kind: 'tls.failed', connId: record.id, leg: 'client', sni: hello.sni, alpnOffered: hello.alpn, error: failure, certificates: [] });
    if (failure.reason === 'cert-rejected') interception.onCertRejected(host);
    client.destroy();
  });
  client.once('close', () => {
    if (secure || record.error) return;
    // Closed right after our certificate without a word: the usual sign of an untrusted CA.
    const failure: Failure = { reason: 'cert-rejected', message: 'the client closed the connection during the TLS handshake (it probably does not trust the hopscope CA)' };
    record.error = failure;
    ctx.bus.emit({ kind: 'tls.failed', connId: record.id, leg: 'client', sni: hello.sni, alpnOffered: hello.alpn, error: failure, certificates: [] });
    interception.onCertRejected(host);
  });
  return client;
}

function emitTls(tunnel: Tunnel, leg: TlsLeg, socket: tls.TLSSocket, sni: string | null, alpnOffered: string[], started: number): void {
  const cipher = socket.getCipher();
  tunnel.ctx.bus.emit({
    kind: 'tls.established',
    connId: tunnel.record.id,
    leg,
    sni,
    alpnOffered,
    alpn: socket.alpnProtocol || null,
    version: socket.getProtocol() ?? '',
    cipher: cipher?.standardName ?? cipher?.name ?? '',
    handshakeMs: nowMs() - started,
    certificates: leg === 'upstream' ? chainInfo(socket) : localCertificateInfo(socket),
  });
}

function clientHandshakeFailure(err: Error): Failure {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const text = `${code} ${err.message}`.toLowerCase();
  const rejected = /unknown.ca|bad.certificate|certificate.unknown|unsupported.certificate|decrypt.error|access.denied/.test(text);
  if (rejected) return { reason: 'cert-rejected', message: err.message, code };
  if (code === 'ECONNRESET') return { reason: 'cert-rejected', message: 'the client reset the connection during the TLS handshake (it probably does not trust the hopscope CA)', code };
  return { reason: 'tls', message: err.message, ...(code ? { code } : {}) };
}
