// The JSON API (docs/api.md). Every route is a GET over the capture store but one: POST
// /api/exchanges/:id/replay sends a captured request again through the proxy (replay.ts).
// The HAR export (GET /api/har) is answered by src/export/har-route.ts, after the same checks.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Database from 'better-sqlite3';
import { parseFilter } from '../filter/parser.js';
import { getConnection, getExchange } from '../store/queries.js';
import type { ExchangeDetail } from '../store/row-types.js';
import { decodeContent, UnsupportedCodingError } from '../decode/content-coding.js';
import { contentCodings } from '../decode/content-encoding-header.js';
import { bodyJson, type BodyMode } from './bodies.js';
import { capabilities } from './capabilities.js';
import { connectionExchangeIds, isWebSocketExchange, listRows } from './exchange-rows.js';
import { replayExchange, replayRefusal, type ReplayContext } from './replay.js';
import { applyEdits, BadEdit, capturedRequest, parseEdits } from './replay-request.js';
import { handleStreamRoutes } from './stream-routes.js';
import {
  LIVE_PROTOCOL_VERSION,
  type ApiError,
  type ConnectionDetailJson,
  type ExchangeDetailJson,
  type ExchangeListResponse,
  type InfoResponse,
  type ReplayEdits,
  type ReplayResponse,
} from './protocol.js';

export interface ApiContext {
  db: Database.Database;
  /** Current committed watermark. */
  seq(): number;
  proxyUrl: string | null;
  caPath: string | null;
  /** Null when the inspector cannot send requests (no proxy port or CA given). */
  replay: ReplayContext | null;
  /** Commits what the capture holds so far (a replayed exchange is readable once this resolves). */
  flush(): Promise<void>;
}

const MAX_PAGE = 5000;
const DEFAULT_PAGE = 500;

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  res.end(text);
}

export function sendError(res: ServerResponse, status: number, code: string, message: string, extra: Partial<ApiError['error']> = {}) {
  sendJson(res, status, { error: { code, message, ...extra } } satisfies ApiError);
}

/** Answers an /api/ request; returns false when no route matched. */
export function handleApi(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, url: URL): boolean {
  const path = url.pathname;
  const replay = /^\/api\/exchanges\/(\d+)\/replay$/.exec(path);
  if (replay) {
    if (req.method === 'POST') void replayRoute(ctx, Number(replay[1]), req, res);
    else sendError(res, 405, 'method-not-allowed', 'Resend with POST.');
    return true;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendError(res, 405, 'method-not-allowed', 'The inspector API is read-only here: use GET.');
    return true;
  }
  if (path === '/api/info') {
    sendJson(res, 200, {
      name: 'hopscope',
      liveProtocol: LIVE_PROTOCOL_VERSION,
      proxyUrl: ctx.proxyUrl,
      caPath: ctx.caPath,
      seq: ctx.seq(),
      capabilities: capabilities(ctx.db),
      replay: ctx.replay !== null,
    } satisfies InfoResponse);
    return true;
  }
  if (path === '/api/exchanges') {
    listExchanges(ctx, url, res);
    return true;
  }
  let m = /^\/api\/exchanges\/(\d+)$/.exec(path);
  if (m) {
    exchangeDetail(ctx, Number(m[1]), url, res);
    return true;
  }
  m = /^\/api\/exchanges\/(\d+)\/body\/(request|response)$/.exec(path);
  if (m) {
    rawBody(ctx, Number(m[1]), m[2] as 'request' | 'response', url, res);
    return true;
  }
  if (handleStreamRoutes(ctx.db, res, url)) return true;
  m = /^\/api\/connections\/(\d+)$/.exec(path);
  if (m) {
    const conn = getConnection(ctx.db, Number(m[1]));
    if (!conn) sendError(res, 404, 'not-found', `No connection ${m[1]} in this capture.`);
    else sendJson(res, 200, { ...conn, exchangeIds: connectionExchangeIds(ctx.db, conn.id) } satisfies ConnectionDetailJson);
    return true;
  }
  return false;
}

/** Largest edit a client may post (the body it carries included). */
const MAX_EDITS_BYTES = 16 * 1024 * 1024;

/**
 * Sends a captured request again, with the edits posted as JSON if any; answers once its whole
 * response came back and is committed.
 */
