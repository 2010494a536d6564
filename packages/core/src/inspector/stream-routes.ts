// API routes for what flows inside an exchange or connection: WebSocket messages (and each
// message's frames) and HTTP/2 frames. Read from the store's ws-queries and h2-queries.
import { isUtf8 } from 'node:buffer';
import type { ServerResponse } from 'node:http';
import type Database from 'better-sqlite3';
import { getWebSocket, getWsMessage, listH2Frames, listWsFrames, listWsMessages } from '../store/queries.js';
import type { WsMessageRow } from '../store/row-types.js';
import { sendError, sendJson } from './api-routes.js';
import type { H2FramesResponse, WebSocketResponse, WsMessageJson, WsMessageResponse } from './protocol.js';

/** Payload bytes inlined per message in a list; the message route gives all that was stored. */
const PREVIEW_LIMIT = 16 * 1024;
const MAX_PAGE = 1000;

function messageJson(m: WsMessageRow, limit: number): WsMessageJson {
  const { data, ...rest } = m;
  if (!data) return { ...rest, data: null };
  const cut = data.length > limit ? data.subarray(0, limit) : data;
  const complete = cut.length === data.length;
  // A cut may split a UTF-8 sequence: decide on the whole payload, then decode the prefix leniently.
  const text = isUtf8(data) ? { encoding: 'utf8' as const, text: cut.toString('utf8') } : { encoding: 'base64' as const, text: cut.toString('base64') };
  return { ...rest, data: { ...text, complete } };
}

function page(url: URL): { afterId: number; limit: number } | null {
  const afterId = url.searchParams.get('afterId') ?? '0';
  const limit = url.searchParams.get('limit') ?? '500';
  if (!/^\d+$/.test(afterId) || !/^\d+$/.test(limit)) return null;
  return { afterId: Number(afterId), limit: Math.min(Math.max(Number(limit), 1), MAX_PAGE) };
}

/** Answers the stream routes; false when the path is not one of them. */
export function handleStreamRoutes(db: Database.Database, res: ServerResponse, url: URL): boolean {
  const path = url.pathname;
  let m = /^\/api\/exchanges\/(\d+)\/websocket$/.exec(path);
  if (m) {
    const p = page(url);
    if (!p) return badPage(res);
    const exchangeId = Number(m[1]);
    const rows = listWsMessages(db, exchangeId, { afterId: p.afterId, limit: p.limit + 1, includeData: true });
    sendJson(res, 200, {
      websocket: getWebSocket(db, exchangeId),
      messages: rows.slice(0, p.limit).map((r) => messageJson(r, PREVIEW_LIMIT)),
      hasMore: rows.length > p.limit,
    } satisfies WebSocketResponse);
    return true;
  }
  m = /^\/api\/ws-messages\/(\d+)$/.exec(path);
  if (m) {
    const message = getWsMessage(db, Number(m[1]));
    if (!message) sendError(res, 404, 'not-found', `No WebSocket message ${m[1]} in this capture.`);
    else {
      sendJson(res, 200, {
        message: messageJson(message, Number.MAX_SAFE_INTEGER),
        frames: listWsFrames(db, message.exchangeId, message.messageIndex),
      } satisfies WsMessageResponse);
    }
    return true;
  }
  m = /^\/api\/connections\/(\d+)\/h2-frames$/.exec(path);
  if (m) {
    const p = page(url);
    const stream = url.searchParams.get('streamId');
    if (!p || (stream !== null && !/^\d+$/.test(stream))) return badPage(res);
    const rows = listH2Frames(db, Number(m[1]), { afterId: p.afterId, limit: p.limit + 1, streamId: stream === null ? undefined : Number(stream) });
    sendJson(res, 200, { frames: rows.slice(0, p.limit), hasMore: rows.length > p.limit } satisfies H2FramesResponse);
    return true;
  }
  return false;
}

function badPage(res: ServerResponse): true {
  sendError(res, 400, 'bad-parameter', 'afterId, limit and streamId are whole numbers.');
  return true;
}
