// The proxy's settings, built by the CLI (or a test) and handed to `startHopscope()`.
import type { ResolveRule } from './resolve-map.js';
import type { ProxyCredentials } from './proxy-auth.js';
import type { UpstreamProxy } from './upstream-proxy.js';
import type { ReverseConfig } from '../reverse/reverse-rules.js';

export interface ProxyConfig {
  listenHost: string;
  /** 0 picks a free port. */
  listenPort: number;
  resolve: ResolveRule[];
  /** Upper bound for the upstream TCP connect (and TLS handshake) of one dial. */
  connectTimeoutMs: number;
  /** How long an upstream may take to start its response before the client gets a 504. */
  responseTimeoutMs: number;
  /** Largest request or response header block accepted (431 beyond). */
  maxHeaderBytes: number;
  /** Body bytes per message handed to the capture; the rest is counted. */
  bodyCaptureLimit: number;
  /** How long an idle keep-alive client connection is kept open (switched and tunnelled ones are never timed out). */
  keepAliveTimeoutMs: number;
  /** How long a client may take to send a request's whole header block before a 408 closes it (slowloris). */
  headersTimeoutMs: number;
  /** On shutdown, how long in-flight exchanges may take to finish. */
  shutdownGraceMs: number;
  /** Decode HTTP/2 (default true). Off: h2 and h2c connections are relayed and only counted. */
  h2Tap?: boolean;
  /** HTTP/2 frames stored one by one per connection; later ones are summarised (default 2,000). */
  h2FramesPerConnection?: number;
  /** Largest decoded size of one compressed WebSocket message; past it the tap stops inflating (default 64 MiB). */
  wsMessageCap?: number;
  /** Decoded/compressed ratio past which a WebSocket message over 4 MiB decoded is a deflate bomb (default 400). */
  wsInflateRatio?: number;
  /** Clients must present these (HTTP Proxy-Authorization: Basic, SOCKS5 username/password); null: no authentication. */
  proxyAuth?: ProxyCredentials | null;
  /** Listen on a non-loopback address without proxyAuth anyway (refused otherwise: an open proxy). */
  allowOpenProxy?: boolean;
  /** Send upstream traffic through this HTTP proxy (--upstream-proxy); null: connect directly. */
  upstreamProxy?: UpstreamProxy | null;
  /** A SOCKS5-only port (--socks HOST:PORT; port 0 picks a free one); null: none. The proxy port speaks SOCKS5 as well. */
  socksListen?: { host: string; port: number } | null;
  /** The reverse-proxy listener (--reverse rules, --reverse-listen, --reverse-tls, --reverse-host); null: none. */
  reverse?: ReverseConfig | null;
  /** The HTTPS proxy port (--listen-tls HOST:PORT; port 0 picks a free one): the proxy itself over TLS, HTTP/1.1 or HTTP/2; null: none. */
  listenTls?: { host: string; port: number } | null;
}

export const defaultProxyConfig: ProxyConfig = {
  listenHost: '127.0.0.1',
  listenPort: 8080,
  resolve: [],
  connectTimeoutMs: 10_000,
  responseTimeoutMs: 60_000,
  maxHeaderBytes: 64 * 1024,
  bodyCaptureLimit: 10 * 1024 * 1024,
  keepAliveTimeoutMs: 30_000,
  headersTimeoutMs: 30_000,
  shutdownGraceMs: 3_000,
};
