// The proxy options `hopscope start` and `hopscope run` share: their parseArgs spec, their help
// text, and how they become HopscopeOptions.
import { resolve as resolvePath } from 'node:path';
import type { HopscopeOptions } from '../hopscope.js';
import { parseResolveRule } from '../net/resolve-map.js';
import { parseProxyCredentials } from '../net/proxy-auth.js';
import { parseUpstreamProxy } from '../net/upstream-proxy.js';
import { parseHostPort } from './listen-address.js';
import { DEFAULT_REVERSE_LISTEN, parseReverseRule } from '../reverse/reverse-rules.js';

export const PROXY_OPTIONS = {
  resolve: { type: 'string', multiple: true, default: [] as string[] },
  'connect-timeout': { type: 'string' },
  'response-timeout': { type: 'string' },
  'header-timeout': { type: 'string' },
  'keep-alive-timeout': { type: 'string' },
  'max-header-size': { type: 'string' },
  'body-cap': { type: 'string' },
  'ca-dir': { type: 'string', default: 'ca' },
  'no-intercept': { type: 'boolean', default: false },
  intercept: { type: 'string', multiple: true, default: [] as string[] },
  passthrough: { type: 'string', multiple: true, default: [] as string[] },
  'upstream-ca': { type: 'string', multiple: true, default: [] as string[] },
  'upstream-insecure': { type: 'boolean', default: false },
  'no-h2-tap': { type: 'boolean', default: false },
  'h2-frames': { type: 'string' },
  'ws-message-cap': { type: 'string' },
  'ws-inflate-ratio': { type: 'string' },
  keylog: { type: 'string' },
  'upstream-proxy': { type: 'string' },
  socks: { type: 'string' },
  'listen-tls': { type: 'string' },
} as const;

export const PROXY_OPTIONS_HELP = `  --resolve HOST=ADDRESS       connect to ADDRESS instead of resolving HOST (HOST may be a glob
                               like *.test); repeatable
  --connect-timeout MS         upstream connect and TLS handshake timeout (default 10000)
  --response-timeout MS        time an upstream may take to start answering (default 60000)
  --header-timeout MS          time a client may take to send a request's headers; 408 after it
                               (default 30000)
  --keep-alive-timeout MS      idle time after which a keep-alive client connection is closed
                               (default 30000; tunnels and WebSockets are never timed out)
  --max-header-size BYTES      largest header block accepted (default 65536)
  --body-cap BYTES             body bytes stored per message (default 10485760)
  --ca-dir DIR                 folder of hopscope's root CA (default ./ca, created on first start)
  --no-intercept               relay every TLS tunnel blind (still records SNI and ALPN)
  --intercept GLOB             decrypt only hosts matching GLOB; repeatable
  --passthrough GLOB           never decrypt hosts matching GLOB; repeatable
  --upstream-ca FILE           also trust these PEM roots for upstreams; repeatable
  --upstream-insecure          do not verify upstream certificates
  --no-h2-tap                  relay HTTP/2 without decoding it (for measuring the tap's cost)
  --h2-frames N                HTTP/2 frames stored one by one per connection, the rest summarised
                               (default 2000)
  --ws-message-cap BYTES       largest decoded size of a compressed WebSocket message; past it the
                               tap stops inflating that WebSocket (default 67108864)
  --ws-inflate-ratio N         decoded/compressed ratio that makes a WebSocket message over 4 MiB a
                               deflate bomb (default 400)
  --keylog FILE                write TLS secrets of both legs for Wireshark (default $SSLKEYLOGFILE)
  --upstream-proxy URL         send upstream traffic through this HTTP proxy:
                               http://[USER:PASSWORD@]HOST:PORT (--resolve applies to HOST)
  --socks HOST:PORT            also open a SOCKS5-only port (the proxy port speaks SOCKS5 too)
  --listen-tls HOST:PORT       also open an HTTPS proxy port: the proxy itself over TLS (certificate
                               from hopscope's CA), HTTP/1.1 or HTTP/2 (CONNECT streams)
`;

type ProxyOptionValues = {
  resolve: string[];
  'connect-timeout'?: string;
  'response-timeout'?: string;
  'header-timeout'?: string;
  'keep-alive-timeout'?: string;
  'max-header-size'?: string;
  'body-cap'?: string;
  'ca-dir': string;
  'no-intercept': boolean;
  intercept: string[];
  passthrough: string[];
  'upstream-ca': string[];
  'upstream-insecure': boolean;
  'no-h2-tap': boolean;
  'h2-frames'?: string;
  'ws-message-cap'?: string;
  'ws-inflate-ratio'?: string;
  keylog?: string;
  'upstream-proxy'?: string;
  socks?: string;
  'listen-tls'?: string;
};

