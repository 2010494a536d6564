// Proxy authentication (--proxy-auth user:pass): the one place that knows the expected credentials
// and compares them, for HTTP's Proxy-Authorization: Basic (RFC 7617, RFC 9110 §11.7) and for
// SOCKS5 username/password (RFC 1929).
import { createHash, timingSafeEqual } from 'node:crypto';

export interface ProxyCredentials {
  user: string;
  pass: string;
}

/** What a client presented: accepted (with the user name) or refused. */
export type AuthVerdict = { ok: true; user: string } | { ok: false; user: string | null };

/** Parses `user:pass` (the password may itself contain colons). */
export function parseProxyCredentials(text: string): ProxyCredentials {
  const colon = text.indexOf(':');
  if (colon <= 0) throw new Error(`--proxy-auth wants USER:PASSWORD, got "${text}"`);
  return { user: text.slice(0, colon), pass: text.slice(colon + 1) };
}

/** Compares in constant time (over digests, so lengths do not leak either). */
export function credentialsMatch(expected: ProxyCredentials, user: string, pass: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  const userOk = timingSafeEqual(digest(expected.user), digest(user));
  const passOk = timingSafeEqual(digest(expected.pass), digest(pass));
  return userOk && passOk;
}

/** Checks a `Proxy-Authorization` header value (absent, another scheme or malformed: refused). */
export function checkProxyAuthorization(expected: ProxyCredentials, header: string | undefined): AuthVerdict {
  const match = header ? /^\s*basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header) : null;
  if (!match) return { ok: false, user: null };
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return { ok: false, user: null };
  const user = decoded.slice(0, colon);
  return credentialsMatch(expected, user, decoded.slice(colon + 1)) ? { ok: true, user } : { ok: false, user };
}

/** The challenge a 407 carries. */
export const PROXY_AUTHENTICATE = 'Basic realm="hopscope", charset="UTF-8"';
