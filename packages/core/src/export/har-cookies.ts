// Cookies for HAR: the request's Cookie headers and the response's Set-Cookie headers, parsed the
// lenient way browsers do (RFC 6265 section 5): no failure, odd pieces are skipped.
import type { HeaderList } from '../capture/events.js';
import type { HarCookie } from './har-types.js';
import { headerValues } from './har-content.js';

/** `Cookie: a=1; b=2` (every Cookie header; HTTP/2 clients may send several). */
export function requestCookies(headers: HeaderList): HarCookie[] {
  const cookies: HarCookie[] = [];
  for (const header of headerValues(headers, 'cookie')) {
    for (const piece of header.split(';')) {
      const pair = splitPair(piece);
      if (pair) cookies.push({ name: pair[0], value: pair[1] });
    }
  }
  return cookies;
}

/** One cookie per Set-Cookie header; `Max-Age` is turned into `expires` from `receivedAt`. */
export function responseCookies(headers: HeaderList | null, receivedAt: number): HarCookie[] {
  const cookies: HarCookie[] = [];
  for (const header of headerValues(headers, 'set-cookie')) {
    const [first, ...attributes] = header.split(';');
    const pair = splitPair(first);
    if (!pair) continue;
    const cookie: HarCookie = { name: pair[0], value: pair[1] };
    let maxAge: number | null = null;
    let expires: string | null = null;
    for (const attribute of attributes) {
      const eq = attribute.indexOf('=');
      const key = (eq < 0 ? attribute : attribute.slice(0, eq)).trim().toLowerCase();
      const value = eq < 0 ? '' : attribute.slice(eq + 1).trim();
      if (key === 'path' && value) cookie.path = value;
      else if (key === 'domain' && value) cookie.domain = value;
      else if (key === 'httponly') cookie.httpOnly = true;
      else if (key === 'secure') cookie.secure = true;
      else if (key === 'samesite' && value) cookie.sameSite = value;
      else if (key === 'max-age' && /^-?\d+$/.test(value)) maxAge = Number(value);
      else if (key === 'expires') {
        expires = isoOrNull(Date.parse(value));
      }
    }
    // Max-Age wins over Expires (RFC 6265 5.3 step 3).
    if (maxAge !== null) expires = isoOrNull(maxAge <= 0 ? 0 : receivedAt + maxAge * 1000);
    if (expires !== null) cookie.expires = expires;
    cookies.push(cookie);
  }
  return cookies;
}

/** ISO 8601 of epoch ms, or null outside what a Date can hold. */
function isoOrNull(ms: number): string | null {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

function splitPair(piece: string): [string, string] | null {
  const eq = piece.indexOf('=');
  if (eq < 0) return null;
  const name = piece.slice(0, eq).trim();
  if (name === '') return null;
  return [name, piece.slice(eq + 1).trim()];
}
