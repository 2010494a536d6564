// What the reading API returns: camelCase views of the capture tables (snake_case in SQL).
// Shared by the inspector, the exporters and, as types only, the UI.
import type {
  CertificateInfo,
  ClientHelloInfo,
  DetectedProtocol,
  Failure,
  FailureReason,
  HeaderList,
  HttpProtocol,
  Side,
  TunnelVia,
  WsDeflateParams,
  H2FrameDetails,
} from '../capture/events.js';

export type ExchangeState = 'pending' | 'responded' | 'complete' | 'failed';
export type BodySide = 'request' | 'response';

/** One row of the exchange list: no headers, no bodies. */
export interface ExchangeSummary {
  id: number;
  connectionId: number;
  streamId: number | null;
  protocol: HttpProtocol;
  method: string;
  url: string;
  host: string;
  status: number | null;
  statusText: string | null;
  responseContentType: string | null;
  state: ExchangeState;
  startedAt: number;
  completedAt: number | null;
  requestBodySize: number | null;
  responseBodySize: number | null;
  errorReason: FailureReason | null;
  lastSeq: number;
}

export interface StoredBody {
  /** The stored bytes: de-framed, still content-encoded as sent, at most the store's cap. */
  data: Buffer;
  /** Full size seen on the wire (de-framed). */
  size: number;
  /** True when `data` holds fewer bytes than `size`. */
  truncated: boolean;
}

export interface ExchangeDetail extends ExchangeSummary {
  target: string;
  scheme: 'http' | 'https';
  port: number;
  requestHeaders: HeaderList;
  requestTrailers: HeaderList | null;
  responseProtocol: HttpProtocol | null;
  responseHeaders: HeaderList | null;
  responseTrailers: HeaderList | null;
  remoteAddress: string | null;
  remotePort: number | null;
  requestEndAt: number | null;
  responseStartAt: number | null;
  dnsMs: number | null;
  connectMs: number | null;
  tlsMs: number | null;
  error: Failure | null;
  requestBody: StoredBody | null;
  responseBody: StoredBody | null;
  /** HTTP/2 server push: the exchange of the stream whose PUSH_PROMISE opened this one. */
  pushedBy?: number | null;
  /** Where hopscope sent the request when that is not `url` (the reverse proxy's upstream). */
  upstreamUrl?: string | null;
}

export interface TlsLegDetail {
  sni: string | null;
  alpnOffered: string[];
  /** Negotiated protocol; null when none was negotiated or the handshake failed. */
  alpn: string | null;
  version: string | null;
  cipher: string | null;
  handshakeMs: number | null;
  certificates: CertificateInfo[];
  /** Set when the handshake on this leg failed. */
  error: Failure | null;
}

export interface TunnelDetail {
  host: string;
  port: number;
  target: string;
  headers: HeaderList;
  /** How the client asked for the tunnel: HTTP/1.1 CONNECT, SOCKS5, or an HTTP/2 CONNECT stream. */
  via: TunnelVia;
  /** The proxy-authentication user the client presented (null when authentication is off). */
  user: string | null;
}

export interface UpstreamDetail {
  remoteAddress: string;
  remotePort: number;
  dnsMs: number | null;
  connectMs: number | null;
}

export interface DecodeErrorRow {
  id: number;
  connectionId: number;
  decoder: string;
  side: Side;
  code: string;
  message: string;
  occurredAt: number;
  seq: number;
}

export interface ConnectionDetail {
  id: number;
  parentId: number | null;
  listener: string;
  clientAddress: string;
  clientPort: number;
  openedAt: number;
  closedAt: number | null;
  tunnel: TunnelDetail | null;
  upstream: UpstreamDetail | null;
  detectedProtocol: DetectedProtocol | null;
  intercepted: boolean | null;
  hello: ClientHelloInfo | null;
  tls: { client: TlsLegDetail | null; upstream: TlsLegDetail | null };
  bytesFromClient: number | null;
  bytesFromServer: number | null;
  error: Failure | null;
  decodeErrors: DecodeErrorRow[];
  lastSeq: number;
}

