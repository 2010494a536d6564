// The reverse proxy's routing table: `--reverse [HOST][/PATH]=URL` rules and the choice of one for
// a request. Like nginx's `location /ws { proxy_pass http://backend; }` without a URI part: the
// request's path goes upstream as is (the matched prefix is kept), and the longest matching prefix
// wins, a rule naming the request's host before any rule that names none.
import { isIP } from 'node:net';

/** `h2c`: cleartext HTTP/2 with prior knowledge. `https`: the upstream's ALPN picks h2 or HTTP/1.1. */
export type ReverseScheme = 'http' | 'https' | 'h2c';

export interface ReverseUpstream {
  scheme: ReverseScheme;
  /** Host name or address, IPv6 without brackets. */
  host: string;
  port: number;
  /** `host[:port]` for Host / :authority when rewritten (port left out when it is the default). */
  authority: string;
}

export interface ReverseRule {
  /** Lower-cased host (or host:port) the request's Host / :authority must name; null: any host. */
  host: string | null;
  /** Prefix of the request path, compared byte for byte (nginx `location` semantics: /ws matches /wsx). */
  pathPrefix: string;
  upstream: ReverseUpstream;
  /** The rule as given on the command line. */
  text: string;
}

export interface ReverseConfig {
  rules: ReverseRule[];
  listenHost: string;
  /** 0 picks a free port. */
  listenPort: number;
  /** Clients speak TLS (certificate minted by hopscope's CA, ALPN h2 and http/1.1). */
  tls: boolean;
  /** `upstream` (default, like nginx): Host / :authority become the upstream's; `keep`: the client's. */
  hostHeader: 'keep' | 'upstream';
}

/** 8081 is the inspector's default port: the reverse listener takes the next one. */
export const DEFAULT_REVERSE_LISTEN = { host: '127.0.0.1', port: 8082 };

const DEFAULT_PORTS: Record<ReverseScheme, number> = { http: 80, https: 443, h2c: 80 };

/** Parses `URL`, `/PATH=URL`, `HOST=URL`, `HOST/PATH=URL`. Throws an Error a person can act on. */
export function parseReverseRule(text: string): ReverseRule {
  const bare = /^[a-z][a-z0-9+.-]*:\/\//i.test(text);
  const eq = bare ? -1 : text.indexOf('=');
  if (!bare && eq < 0) throw new Error(`--reverse wants [HOST][/PATH]=URL or a bare URL, got "${text}"`);
  const key = bare ? '' : text.slice(0, eq).trim();
  const upstream = parseUpstreamUrl(text.slice(eq + 1).trim(), text);
  const slash = key.indexOf('/');
  const hostPart = slash < 0 ? key : key.slice(0, slash);
  const pathPrefix = slash < 0 ? '/' : key.slice(slash);
  if (/[\s?#]/.test(pathPrefix)) throw new Error(`--reverse: the path prefix "${pathPrefix}" may not hold spaces, ? or #`);
  const host = hostPart ? normaliseHost(hostPart, text) : null;
  return { host, pathPrefix, upstream, text };
}

function parseUpstreamUrl(raw: string, rule: string): ReverseUpstream {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`--reverse: "${raw}" is not a URL (in "${rule}")`);
  }
  const scheme = url.protocol.slice(0, -1).toLowerCase();
  if (scheme !== 'http' && scheme !== 'https' && scheme !== 'h2c') {
    throw new Error(`--reverse: the upstream scheme must be http, https or h2c, got "${scheme}" (in "${rule}")`);
  }
  if (url.username || url.password) throw new Error(`--reverse: the upstream URL may not hold credentials (in "${rule}")`);
  if ((url.pathname !== '' && url.pathname !== '/') || url.search || url.hash) {
    throw new Error(
      `--reverse: the upstream URL may not have a path or query ("${raw}"): the request path is forwarded as is, like nginx proxy_pass without a URI part`,
    );
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) throw new Error(`--reverse: the upstream URL has no host (in "${rule}")`);
  const port = url.port ? Number(url.port) : DEFAULT_PORTS[scheme];
  const shown = isIP(host) === 6 ? `[${host}]` : host;
  return { scheme, host, port, authority: url.port && port !== DEFAULT_PORTS[scheme] ? `${shown}:${port}` : shown };
}

function normaliseHost(text: string, rule: string): string {
  const m = /^(\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(:\d{1,5})?$/i.exec(text);
  if (!m) throw new Error(`--reverse: "${text}" is not a host name (in "${rule}")`);
  return text.toLowerCase().replace(/\.$/, '');
}

/** The host name of an authority (`host`, `host:port`, `[v6]:port`), lower-cased, brackets kept. */
function hostOfAuthority(authority: string): string {
  const a = authority.trim().toLowerCase();
  if (a.startsWith('[')) return a.slice(0, a.indexOf(']') + 1);
  const colon = a.lastIndexOf(':');
  return (colon >= 0 && a.indexOf(':') === colon ? a.slice(0, colon) : a).replace(/\.$/, '');
}

/** The path part of a request target (origin-form, absolute-form, or `*`), without the query. */
export function requestPath(target: string): string {
  if (target.startsWith('/')) {
    const q = target.search(/[?#]/);
    return q < 0 ? target : target.slice(0, q);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) {
    try {
      return new URL(target).pathname || '/';
    } catch {
      return '/';
    }
  }
  return '/';
}

/** The rule for a request, or null when none matches. */
export function matchReverseRule(rules: readonly ReverseRule[], authority: string | null, path: string): ReverseRule | null {
  const fullAuthority = authority?.trim().toLowerCase().replace(/\.(?=:|$)/, '') ?? null;
  const host = fullAuthority === null ? null : hostOfAuthority(fullAuthority);
  let best: ReverseRule | null = null;
  for (const rule of rules) {
    if (rule.host !== null && rule.host !== host && rule.host !== fullAuthority) continue;
    if (!path.startsWith(rule.pathPrefix)) continue;
    if (!best || rank(rule) > rank(best)) best = rule;
  }
  return best;
}

/** Host-specific rules first, then the longer prefix; equal ranks keep the earlier rule. */
function rank(rule: ReverseRule): number {
  return (rule.host !== null ? 1_000_000 : 0) + rule.pathPrefix.length;
}

/** One line per rule, for the answer to a request no rule matches and for `hopscope start`. */
export function describeRules(rules: readonly ReverseRule[]): string {
  return rules.map((r) => `  ${r.host ?? '(any host)'}${r.pathPrefix} -> ${formatUpstream(r.upstream)}`).join('\n');
}

export function formatUpstream(up: ReverseUpstream): string {
  const host = isIP(up.host) === 6 ? `[${up.host}]` : up.host;
  return `${up.scheme}://${host}:${up.port}`;
}
