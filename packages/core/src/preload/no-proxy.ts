// Which proxy a request should use, from the usual environment variables, the way curl and most
// HTTP clients read them: lower case first, NO_PROXY as a list of hosts, `.domain` suffixes,
// `*.domain`, `host:port` and `*` (everything direct).
// This file runs inside the user's Node processes (see register.ts): Node built-ins only.

export interface ProxyEnv {
  http: URL | null;
  https: URL | null;
  noProxy: string[];
}

export function readProxyEnv(env: NodeJS.ProcessEnv): ProxyEnv {
  const get = (name: string) => env[name.toLowerCase()] || env[name.toUpperCase()] || '';
  return {
    http: parseProxyUrl(get('http_proxy')),
    https: parseProxyUrl(get('https_proxy')),
    noProxy: get('no_proxy')
      .split(/[\s,]+/)
      .map((entry) => entry.trim().toLowerCase())
      .filter(Boolean),
  };
}

function parseProxyUrl(text: string): URL | null {
  if (!text) return null;
  try {
    // `host:port` without a scheme is common in the wild.
    const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`);
    return url.protocol === 'http:' ? url : null; // this preload speaks to plain-HTTP proxies only
  } catch {
    return null;
  }
}

/** The proxy for a request to `host:port` over `scheme`, or null to go direct. */
export function proxyFor(env: ProxyEnv, scheme: 'http' | 'https', host: string, port: number): URL | null {
  const proxy = scheme === 'https' ? env.https : env.http;
  if (!proxy || bypasses(env.noProxy, host, port)) return null;
  return proxy;
}

function bypasses(noProxy: string[], rawHost: string, port: number): boolean {
  const host = rawHost.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
  return noProxy.some((entry) => {
    if (entry === '*') return true;
    let pattern = entry;
    const withPort = /^(.*):(\d+)$/.exec(pattern);
    if (withPort && !pattern.includes('::')) {
      if (Number(withPort[2]) !== port) return false;
      pattern = withPort[1];
    }
    pattern = pattern.replace(/^\[|\]$/g, '').replace(/^\*/, '');
    if (pattern.startsWith('.')) return host.endsWith(pattern) || host === pattern.slice(1);
    return host === pattern || host.endsWith(`.${pattern}`);
  });
}