export interface ExchangeFilter {
  /** Only ids greater than this. */
  afterId?: number;
  /** Only ids smaller than this. */
  beforeId?: number;
  /** Exact host name. */
  host?: string;
  /** Exact method, case-sensitive as sent. */
  method?: string;
  /** One status code, or an inclusive range such as `{ min: 400, max: 499 }`. */
  status?: number | { min: number; max: number };
  /** Substring of the URL, ASCII case-insensitive. */
  search?: string;
  connectionId?: number;
}

export interface ListExchangesOptions extends ExchangeFilter {
  limit: number;
  /** `newest` (default) lists the highest ids first. */
  order?: 'newest' | 'oldest';
}

export interface IterateExchangesOptions extends ExchangeFilter {
  /** `oldest` (default) streams in capture order. */
  order?: 'newest' | 'oldest';
  limit?: number;
}

// ---- WebSockets (keyed by their handshake exchange) -------------------------------------------

export interface WebSocketRow {
  exchangeId: number;
  connectionId: number;
  openedAt: number;
  closedAt: number | null;
  subprotocol: string | null;
  /** Sec-WebSocket-Extensions of the 101 as sent. */
  extensions: string | null;
  deflate: { client: WsDeflateParams; server: WsDeflateParams } | null;
  closedBy: Side | null;
  closeCode: number | null;
  closeReason: string | null;
  /** Null while open. */
  clean: boolean | null;
  messagesFromClient: number | null;
  messagesFromServer: number | null;
  bytesFromClient: number | null;
  bytesFromServer: number | null;
  error: Failure | null;
  lastSeq: number;
}

export interface WsMessageRow {
  id: number;
  exchangeId: number;
  /** Wire order of the messages' first frames, per WebSocket, from 0. */
  messageIndex: number;
  side: Side;
  opcode: number;
  fin: boolean;
  frames: number;
  wireSize: number;
  payloadSize: number;
  decodedSize: number;
  compressed: boolean;
  truncated: boolean;
  utf8Valid: boolean | null;
  closeCode: number | null;
  closeReason: string | null;
  sentAt: number;
  seq: number;
  /** The decoded payload (at most the cap); null when the listing left data out. */
  data: Buffer | null;
}

export interface WsFrameRow {
  id: number;
  exchangeId: number;
  messageIndex: number;
  frameIndex: number;
  side: Side;
  fin: boolean;
  rsv1: boolean;
  rsv2: boolean;
  rsv3: boolean;
  opcode: number;
  masked: boolean;
  /** 8 hex digits, null when not masked. */
  maskKey: string | null;
  payloadLength: number;
  wireSize: number;
  seenAt: number;
  seq: number;
}

export interface ListWsMessagesOptions {
  /** Only messages with a greater id (messages are numbered in the order they were decoded). */
  afterId?: number;
  limit: number;
  /** Include the payloads (default true). */
  includeData?: boolean;
}

// ---- HTTP/2 frames (per connection and side) ------------------------------------------------

export interface H2FrameRow {
  id: number;
  connectionId: number;
  side: Side;
  /** Null for a summary row (it counts frames of every stream). */
  streamId: number | null;
  type: number;
  typeName: string;
  flags: number;
  flagNames: string[];
  /** Payload length (padding included); for a summary row, the sum over its frames. */
  length: number;
  padLength: number | null;
  details: H2FrameDetails | null;
  /** A summary row stands for `frameCount` frames of this side and type past the cap. */
  summary: boolean;
  frameCount: number;
  /** When the frame was decoded; for a summary row, its first frame. */
  seenAt: number;
  /** Summary rows: the last frame counted. */
  lastSeenAt: number | null;
  seq: number;
}

export interface ListH2FramesOptions {
  /** Only this stream's frames (0: the connection's own frames). */
  streamId?: number;
  /** Only rows with a greater id. */
  afterId?: number;
  limit: number;
}
