// The capture event union: the one contract between the proxy core, the store and the inspector.
// Events are facts: past tense, immutable once emitted. The bus stamps `seq` (monotonic) and
// `time` (epoch milliseconds, sub-millisecond precision) on emit.
// The UI imports these with `import type` only; never keep a copy elsewhere.

/** Raw header list in wire order, names and values exactly as sent (case, duplicates). */
export type HeaderList = Array<[name: string, value: string]>;

/** Which peer sent the bytes: the client (towards upstream) or the server (towards the client). */
export type Side = 'client' | 'server';

/** The two TLS legs of an intercepted connection. */
export type TlsLeg = 'client' | 'upstream';

/** Small, stable taxonomy of why something failed. */
export type FailureReason =
  | 'dns' // the upstream host name did not resolve
  | 'refused' // the upstream refused the TCP connection
  | 'unreachable' // no route to the upstream
  | 'timeout' // the upstream did not connect or answer in time
  | 'reset' // a peer reset the connection
  | 'aborted' // a peer went away mid-message
  | 'bad-request' // the client sent something that is not valid HTTP or a valid target
  | 'headers-too-large' // the header block was over the limit
  | 'cert-rejected' // the client rejected hopscope's certificate
  | 'upstream-cert' // the upstream's certificate failed verification
  | 'tls' // any other TLS handshake failure
  | 'closed' // closed before the exchange or handshake completed
  | 'decode' // a passive decoder gave up on the stream
  | 'internal'; // a bug in hopscope: should never happen

export interface Failure {
  reason: FailureReason;
  /** Human-readable detail, e.g. the errno or TLS alert text. */
  message: string;
  /** Machine code where one exists (errno like ECONNREFUSED, TLS alert, decoder code). */
  code?: string;
}

/** What the first bytes inside a connection or tunnel turned out to be. */
export type DetectedProtocol = 'tls' | 'http1' | 'h2c' | 'opaque';

/** Parsed from a TLS ClientHello without decrypting anything. */
export interface ClientHelloInfo {
  sni: string | null;
  alpn: string[];
  /** legacy_version from the hello, e.g. 0x0303 */
  version: number;
  /** TLS versions from the supported_versions extension, if any. */
  supportedVersions: number[];
}

export interface CertificateInfo {
  subject: string;
  issuer: string;
  /** Subject alternative names, as `DNS:name` / `IP Address:addr` like Node prints them. */
  sans: string[];
  validFrom: string;
  validTo: string;
  fingerprint256: string;
  serialNumber: string;
}

interface EventBase {
  /** Monotonic sequence number, stamped by the bus. */
  seq: number;
  /** Epoch milliseconds when the fact happened, stamped by the bus unless given. */
  time: number;
}

// ---- connections ---------------------------------------------------------------------------

export interface ConnOpened extends EventBase {
  kind: 'conn.opened';
  connId: number;
  /** A tunnel opened inside another connection (e.g. an HTTP/2 CONNECT stream) names its parent. */
  parentId: number | null;
  /**
   * Which front door accepted it: `proxy` (the proxy port), `proxy-tls` (the HTTPS proxy port),
   * `socks` (the SOCKS-only port), `reverse` (a reverse-proxy listener).
   */
  listener: string;
  clientAddress: string;
  clientPort: number;
}

/** How a client asked for a tunnel. */
export type TunnelVia = 'connect' | 'socks5' | 'h2-connect';

/** The client asked for a tunnel (CONNECT host:port) or the target otherwise became known. */
export interface ConnTunnelRequested extends EventBase {
  kind: 'conn.tunnel';
  connId: number;
  host: string;
  port: number;
  /** HTTP/1.1 CONNECT (the default when absent), a SOCKS5 CONNECT, or an HTTP/2 CONNECT stream. */
  via?: TunnelVia;
  /** The proxy-authentication user name the client presented, when authentication is on. */
  user?: string | null;
  /** The CONNECT request as the client sent it (target and headers), for the handshake view. */
  target: string;
  headers: HeaderList;
}

/** The upstream TCP connection of a tunnel is up. */
export interface ConnUpstreamConnected extends EventBase {
  kind: 'conn.upstream';
  connId: number;
  remoteAddress: string;
  remotePort: number;
  /** Milliseconds spent resolving the name (0 when mapped or literal). */
  dnsMs: number;
  connectMs: number;
}