async function replayRoute(ctx: ApiContext, id: number, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let edits: ReplayEdits;
  try {
    edits = await readEdits(req);
  } catch (err) {
    const tooLarge = err instanceof RangeError;
    sendError(res, tooLarge ? 413 : 400, tooLarge ? 'too-large' : 'bad-parameter', (err as Error).message);
    return;
  }
  if (!ctx.replay) {
    sendError(res, 501, 'replay-unavailable', 'This inspector was started without a proxy port and CA to send requests through.');
    return;
  }
  const detail = exchangeOr404(ctx, id, res);
  if (!detail) return;
  const refusal = replayRefusal(detail, isWebSocketExchange(ctx.db, id), edits);
  if (refusal) {
    sendError(res, 409, 'not-replayable', refusal);
    return;
  }
  let request;
  try {
    request = applyEdits(capturedRequest(detail), edits);
  } catch (err) {
    if (!(err instanceof BadEdit)) throw err;
    sendError(res, 400, 'bad-parameter', err.message);
    return;
  }
  try {
    const outcome = await replayExchange(ctx.replay, request);
    await ctx.flush();
    sendJson(res, 200, outcome satisfies ReplayResponse);
  } catch (err) {
    sendError(res, 502, 'replay-failed', `The request could not be sent again: ${(err as Error).message}`);
  }
}

/** The posted edits: none for an empty body, else a JSON object (BadEdit or RangeError when not). */
async function readEdits(req: IncomingMessage): Promise<ReplayEdits> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_EDITS_BYTES) throw new RangeError(`Edits are at most ${MAX_EDITS_BYTES} bytes.`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new BadEdit('The edits are JSON.');
  }
  return parseEdits(value);
}

/** The exchange, or null once the client has been told it is not in this capture. */
function exchangeOr404(ctx: ApiContext, id: number, res: ServerResponse): ExchangeDetail | null {
  const detail = getExchange(ctx.db, id);
  if (!detail) sendError(res, 404, 'not-found', `No exchange ${id} in this capture.`);
  return detail;
}

function intParam(url: URL, name: string): number | undefined | null {
  const v = url.searchParams.get(name);
  if (v === null || v === '') return undefined;
  return /^\d+$/.test(v) ? Number(v) : null;
}

function listExchanges(ctx: ApiContext, url: URL, res: ServerResponse): void {
  const parsed = parseFilter(url.searchParams.get('filter') ?? '');
  if (!parsed.ok) {
    sendError(res, 400, 'bad-filter', parsed.error.message, { start: parsed.error.start, end: parsed.error.end });
    return;
  }
  const limit = intParam(url, 'limit');
  const beforeId = intParam(url, 'beforeId');
  const afterId = intParam(url, 'afterId');
  const order = url.searchParams.get('order') ?? 'newest';
  if (limit === null || beforeId === null || afterId === null || (order !== 'newest' && order !== 'oldest')) {
    sendError(res, 400, 'bad-parameter', 'limit, beforeId and afterId are whole numbers; order is newest or oldest.');
    return;
  }
  const seq = ctx.seq();
  const page = listRows(ctx.db, {
    filter: parsed.expr,
    limit: Math.min(Math.max(limit ?? DEFAULT_PAGE, 1), MAX_PAGE),
    order,
    beforeId,
    afterId,
  });
  sendJson(res, 200, { seq, exchanges: page.rows, hasMore: page.hasMore } satisfies ExchangeListResponse);
}

function exchangeDetail(ctx: ApiContext, id: number, url: URL, res: ServerResponse): void {
  const mode = (url.searchParams.get('body') ?? 'auto') as BodyMode;
  if (mode !== 'auto' && mode !== 'base64' && mode !== 'none') {
    sendError(res, 400, 'bad-parameter', 'body is auto, base64 or none.');
    return;
  }
  const detail = exchangeOr404(ctx, id, res);
  if (!detail) return;
  const json: ExchangeDetailJson = {
    ...detail,
    websocket: isWebSocketExchange(ctx.db, id),
    requestBody: bodyJson(detail.requestBody, mode),
    responseBody: bodyJson(detail.responseBody, mode),
  };
  sendJson(res, 200, json);
}

/** The stored bytes, or with `?decode=1` the bytes with the content codings undone. */
function rawBody(ctx: ApiContext, id: number, side: 'request' | 'response', url: URL, res: ServerResponse): void {
  const detail = exchangeOr404(ctx, id, res);
  if (!detail) return;
  const body = side === 'request' ? detail.requestBody : detail.responseBody;
  let data = body?.data ?? Buffer.alloc(0);
  if (url.searchParams.get('decode') === '1') {
    try {
      data = decodeContent(data, contentCodings(side === 'request' ? detail.requestHeaders : detail.responseHeaders));
    } catch (err) {
      const unsupported = err instanceof UnsupportedCodingError;
      sendError(res, unsupported ? 415 : 422, unsupported ? 'unsupported-coding' : 'corrupt-body', (err as Error).message);
      return;
    }
  }
  // Captured bytes are never rendered on the inspector's origin: no sniffing, sandboxed, a download.
  res.writeHead(200, {
    'Content-Type': 'application/octet-stream',
    'Content-Length': data.length,
    'Content-Security-Policy': 'sandbox',
    'Content-Disposition': `attachment; filename="exchange-${id}-${side}.bin"`,
    'Cache-Control': 'no-store',
    'X-Hopscope-Size': String(body?.size ?? 0),
    'X-Hopscope-Truncated': body?.truncated ? '1' : '0',
  });
  res.end(data);
}
