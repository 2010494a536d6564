// --upstream-proxy http://[user:pass@]host:port: hopscope sends its own upstream traffic through
// another HTTP proxy (a corporate proxy). This file holds the setting, the Proxy-Authorization it
// sends, and how failures of that proxy are told apart from failures of the target: the client's
// 502/504 says which of the two failed.
import type { Failure } from '../capture/events.js';
import { formatAuthority } from './authority.js';
import { failureFromError, ProxyError } from './failure.js';
import type { ProxyCredentials } from './proxy-auth.js';

export interface UpstreamProxy {
  /** Host name or address (IPv6 without brackets); --resolve rules apply to it. */
  host: string;
  port: number;
  /** Sent as Proxy-Authorization: Basic; null sends none. */
  credentials: ProxyCredentials | null;
}

/** Parses the --upstream-proxy URL; throws with a message fit for the command line. */
export function parseUpstreamProxy(text: string): UpstreamProxy {
  const wants = `--upstream-proxy wants http://[USER:PASSWORD@]HOST:PORT, got "${text}"`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(wants);
  }
  if (url.protocol !== 'http:') throw new Error(`${wants} (only http:// upstream proxies are supported)`);
  // URL drops a port that is the scheme's default: look at the text to tell "none given" apart.
  const explicitPort = /^http:\/\/(?:[^@/]*@)?(?:\[[^\]]*\]|[^:/]*):(\d+)\/?$/i.exec(text.trim());
  if (!url.hostname || !explicitPort || (url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) throw new Error(wants);
  const user = decodeURIComponent(url.username);
  const credentials = user || url.password ? { user, pass: decodeURIComponent(url.password) } : null;
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(explicitPort[1]), credentials };
}

const authorizations = new WeakMap<UpstreamProxy, string | null>();

/** The Proxy-Authorization value for this proxy (computed once per setting), or null. */
export function upstreamProxyAuthorization(proxy: UpstreamProxy): string | null {
  let value = authorizations.get(proxy);
  if (value === undefined) {
    const c = proxy.credentials;
    value = c ? `Basic ${Buffer.from(`${c.user}:${c.pass}`, 'utf8').toString('base64')}` : null;
    authorizations.set(proxy, value);
  }
  return value;
}

/** How the proxy is named in messages. */
export function upstreamProxyName(proxy: UpstreamProxy): string {
  return `upstream proxy ${formatAuthority(proxy.host, proxy.port)}`;
}

const PHRASE: Partial<Record<Failure['reason'], string>> = {
  dns: 'could not be resolved',
  refused: 'refused the connection',
  unreachable: 'is unreachable',
  timeout: 'did not answer in time',
  reset: 'reset the connection',
};

/** An error on the connection to the upstream proxy itself, named after the proxy. */
export function upstreamProxyError(err: unknown, proxy: UpstreamProxy): ProxyError {
  const failure = failureFromError(err, 'internal');
  if (failure.message.startsWith('upstream proxy ')) return new ProxyError(failure.reason, failure.message, failure.code);
  const phrase = PHRASE[failure.reason] ?? `failed: ${failure.message}`;
  const code = failure.code ? ` (${failure.code})` : '';
  return new ProxyError(failure.reason, `${upstreamProxyName(proxy)} ${phrase}${code}`, failure.code);
}

/**
 * The upstream proxy answered something other than 2xx to our CONNECT (or 407 to a forwarded
 * request): 504 becomes a timeout (the client gets 504), anything else a refusal (502).
 */
export function upstreamProxyAnswerError(proxy: UpstreamProxy, status: number, statusText: string, what: string): ProxyError {
  const hint = status === 407 ? (proxy.credentials ? ' (check the --upstream-proxy credentials)' : ' (it wants credentials: --upstream-proxy http://USER:PASSWORD@HOST:PORT)') : '';
  return new ProxyError(
    status === 504 ? 'timeout' : 'refused',
    `${upstreamProxyName(proxy)} answered ${status}${statusText ? ` ${statusText}` : ''} to ${what}${hint}`,
    `upstream-proxy-${status}`,
  );
}