/** What the first bytes from the client turned out to be. */
export interface ConnDetected extends EventBase {
  kind: 'conn.detected';
  connId: number;
  protocol: DetectedProtocol;
  hello: ClientHelloInfo | null;
  /** True when a TLS tunnel will be decrypted (intercepted), false for passthrough. */
  intercepted: boolean;
}

export interface ConnClosed extends EventBase {
  kind: 'conn.closed';
  connId: number;
  /** Bytes received from the client and from the server side over the connection's life. */
  bytesFromClient: number;
  bytesFromServer: number;
  error: Failure | null;
}

// ---- TLS -----------------------------------------------------------------------------------

export interface TlsEstablished extends EventBase {
  kind: 'tls.established';
  connId: number;
  leg: TlsLeg;
  sni: string | null;
  alpnOffered: string[];
  alpn: string | null;
  version: string;
  cipher: string;
  handshakeMs: number;
  /** The certificate chain the peer presented (upstream leg) or hopscope presented (client leg). */
  certificates: CertificateInfo[];
}

export interface TlsFailed extends EventBase {
  kind: 'tls.failed';
  connId: number;
  leg: TlsLeg;
  sni: string | null;
  alpnOffered: string[];
  error: Failure;
  certificates: CertificateInfo[];
}

// ---- HTTP exchanges (HTTP/1.x and, later, HTTP/2 streams) ------------------------------------

/** `SOCKS5` only on the exchange that stands for a SOCKS5 CONNECT that failed (net/failed-tunnels.ts). */
export type HttpProtocol = 'HTTP/1.0' | 'HTTP/1.1' | 'h2' | 'h2c' | 'SOCKS5';

export interface HttpRequestStarted extends EventBase {
  kind: 'http.request';
  exchangeId: number;
  connId: number;
  /** HTTP/2 stream id; null for HTTP/1. */
  streamId: number | null;
  protocol: HttpProtocol;
  method: string;
  /** The request target exactly as sent (origin-form, absolute-form, …). */
  target: string;
  /** Absolute URL reconstructed from the target, scheme and Host. */
  url: string;
  scheme: 'http' | 'https';
  host: string;
  port: number;
  headers: HeaderList;
  /**
   * Where hopscope sent the request when that is not `url`: the reverse proxy's upstream (its rule's
   * origin and the request's path). Absent elsewhere.
   */
  upstreamUrl?: string;
}

export interface HttpResponseStarted extends EventBase {
  kind: 'http.response';
  exchangeId: number;
  protocol: HttpProtocol;
  status: number;
  statusText: string;
  headers: HeaderList;
  /** Upstream peer the response came from, when hopscope dialled it for this exchange. */
  remoteAddress?: string;
  remotePort?: number;
}

/** A slice of a de-framed body (no chunk framing). Only the store keeps these, up to its cap. */
export interface HttpBodyChunk extends EventBase {
  kind: 'http.body';
  exchangeId: number;
  side: Side;
  chunk: Uint8Array;
}

export interface HttpTrailers extends EventBase {
  kind: 'http.trailers';
  exchangeId: number;
  side: Side;
  headers: HeaderList;
}

/** Timing points of one exchange in epoch ms; null where not measured. */
export interface ExchangeTimings {
  dnsMs: number | null;
  connectMs: number | null;
  tlsMs: number | null;
  /** Request fully sent (last body byte) */
  requestEnd: number | null;
  /** First byte of the response head */
  responseStart: number | null;
}

export interface HttpCompleted extends EventBase {
  kind: 'http.completed';
  exchangeId: number;
  /** De-framed body sizes actually seen. */
  requestBodySize: number;
  responseBodySize: number;
  timings: ExchangeTimings;
}

export interface HttpFailed extends EventBase {
  kind: 'http.failed';
  exchangeId: number;
  error: Failure;
  requestBodySize: number;
  responseBodySize: number;
  timings: ExchangeTimings;
}

// ---- decoders ------------------------------------------------------------------------------

/** A passive decoder gave up on a stream; the relay carries on, the tap counts bytes only. */
export interface DecodeFailed extends EventBase {
  kind: 'decode.failed';
  connId: number;
  /** Which decoder, e.g. `http1`, `h2`, `hpack`, `ws`. */
  decoder: string;
  side: Side;
  code: string;
  message: string;
}

