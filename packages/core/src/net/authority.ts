// Authority-form targets of CONNECT (RFC 9110 §9.3.6): `host:port`, `[v6]:port`.
import { isIP } from 'node:net';

export interface Authority {
  host: string;
  port: number;
}

const HOST_NAME = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$/i;

export function parseAuthority(target: string): Authority {
  const m = /^(\[[^\]]*\]|[^:/?#@\s]+):(\d{1,5})$/.exec(target);
  if (!m) throw new Error(`CONNECT target must be host:port, got "${target.slice(0, 200)}"`);
  const rawHost = m[1];
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw new Error(`CONNECT port out of range: ${m[2]}`);
  if (rawHost.startsWith('[')) {
    const v6 = rawHost.slice(1, -1);
    if (isIP(v6) !== 6) throw new Error(`not an IPv6 address: ${rawHost}`);
    return { host: v6, port };
  }
  if (!isIP(rawHost) && (!HOST_NAME.test(rawHost) || rawHost.length > 253)) {
    throw new Error(`not a valid host name: "${rawHost.slice(0, 200)}"`);
  }
  return { host: rawHost, port };
}

/** `host:port`, bracketing IPv6 literals. */
export function formatAuthority(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
