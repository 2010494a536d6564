// Keeps the inspector from being a hole in the user's machine: only its own Host names are served
// (DNS rebinding), WebSocket upgrades from foreign origins are refused, and every request needs
// the random token, given once in the printed URL and then kept in an HttpOnly cookie.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

export function newToken(): string {
  return randomBytes(24).toString('base64url');
}

/** Constant-time comparison; hashing first makes the lengths equal. */
export function tokensEqual(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b) && given.length === expected.length;
}

export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '');
  if (bare === 'localhost' || bare === '::1') return true;
  return isIP(bare) === 4 && bare.startsWith('127.');
}

/** `host:port` spellings the inspector answers to: the loopback names, plus the bound address itself. */
export function allowedHosts(boundHost: string, port: number): Set<string> {
  const names = new Set<string>();
  const add = (h: string) => names.add(`${(isIP(h) === 6 ? `[${h}]` : h).toLowerCase()}:${port}`);
  for (const h of ['localhost', '127.0.0.1', '::1']) add(h);
  const bare = boundHost.replace(/^\[|\]$/g, '');
  if (bare !== '0.0.0.0' && bare !== '::' && bare !== '') add(bare);
  return names;
}

export function cookieName(port: number): string {
  // Cookies are not separated by port: name them per port so two inspectors do not collide.
  return `hopscope_token_${port}`;
}

export function readCookie(req: IncomingMessage, name: string): string | null {
  const header = req.headers.cookie;
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

export function tokenCookie(name: string, token: string): string {
  return `${name}=${token}; Path=/; HttpOnly; SameSite=Strict`;
}

export type Verdict = { ok: true; tokenFromQuery: boolean } | { ok: false; status: 401 | 403 | 421; message: string };

export interface Guard {
  readonly token: string;
  readonly cookie: string;
  check(req: IncomingMessage, url: URL, options: { upgrade: boolean }): Verdict;
}

export function createGuard(token: string, boundHost: string, port: number): Guard {
  const hosts = allowedHosts(boundHost, port);
  const cookie = cookieName(port);
  return {
    token,
    cookie,
    check(req, url, { upgrade }) {
      const host = withPort((req.headers.host ?? '').toLowerCase());
      if (!hosts.has(host)) {
        return { ok: false, status: 421, message: `This inspector answers only as ${[...hosts].join(', ')}; the Host header was "${host}".` };
      }
      const origin = req.headers.origin;
      // Browsers always send Origin on WebSocket upgrades (and on cross-origin fetches); other clients may omit it.
      if (origin !== undefined && !hosts.has(originHost(origin))) {
        if (upgrade || req.method !== 'GET') {
          return { ok: false, status: 403, message: `Requests from the origin ${origin} are not allowed.` };
        }
      }
      const fromQuery = url.searchParams.get('token');
      if (fromQuery !== null && tokensEqual(fromQuery, token)) return { ok: true, tokenFromQuery: true };
      const fromCookie = readCookie(req, cookie);
      if (fromCookie !== null && tokensEqual(fromCookie, token)) return { ok: true, tokenFromQuery: false };
      const auth = req.headers.authorization;
      if (auth?.startsWith('Bearer ') && tokensEqual(auth.slice(7).trim(), token)) return { ok: true, tokenFromQuery: false };
      return {
        ok: false,
        status: 401,
        message: 'Missing or wrong token: open the inspector with the URL hopscope printed (it ends in ?token=…).',
      };
    },
  };
}

function originHost(origin: string): string {
  try {
    const u = new URL(origin);
    if (u.protocol !== 'http:') return '';
    return withPort(u.host.toLowerCase());
  } catch {
    return '';
  }
}

/** `localhost` means `localhost:80`, as sent by clients for the default port. */
function withPort(host: string): string {
  return host === '' || /:\d+$/.test(host) ? host : `${host}:80`;
}
