// The inspector's JSON API (docs/api.md). The token travels in the HttpOnly cookie the server set.
import type {
  ApiError,
  ConnectionDetailJson,
  ExchangeDetailJson,
  ExchangeListResponse,
  H2FramesResponse,
  InfoResponse,
  ReplayEdits,
  ReplayResponse,
  WebSocketResponse,
  WsMessageResponse,
} from '../../../core/src/inspector/protocol.js';

export class ApiRequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function getJson<T>(path: string, signal?: AbortSignal, post?: { json: unknown }): Promise<T> {
  const res = await fetch(path, {
    method: post ? 'POST' : 'GET',
    signal,
    credentials: 'same-origin',
    headers: post ? { Accept: 'application/json', 'Content-Type': 'application/json' } : { Accept: 'application/json' },
    body: post ? JSON.stringify(post.json) : undefined,
  });
  if (!res.ok) {
    let body: ApiError | null = null;
    try {
      body = (await res.json()) as ApiError;
    } catch {
      // not JSON
    }
    throw new ApiRequestError(res.status, body?.error.code ?? 'http', body?.error.message ?? `${res.status} ${res.statusText}`);
  }
  return (await res.json()) as T;
}

export const fetchInfo = (signal?: AbortSignal) => getJson<InfoResponse>('/api/info', signal);

export function fetchExchangePage(
  options: { filter: string; beforeId?: number; afterId?: number; limit?: number },
  signal?: AbortSignal,
): Promise<ExchangeListResponse> {
  const q = new URLSearchParams();
  if (options.filter) q.set('filter', options.filter);
  if (options.beforeId !== undefined) q.set('beforeId', String(options.beforeId));
  if (options.afterId !== undefined) q.set('afterId', String(options.afterId));
  q.set('limit', String(options.limit ?? 5000));
  return getJson<ExchangeListResponse>(`/api/exchanges?${q}`, signal);
}

export const fetchExchange = (id: number, signal?: AbortSignal) => getJson<ExchangeDetailJson>(`/api/exchanges/${id}`, signal);

export const fetchConnection = (id: number, signal?: AbortSignal) => getJson<ConnectionDetailJson>(`/api/connections/${id}`, signal);

/** Raw stored body bytes; with `decode`, the server undoes the content codings. */
export async function fetchBodyBytes(id: number, side: 'request' | 'response', decode: boolean, signal?: AbortSignal): Promise<Uint8Array> {
  const res = await fetch(`/api/exchanges/${id}/body/${side}${decode ? '?decode=1' : ''}`, { signal, credentials: 'same-origin' });
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try {
      message = ((await res.json()) as ApiError).error.message;
    } catch {
      // keep the status line
    }
    throw new ApiRequestError(res.status, 'body', message);
  }
  return new Uint8Array(await res.arrayBuffer());
}

export const fetchWebSocket = (exchangeId: number, signal?: AbortSignal) =>
  getJson<WebSocketResponse>(`/api/exchanges/${exchangeId}/websocket?limit=1000`, signal);

export const fetchWsMessage = (id: number, signal?: AbortSignal) => getJson<WsMessageResponse>(`/api/ws-messages/${id}`, signal);

export const fetchH2Frames = (connectionId: number, streamId: number | null, signal?: AbortSignal) =>
  getJson<H2FramesResponse>(`/api/connections/${connectionId}/h2-frames?limit=1000${streamId === null ? '' : `&streamId=${streamId}`}`, signal);

/** Sends a captured request again through hopscope, as captured or with edits; resolves once its response came back. */
export const replayExchange = (id: number, edits: ReplayEdits = {}) =>
  getJson<ReplayResponse>(`/api/exchanges/${id}/replay`, undefined, { json: edits });
