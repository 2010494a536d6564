// HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/) as hopscope writes it, with its own
// `_`-prefixed extras. docs/har.md documents the extras; keep the two together.
import type { CertificateInfo, FailureReason, HttpProtocol, Side, TunnelVia } from '../capture/events.js';
import type { ExchangeState } from '../store/row-types.js';

export interface HarNameValue {
  name: string;
  value: string;
}

export interface HarCookie {
  name: string;
  value: string;
  path?: string;
  domain?: string;
  /** ISO 8601 */
  expires?: string;
  httpOnly?: boolean;
  secure?: boolean;
  sameSite?: string;
}

export interface HarPostData {
  mimeType: string;
  text: string;
  params?: HarNameValue[];
  /** `base64` when `text` holds the bytes in base64 (a binary body). */
  _encoding?: 'base64';
  /** The content coding still applied to the bytes in `text`. */
  _contentEncoding?: string;
  /** The body was cut at the store's cap: `text` holds only its start. */
  _truncated?: true;
}

export interface HarContent {
  /** Length of the content in `text` once decoded (the full wire size when it could not be decoded). */
  size: number;
  /** Bytes saved by the content coding (bodySize − size); only when it was removed. */
  compression?: number;
  mimeType: string;
  text?: string;
  encoding?: 'base64';
  /** The content coding that is still applied to `text` (it could not or may not be removed). */
  _contentEncoding?: string;
  _truncated?: true;
}

export interface HarRequest {
  method: string;
  url: string;
  httpVersion: string;
  cookies: HarCookie[];
  headers: HarNameValue[];
  queryString: HarNameValue[];
  postData?: HarPostData;
  headersSize: number;
  bodySize: number;
  _trailers?: HarNameValue[];
}

export interface HarResponse {
  status: number;
  statusText: string;
  httpVersion: string;
  cookies: HarCookie[];
  headers: HarNameValue[];
  content: HarContent;
  redirectURL: string;
  headersSize: number;
  bodySize: number;
  _trailers?: HarNameValue[];
  /** Chrome's field for a request that got no response: a short text of why. */
  _error?: string;
}

export interface HarTimings {
  blocked: number;
  dns: number;
  connect: number;
  send: number;
  wait: number;
  receive: number;
  ssl: number;
}

/** Chrome's `_webSocketMessages` item. */
export interface HarWebSocketMessage {
  type: 'send' | 'receive';
  /** Epoch seconds with fractions. */
  time: number;
  opcode: number;
  /** Text as is for text messages (opcode 1), base64 otherwise. */
  data: string;
  /** Only the start of the payload was stored. */
  _truncated?: true;
}

/** `_webSocket`: the socket's setup and end, when the store recorded it. */
export interface HarWebSocket {
  subprotocol: string | null;
  extensions: string | null;
  closedBy: Side | null;
  closeCode: number | null;
  closeReason: string | null;
  /** Null while open. */
  clean: boolean | null;
  messagesFromClient: number | null;
  messagesFromServer: number | null;
  error: HarFailure | null;
}

export interface HarTlsLeg {
  sni: string | null;
  alpnOffered: string[];
  alpn: string | null;
  version: string | null;
  cipher: string | null;
  handshakeMs: number | null;
  certificates: CertificateInfo[];
  error: HarFailure | null;
}

export interface HarFailure {
  reason: FailureReason;
  message: string;
  code?: string;
}

export type HarErrorSource = 'exchange' | 'connection' | 'tls-client' | 'tls-upstream' | 'decoder' | 'websocket';

export interface HarError extends HarFailure {
  source: HarErrorSource;
  /** For `decoder`: which decoder gave up, and on whose bytes. */
  decoder?: string;
  side?: Side;
}

export interface HarEntry {
  pageref?: string;
  startedDateTime: string;
  time: number;
  request: HarRequest;
  response: HarResponse;
  cache: Record<string, never>;
  timings: HarTimings;
  serverIPAddress?: string;
  connection?: string;
  _exchangeId: number;
  _streamId: number | null;
  _state: ExchangeState;
  _protocols: { client: HttpProtocol; upstream: HttpProtocol | null };
  /** The front door the connection came through (`proxy`, `proxy-tls`, `socks`, `reverse`). */
  _listener: string | null;
  _tunnel: { host: string; port: number; via: TunnelVia; intercepted: boolean | null } | null;
  /** Where hopscope sent the request when that is not the request's URL (the reverse proxy). */
  _upstreamUrl: string | null;
  _tls: { client: HarTlsLeg | null; upstream: HarTlsLeg | null };
  _errors: HarError[];
  _resourceType?: 'websocket';
  _webSocket?: HarWebSocket;
  /** Always the last field of an entry (the writer streams it). */
  _webSocketMessages?: HarWebSocketMessage[];
}

export interface HarCreator {
  name: string;
  version: string;
}