// ---- WebSocket -------------------------------------------------------------------------------
// A WebSocket is named by its handshake exchange (the 101, or the 2xx to an RFC 8441 CONNECT).
// Messages are numbered per WebSocket in the order their first frame went over the wire.

/** permessage-deflate as agreed for the messages one side sends (RFC 7692). */
export interface WsDeflateParams {
  noContextTakeover: boolean;
  maxWindowBits: number;
}

/** The handshake switched to WebSocket; decoding starts with what it negotiated. */
export interface WsOpened extends EventBase {
  kind: 'ws.opened';
  exchangeId: number;
  connId: number;
  /** Sec-WebSocket-Protocol the server chose, if any. */
  subprotocol: string | null;
  /** Sec-WebSocket-Extensions of the response as sent, if any. */
  extensions: string | null;
  /** permessage-deflate per sender when it was agreed, else null. */
  deflate: { client: WsDeflateParams; server: WsDeflateParams } | null;
}

/**
 * One frame of a message as it went over the wire (its payload belongs to the message). Frames
 * travel inside their message's event: one event per message, not one per frame as well.
 */
export interface WsFrameHeader {
  /** Epoch milliseconds when the frame was complete. */
  time: number;
  fin: boolean;
  rsv1: boolean;
  rsv2: boolean;
  rsv3: boolean;
  opcode: number;
  masked: boolean;
  /** The 4-byte masking key as 8 hex digits, null when not masked. */
  maskKey: string | null;
  /** Payload length as declared on the wire. */
  payloadLength: number;
  /** Header plus payload bytes. */
  wireSize: number;
}

/** A whole message (data frames joined, or one control frame), decoded; `time` is its last frame. */
export interface WsMessageDecoded extends EventBase {
  kind: 'ws.message';
  exchangeId: number;
  connId: number;
  side: Side;
  /** Per WebSocket, from 0, in the order the messages' first frames were seen (both sides). */
  messageIndex: number;
  opcode: number;
  /** False only for a message left unfinished when its side ended. */
  fin: boolean;
  frames: number;
  /** Header and payload bytes of all its frames. */
  wireSize: number;
  /** Payload bytes on the wire (compressed when `compressed`). */
  payloadSize: number;
  /** Payload bytes after inflating (equal to payloadSize when not compressed). */
  decodedSize: number;
  /** RSV1 under permessage-deflate: the payload was inflated. */
  compressed: boolean;
  /** The decoded payload, at most the body capture limit. */
  payload: Uint8Array;
  /** True when `payload` holds less than the decoded message. */
  truncated: boolean;
  /** Text messages (and close reasons): whether the bytes are valid UTF-8; null otherwise. */
  utf8Valid: boolean | null;
  /** Close messages: the code (null when the frame had no payload) and reason. */
  closeCode: number | null;
  closeReason: string | null;
  /** Its frames in wire order (the first 1,024; `frames` counts them all). The tap always sets it. */
  frameHeaders?: WsFrameHeader[];
}

/** The WebSocket ended: how, and what went over it. */
export interface WsClosed extends EventBase {
  kind: 'ws.closed';
  exchangeId: number;
  connId: number;
  /** Who sent the first close frame; null when neither did (or decoding had stopped). */
  closedBy: Side | null;
  closeCode: number | null;
  closeReason: string | null;
  /** Both sides sent a close frame (the closing handshake completed). */
  clean: boolean;
  /**
   * Why it ended without a close frame, or abnormally: `reset`/`tls` from the transport, `closed`
   * (a side ended the connection without a close frame), `aborted` (mid-frame or mid-message),
   * `decode` (the tap stopped decoding; see decode.failed). Null when a close frame ended it.
   */
  error: Failure | null;
  messagesFromClient: number;
  messagesFromServer: number;
  /** Bytes after the handshake, per sender. */
  bytesFromClient: number;
  bytesFromServer: number;
}

// ---- HTTP/2 ----------------------------------------------------------------------------------
// Each HTTP/2 stream is an exchange (http.* events with streamId and protocol h2/h2c); these events
// show the framing underneath: every frame per side, as it went over the wire.

export type H2HeaderRepresentation = 'indexed' | 'literal-incremental' | 'literal-without-indexing' | 'literal-never-indexed';

