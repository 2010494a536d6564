// TLS interception inside a CONNECT tunnel, upstream first: the upstream handshake offers the
// client's own ALPN list, then the client handshake is finished with a certificate minted for
// the host and with exactly the protocol upstream chose. Both legs then speak the same protocol
// and the relay carries the plaintext unchanged past the taps.
import tls from 'node:tls';
import { isIP } from 'node:net';
import type { CertificateInfo, ClientHelloInfo, Failure, TlsLeg } from '../capture/events.js';
import { nowMs } from '../capture/clock.js';
import { chainInfo } from '../ca/cert-info.js';
import { failureFromError, upstreamTlsFailure } from './failure.js';
import { answerTlsFailure } from './tls-failure-answer.js';
import { tlsFailureInfo, tlsLegInfo } from './tls-leg.js';
import { deferVerification } from './upstream-verification.js';
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

/** Mints ahead of need; a failure is met again, and reported, when the leaf is really needed. */
function mintQuietly(interception: Interception, host: string): void {
  try {
    interception.minter.secureContextFor(host);
  } catch {
    // acceptClient reports it on the connection
  }
}

function intercept(interception: Interception, tunnel: Tunnel, hello: ClientHelloInfo, firstBytes: Buffer, host: string): void {
  const { ctx, record } = tunnel;
  const started = nowMs();
  const servername = hello.sni ?? (isIP(tunnel.target.host) ? undefined : tunnel.target.host);
  const verification = deferVerification(interception.verifyUpstream);
  const upstream = tls.connect({
    socket: tunnel.server,
    host: tunnel.target.host, // what the certificate is checked against when there is no SNI
    ...(servername ? { servername } : {}),
    ...(hello.alpn.length > 0 ? { ALPNProtocols: hello.alpn } : {}),
    secureContext: interception.upstreamContext,
    ...verification.options,
  });
  interception.watchKeylog(upstream);
  const connectTimer = setTimeout(
    () => upstream.destroy(Object.assign(new Error(`TLS handshake with ${host} timed out`), { code: 'ETIMEDOUT' })),
    ctx.config.connectTimeoutMs,
  );

  // The two handshakes meet here: relay once both are up, or explain the upstream's failure.
  let upstreamState: 'pending' | 'ready' | Failure = 'pending';
  let client: tls.TLSSocket | null = null;
  let clientSecure = false;
  const proceed = () => {
    if (!client || !clientSecure || upstreamState === 'pending') return;
    if (upstreamState === 'ready') relayWithTap({ ...tunnel, client, server: upstream }, upstream.alpnProtocol === 'h2' ? 'h2' : 'http1', 'https');
    else answerTlsFailure(client, upstreamState, host, tunnel.target.port);
  };
  const startClient = (alpn: string[] | undefined) => {
    client = acceptClient(interception, tunnel, firstBytes, host, alpn, hello, () => {
      clientSecure = true;
      proceed();
    });
    client.once('close', () => upstream.destroy());
  };

  if (clientAlpnIsPredictable(hello.alpn)) {
    // Whatever upstream chooses, this client's leg would answer the same: shake hands in parallel.
    startClient(hello.alpn.length > 0 ? hello.alpn : undefined);
  } else {
    // Mint (unless prepared already) while the upstream handshake is on the wire.
    setImmediate(() => mintQuietly(interception, host));
  }

  // The upstream refused, or its certificate is: explain it to the client and in the capture.
  const refuse = (err: Error) => {
    clearTimeout(connectTimer);
    const failure = upstreamTlsFailure(err);
    upstreamState = failure;
    record.error ??= failure;
    const leg = tlsFailureInfo(upstream, servername ?? null, hello.alpn, failure, verification.presented());
    ctx.bus.emit({ kind: 'tls.failed', connId: record.id, leg: 'upstream', ...leg });
    upstream.destroy();
    // Finish the client's handshake anyway, so it can read why in plain words.
    if (!client) startClient(hello.alpn.includes('http/1.1') ? ['http/1.1'] : hello.alpn.includes('h2') ? ['h2'] : undefined);
    proceed();
  };

  upstream.once('secureConnect', () => {
    const refusal = verification.refusal(upstream);
    if (refusal) return refuse(refusal);
    clearTimeout(connectTimer);
    upstreamState = 'ready';
    const alpn = upstream.alpnProtocol || null;
    if (!client) startClient(alpn ? [alpn] : undefined);
    // Recorded after the client handshake is under way: describing the chain is not urgent.
    emitTls(tunnel, 'upstream', upstream, chainInfo(upstream, verification.presented()), hello.sni, hello.alpn, started);
    proceed();
  });

  upstream.on('error', (err: Error) => {
    if (upstreamState === 'pending') refuse(err);
    else record.error ??= failureFromError(err, 'reset'); // after the handshake the relay reports it
  });
}

/**
 * A client that offers no ALPN gets none, and one that offers only http/1.1 speaks HTTP/1.1 whether
 * upstream confirms it or not: for these the client's leg does not depend on upstream's answer.
 */
function clientAlpnIsPredictable(offered: string[]): boolean {
  return offered.length === 0 || (offered.length === 1 && offered[0] === 'http/1.1');
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
    const handshakeMs = nowMs() - started;
    onSecure(); // the relay first; describing the leg is not urgent (no data flows before the next I/O turn)
    emitTls(tunnel, 'client', client, [interception.minter.certificateInfoFor(host)], hello.sni, hello.alpn, started, handshakeMs);
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

function emitTls(
  tunnel: Tunnel,
  leg: TlsLeg,
  socket: tls.TLSSocket,
  certificates: CertificateInfo[],
  sni: string | null,
  alpnOffered: string[],
  started: number,
  handshakeMs = nowMs() - started,
): void {
  tunnel.ctx.bus.emit({ kind: 'tls.established', connId: tunnel.record.id, leg, ...tlsLegInfo(socket, sni, alpnOffered, handshakeMs, certificates) });
}

/** Why a client's handshake with hopscope failed (also used by the reverse listener). */
export function clientHandshakeFailure(err: Error): Failure {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const text = `${code} ${err.message}`.toLowerCase();
  const rejected = /unknown.ca|bad.certificate|certificate.unknown|unsupported.certificate|decrypt.error|access.denied/.test(text);
  if (rejected) return { reason: 'cert-rejected', message: err.message, code };
  if (code === 'ECONNRESET') return { reason: 'cert-rejected', message: 'the client reset the connection during the TLS handshake (it probably does not trust the hopscope CA)', code };
  return { reason: 'tls', message: err.message, ...(code ? { code } : {}) };
}
