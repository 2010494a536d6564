// The inspector's wire types: JSON API responses and the live WebSocket messages (docs/api.md).
// The UI imports these (the types, and the constants below); this file is the only definition.
import type { FailureReason, HttpProtocol } from '../capture/events.js';
import type {
  ConnectionDetail,
  ExchangeDetail,
  ExchangeSummary,
  H2FrameRow,
  WebSocketRow,
  WsFrameRow,
  WsMessageRow,
} from '../store/row-types.js';

/** Protocol version of the live socket; bumped on incompatible changes. */
export const LIVE_PROTOCOL_VERSION = 1;
/** A paused client's count of new exchanges stops here (show it as "10000+"). */
export const PAUSED_COUNT_CAP = 10_000;

/** One row of the exchange list: the store's summary plus what the list columns need. */
export interface ExchangeRow extends ExchangeSummary {
  target: string;
  scheme: 'http' | 'https';
  port: number;
  responseProtocol: HttpProtocol | null;
  responseStartAt: number | null;
  /** The request is a WebSocket handshake (Upgrade: websocket, or an HTTP/2 extended CONNECT). */
  websocket: boolean;
  /** ALPN negotiated on the client ↔ hopscope leg and on the hopscope ↔ upstream leg (null: none or no TLS). */
  clientAlpn: string | null;
  upstreamAlpn: string | null;
  /** A TLS handshake of the connection failed on either leg. */
  tlsError: boolean;
}

/** What changed on a connection, for panes that show it. */
export interface ConnectionSummary {
  id: number;
  closedAt: number | null;
  errorReason: FailureReason | null;
  clientAlpn: string | null;
  upstreamAlpn: string | null;
  lastSeq: number;
}

export interface Capabilities {
  /** The capture file has a table of HTTP/2 frames. */
  h2Frames: boolean;
  /** The capture file has tables of WebSocket messages and frames. */
  wsMessages: boolean;
}

// ---- REST ------------------------------------------------------------------------------------

export interface InfoResponse {
  name: 'hopscope';
  liveProtocol: number;
  proxyUrl: string | null;
  caPath: string | null;
  /** Everything up to this sequence number is committed and readable. */
  seq: number;
  capabilities: Capabilities;
  /** POST /api/exchanges/:id/replay works here (the inspector knows the proxy port and the CA). */
  replay: boolean;
}

/** What POST /api/exchanges/:id/replay may carry (JSON): each field replaces the captured one. */
export interface ReplayEdits {
  method?: string;
  /** Absolute http:// or https:// URL. */
  url?: string;
  /** The whole header list, in order; HTTP/2 pseudo-headers come from the method and URL. */
  headers?: Array<[string, string]>;
  /** UTF-8 text. */
  body?: string;
  bodyBase64?: string;
}

/** The answer to POST /api/exchanges/:id/replay, once the whole response came back. */
export interface ReplayResponse {
  /** The new exchange (null when hopscope recorded none). */
  exchangeId: number | null;
  status: number;
}

export interface ExchangeListResponse {
  seq: number;
  exchanges: ExchangeRow[];
  /** More rows exist beyond this page in the requested order. */
  hasMore: boolean;
}

/** A stored body as JSON: text when it is valid UTF-8, else base64; large ones are left to the raw route. */
export interface BodyJson {
  /** Full size seen on the wire. */
  size: number;
  /** Bytes stored (fewer than `size` when truncated). */
  storedSize: number;
  truncated: boolean;
  encoding: 'utf8' | 'base64' | 'omitted';
  /** Absent when `encoding` is `omitted`: fetch `/api/exchanges/:id/body/:side`. */
  data?: string;
}

export type ExchangeDetailJson = Omit<ExchangeDetail, 'requestBody' | 'responseBody'> & {
  websocket: boolean;
  requestBody: BodyJson | null;
  responseBody: BodyJson | null;
};

export type ConnectionDetailJson = ConnectionDetail & {
  /** Ids of the first exchanges on this connection, oldest first (at most 1000). */
  exchangeIds: number[];
};

/** A WebSocket message with its payload as text (valid UTF-8) or base64, cut to `previewLimit` in lists. */
export type WsMessageJson = Omit<WsMessageRow, 'data'> & {
  data: { encoding: 'utf8' | 'base64'; text: string; complete: boolean } | null;
};

export interface WebSocketResponse {
  /** Null when the handshake did not open a WebSocket (or it is not recorded yet). */
  websocket: WebSocketRow | null;
  messages: WsMessageJson[];
  hasMore: boolean;
}

export interface WsMessageResponse {
  message: WsMessageJson;
  frames: WsFrameRow[];
}

export interface H2FramesResponse {
  frames: H2FrameRow[];
  hasMore: boolean;
}

export interface ApiError {
  error: { code: string; message: string; start?: number; end?: number };
}

// ---- live socket -----------------------------------------------------------------------------

export type ClientMessage =
  /**
   * Start (or restart) a subscription. With `since`, the server sends only what changed after that
   * sequence number (a `delta` snapshot) when it can; otherwise the newest `limit` rows (`full`).
   */
  | { type: 'subscribe'; filter?: string; since?: number; afterId?: number; limit?: number }
  | { type: 'unsubscribe' }
  /** Stop the updates, keep the filter, and be told how many new matching exchanges arrive meanwhile. */
  | { type: 'pause' }
  /** The client has applied event batch `n`; the server keeps at most a few batches unacknowledged. */
  | { type: 'ack'; n: number };

export type ServerMessage =
  | { type: 'hello'; liveProtocol: number; seq: number; capabilities: Capabilities }
  | {
      type: 'snapshot';
      mode: 'full' | 'delta';
      /** Watermark: the snapshot reflects every event up to `seq`. */
      seq: number;
      filter: string;
      /** Newest first. */
      exchanges: ExchangeRow[];
      /** Delta only: ids that changed and no longer match the filter. */
      removed: number[];
      /** Full only: older matching rows exist (page them with GET /api/exchanges?beforeId=…). */
      hasMore: boolean;
    }
  | {
      type: 'events';
      /** Batch number to acknowledge. */
      n: number;
      seq: number;
      exchanges: ExchangeRow[];
      removed: number[];
      connections: ConnectionSummary[];
    }
  /**
   * The answer to `pause`, then again whenever the count moved: matching exchanges newer than the
   * pause (at most PAUSED_COUNT_CAP). Resume with `subscribe` and `since`.
   */
  | { type: 'paused'; seq: number; newExchanges: number }
  /** The client fell behind or too much changed at once: subscribe again (the queue was dropped). */
  | { type: 'resync'; reason: 'overflow' | 'too-many-changes' }
  | { type: 'error'; code: 'bad-filter' | 'bad-message'; message: string; start?: number; end?: number };