/** The parsed proxy options as library options (without the listener address and the capture file). */
export function proxyOptionsFrom(values: ProxyOptionValues): Omit<HopscopeOptions, 'dbPath'> {
  return {
    resolve: values.resolve.map(parseResolveRule),
    connectTimeoutMs: optionalInt(values['connect-timeout'], '--connect-timeout'),
    responseTimeoutMs: optionalInt(values['response-timeout'], '--response-timeout'),
    headersTimeoutMs: optionalInt(values['header-timeout'], '--header-timeout'),
    keepAliveTimeoutMs: optionalInt(values['keep-alive-timeout'], '--keep-alive-timeout'),
    maxHeaderBytes: optionalInt(values['max-header-size'], '--max-header-size'),
    bodyCaptureLimit: optionalInt(values['body-cap'], '--body-cap'),
    caDir: resolvePath(values['ca-dir']),
    intercept: !values['no-intercept'],
    interceptHosts: values.intercept,
    passthroughHosts: values.passthrough,
    upstreamCaFiles: values['upstream-ca'],
    upstreamInsecure: values['upstream-insecure'],
    h2Tap: !values['no-h2-tap'],
    h2FramesPerConnection: optionalInt(values['h2-frames'], '--h2-frames'),
    wsMessageCap: optionalInt(values['ws-message-cap'], '--ws-message-cap'),
    wsInflateRatio: optionalInt(values['ws-inflate-ratio'], '--ws-inflate-ratio'),
    ...(values.keylog ? { keylogFile: resolvePath(values.keylog) } : {}),
    ...(values['upstream-proxy'] ? { upstreamProxy: parseUpstreamProxy(values['upstream-proxy']) } : {}),
    ...(values.socks ? { socksListen: parseHostPort(values.socks, '--socks') } : {}),
    ...(values['listen-tls'] ? { listenTls: parseHostPort(values['listen-tls'], '--listen-tls') } : {}),
  };
}

/** Who may use the proxy ports: options of `hopscope start` only (`run` listens on loopback for its child). */
export const ACCESS_OPTIONS = {
  'proxy-auth': { type: 'string' },
  'allow-open-proxy': { type: 'boolean', default: false },
} as const;

export const ACCESS_OPTIONS_HELP = `  --proxy-auth USER:PASSWORD   clients must authenticate (Proxy-Authorization: Basic; SOCKS5
                               username/password)
  --allow-open-proxy           listen on a non-loopback address without --proxy-auth anyway
`;

export function accessOptionsFrom(values: { 'proxy-auth'?: string; 'allow-open-proxy': boolean }): Pick<HopscopeOptions, 'proxyAuth' | 'allowOpenProxy'> {
  return {
    proxyAuth: values['proxy-auth'] !== undefined ? parseProxyCredentials(values['proxy-auth']) : null,
    allowOpenProxy: values['allow-open-proxy'],
  };
}

/** The reverse proxy (`hopscope start`): its rules, where it listens, client TLS and the Host sent upstream. */
export const REVERSE_OPTIONS = {
  reverse: { type: 'string', multiple: true, default: [] as string[] },
  'reverse-listen': { type: 'string' },
  'reverse-tls': { type: 'boolean', default: false },
  'reverse-host': { type: 'string' },
} as const;

export const REVERSE_OPTIONS_HELP = `  --reverse [HOST][/PATH]=URL  also run a reverse proxy (prints "reverse: URL"): a request whose
                               Host is HOST and whose path starts with PATH goes to URL (http://,
                               https:// with h2 or HTTP/1.1 by ALPN, or h2c://); the path is sent
                               as is; the longest prefix wins; a bare URL takes the rest; repeatable
  --reverse-listen HOST:PORT   reverse-proxy address (default 127.0.0.1:8082)
  --reverse-tls                clients reach the reverse proxy over TLS (certificate from hopscope's
                               CA for localhost, 127.0.0.1, ::1 and the HOSTs), HTTP/2 or HTTP/1.1
  --reverse-host keep|upstream Host sent upstream: the upstream's (default) or the client's
`;

type ReverseOptionValues = { reverse: string[]; 'reverse-listen'?: string; 'reverse-tls': boolean; 'reverse-host'?: string };

/** The reverse-proxy options as library options; none without a --reverse rule. */
export function reverseOptionsFrom(values: ReverseOptionValues): Pick<HopscopeOptions, 'reverse'> {
  if (values.reverse.length === 0) {
    const stray = values['reverse-listen'] ? '--reverse-listen' : values['reverse-tls'] ? '--reverse-tls' : values['reverse-host'] ? '--reverse-host' : null;
    if (stray) throw new Error(`${stray} needs at least one --reverse rule`);
    return {};
  }
  const hostHeader = values['reverse-host'] ?? 'upstream';
  if (hostHeader !== 'keep' && hostHeader !== 'upstream') throw new Error(`--reverse-host wants keep or upstream, got "${hostHeader}"`);
  const listen = values['reverse-listen'] ? parseHostPort(values['reverse-listen'], '--reverse-listen') : DEFAULT_REVERSE_LISTEN;
  return {
    reverse: { rules: values.reverse.map(parseReverseRule), listenHost: listen.host, listenPort: listen.port, tls: values['reverse-tls'], hostHeader },
  };
}

export function optionalInt(text: string | undefined, option: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${option} wants a whole number, got "${text}"`);
  return n;
}
