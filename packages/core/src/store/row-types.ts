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