/** One field of a decoded header block, with how the HPACK encoder sent it (RFC 7541 §6). */
export interface H2HeaderField {
  name: string;
  value: string;
  representation: H2HeaderRepresentation;
  /** Table index of the field (indexed) or of its name (a literal with an indexed name). */
  index?: number;
  /** The literal value was Huffman-coded. */
  huffman?: boolean;
  /** The literal name was Huffman-coded (literal names only). */
  nameHuffman?: boolean;
}

/** A header block (HEADERS or PUSH_PROMISE plus CONTINUATIONs) after HPACK. */
export interface H2HeaderBlock {
  /** In wire order, pseudo-headers included. */
  fields: H2HeaderField[];
  /** Dynamic table size updates at the start of the block. */
  tableSizeUpdates: number[];
  /** RFC 9113 §6.5.2 size: name + value + 32 per field. */
  headerListSize: number;
  /** Octets of the encoded block. */
  size: number;
  /** Frames that carried it (1 when no CONTINUATION). */
  frames: number;
  /** The decoder's dynamic table size after the block. */
  dynamicTableSize: number;
}

export interface H2Priority {
  exclusive: boolean;
  streamDependency: number;
  /** 1..256 */
  weight: number;
}

/** The decoded fields of a frame; which ones are present depends on the type. */
export interface H2FrameDetails {
  /** HEADERS with the PRIORITY flag, PRIORITY. */
  priority?: H2Priority;
  /** HEADERS, PUSH_PROMISE, CONTINUATION: header block bytes in this frame. */
  fragmentLength?: number;
  /** On the HEADERS or PUSH_PROMISE frame that started the block, once the block is complete. */
  headerBlock?: H2HeaderBlock;
  /** PUSH_PROMISE */
  promisedStreamId?: number;
  /** RST_STREAM, GOAWAY */
  errorCode?: number;
  errorName?: string;
  /** GOAWAY */
  lastStreamId?: number;
  /** GOAWAY debug data as UTF-8 text (at most 1 KiB of it), and its full length. */
  debugData?: string;
  debugDataLength?: number;
  /** SETTINGS, in wire order, duplicates kept. */
  settings?: Array<{ id: number; name: string; value: number }>;
  /** PING opaque data, 16 hex digits. */
  pingData?: string;
  /** WINDOW_UPDATE */
  increment?: number;
  /** Unknown and extension types: the first 64 payload bytes in hex. */
  payloadHex?: string;
}

/** One HTTP/2 frame as it went over the wire. DATA payloads belong to the exchange's body. */
export interface H2FrameSeen extends EventBase {
  kind: 'h2.frame';
  connId: number;
  side: Side;
  streamId: number;
  type: number;
  /** `DATA`, `HEADERS`, …, a registered extension (`ALTSVC`, `ORIGIN`, …) or `UNKNOWN_0xfa`. */
  typeName: string;
  flags: number;
  flagNames: string[];
  /** Payload length from the frame header, padding included. */
  length: number;
  /** The Pad Length octet when PADDED, else null. */
  padLength: number | null;
  /** Null for DATA and SETTINGS ACK, which carry nothing more than the header says. */
  details: H2FrameDetails | null;
}

/** A PUSH_PROMISE opened a pushed exchange (its request is the promise) on `promisedStreamId`. */
export interface H2PushPromised extends EventBase {
  kind: 'h2.push';
  connId: number;
  /** The pushed exchange. */
  exchangeId: number;
  promisedStreamId: number;
  /** The stream the promise was sent on and its exchange (null when that stream was unknown). */
  streamId: number;
  parentExchangeId: number | null;
}

export type CaptureEvent =
  | ConnOpened
  | ConnTunnelRequested
  | ConnUpstreamConnected
  | ConnDetected
  | ConnClosed
  | TlsEstablished
  | TlsFailed
  | HttpRequestStarted
  | HttpResponseStarted
  | HttpBodyChunk
  | HttpTrailers
  | HttpCompleted
  | HttpFailed
  | DecodeFailed
  | WsOpened
  | WsMessageDecoded
  | WsClosed
  | H2FrameSeen
  | H2PushPromised;

export type CaptureEventKind = CaptureEvent['kind'];

/** An event as a producer hands it to the bus: seq is always stamped there, time when absent. */
export type NewCaptureEvent = CaptureEvent extends infer E
  ? E extends CaptureEvent
    ? Omit<E, 'seq' | 'time'> & { time?: number }
    : never
  : never;
