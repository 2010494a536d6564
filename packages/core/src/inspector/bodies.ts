// Bodies for the API: inline JSON (text when valid UTF-8, else base64) and content-coding removal
// for the raw route, for codings a browser cannot undo itself (br on most, or any when asked).
import { isUtf8 } from 'node:buffer';
import type { StoredBody } from '../store/row-types.js';
import type { BodyJson } from './protocol.js';

export type BodyMode = 'auto' | 'base64' | 'none';

/** Bodies larger than this are not inlined in the exchange JSON. */
export const INLINE_BODY_LIMIT = 1024 * 1024;

export function bodyJson(body: StoredBody | null, mode: BodyMode, inlineLimit = INLINE_BODY_LIMIT): BodyJson | null {
  if (!body) return null;
  const base = { size: body.size, storedSize: body.data.length, truncated: body.truncated };
  if (mode === 'none' || body.data.length > inlineLimit) return { ...base, encoding: 'omitted' };
  if (mode === 'auto' && isUtf8(body.data)) return { ...base, encoding: 'utf8', data: body.data.toString('utf8') };
  return { ...base, encoding: 'base64', data: body.data.toString('base64') };
}
