// One exchange (with its connection) as one HAR entry. Pure: no database, no I/O.
import type { HeaderList, HttpProtocol } from '../capture/events.js';
import type { ConnectionDetail, ExchangeDetail, StoredBody, TlsLegDetail } from '../store/row-types.js';
import { bodyText, headerValue, mediaType, removeContentEncoding } from './har-content.js';
import { requestCookies, responseCookies } from './har-cookies.js';
import { harTimings } from './har-timings.js';
import type { HarContent, HarEntry, HarError, HarNameValue, HarPostData, HarTlsLeg, HarWebSocketMessage } from './har-types.js';
import { harWebSocket, type WebSocketInfo } from './ws-messages.js';

export interface HarEntryContext {
  /** The connection the exchange travelled on (TLS legs, tunnel, errors); null when unknown. */
  connection: ConnectionDetail | null;
  /** The WebSocket the exchange opened, if it did. */
  webSocket?: WebSocketInfo | null;
  /** Its messages (the writer streams them instead and leaves this empty). */
  webSocketMessages?: HarWebSocketMessage[];
}

export function toHarEntry(ex: ExchangeDetail, ctx: HarEntryContext): HarEntry {
  const { timings, time } = harTimings(ex);
  const conn = ctx.connection;
  const entry: HarEntry = {
    startedDateTime: new Date(ex.startedAt).toISOString(),
    time,
    request: {
      method: ex.method,
      url: ex.url,
      httpVersion: httpVersion(ex.protocol),
      cookies: requestCookies(ex.requestHeaders),
      headers: nameValues(ex.requestHeaders),
      queryString: queryString(ex.url),
      headersSize: headersSize(ex.protocol, `${ex.method} ${ex.target} ${ex.protocol}`, ex.requestHeaders),
      bodySize: ex.requestBodySize ?? ex.requestBody?.size ?? 0,
    },
    response: {
      status: ex.status ?? 0,
      statusText: ex.statusText ?? '',
      httpVersion: ex.responseProtocol ? httpVersion(ex.responseProtocol) : '',
      cookies: responseCookies(ex.responseHeaders, ex.responseStartAt ?? ex.startedAt),
      headers: nameValues(ex.responseHeaders ?? []),
      content: content(ex),
      redirectURL: headerValue(ex.responseHeaders, 'location') ?? '',
      headersSize:
        ex.responseProtocol && ex.status !== null
          ? headersSize(ex.responseProtocol, `${ex.responseProtocol} ${ex.status} ${ex.statusText ?? ''}`, ex.responseHeaders ?? [])
          : -1,
      bodySize: ex.status === null ? -1 : (ex.responseBodySize ?? ex.responseBody?.size ?? 0),
    },
    cache: {},
    timings,
    _exchangeId: ex.id,
    _streamId: ex.streamId,
    _state: ex.state,
    _protocols: { client: ex.protocol, upstream: ex.responseProtocol },
    _listener: conn?.listener ?? null,
    _tunnel: conn?.tunnel ? { host: conn.tunnel.host, port: conn.tunnel.port, via: conn.tunnel.via, intercepted: conn.intercepted } : null,
    _upstreamUrl: ex.upstreamUrl ?? null,
    _tls: { client: tlsLeg(conn?.tls.client ?? null), upstream: tlsLeg(conn?.tls.upstream ?? null) },
    _errors: errors(ex, conn),
  };
  const postData = requestPostData(ex);
  if (postData) entry.request.postData = postData;
  if (ex.requestTrailers) entry.request._trailers = nameValues(ex.requestTrailers);
  if (ex.responseTrailers) entry.response._trailers = nameValues(ex.responseTrailers);
  if (ex.error) entry.response._error = `${ex.error.reason}: ${ex.error.message}`;
  const server = serverAddress(ex, conn);
  if (server) entry.serverIPAddress = server;
  entry.connection = String(ex.connectionId);
  if (ctx.webSocket) {
    entry._resourceType = 'websocket';
    if (ctx.webSocket.row) entry._webSocket = harWebSocket(ctx.webSocket.row);
    if (ctx.webSocket.row?.error) entry._errors.push({ source: 'websocket', ...ctx.webSocket.row.error });
    entry._webSocketMessages = ctx.webSocketMessages ?? []; // last: the writer streams into it
  }
  return entry;
}

/** As browsers write it: `HTTP/1.1`, and Chrome's `http/2.0` for HTTP/2. */
export function httpVersion(protocol: HttpProtocol): string {
  return protocol === 'h2' || protocol === 'h2c' ? 'http/2.0' : protocol;
}

function nameValues(headers: HeaderList): HarNameValue[] {
  return headers.map(([name, value]) => ({ name, value }));
}

/**
 * The size of an HTTP/1 head in the usual `Name: value` layout (hopscope keeps names, values and
 * order, not the spacing). -1 for HTTP/2, whose HPACK-coded size the exchange does not record.
 */
function headersSize(protocol: HttpProtocol, startLine: string, headers: HeaderList): number {
  if (protocol === 'h2' || protocol === 'h2c') return -1;
  let size = Buffer.byteLength(startLine, 'latin1') + 4; // CRLF after the start line and after the block
  for (const [name, value] of headers) size += Buffer.byteLength(name, 'latin1') + Buffer.byteLength(value, 'latin1') + 4;
  return size;
}

function queryString(url: string): HarNameValue[] {
  const q = url.indexOf('?');
  if (q < 0) return [];
  const hash = url.indexOf('#', q);
  const query = url.slice(q + 1, hash < 0 ? undefined : hash);
  return [...new URLSearchParams(query)].map(([name, value]) => ({ name, value }));
}

function requestPostData(ex: ExchangeDetail): HarPostData | null {
  const body = ex.requestBody;
  if (!body && !ex.requestBodySize) return null;
  const contentType = headerValue(ex.requestHeaders, 'content-type');
  // Bytes seen but none stored: they were not kept (body cap 0, or the store fell behind).
  const stored = body ?? { data: Buffer.alloc(0), size: ex.requestBodySize ?? 0, truncated: true };
  const decoded = removeContentEncoding(stored, ex.requestHeaders);
  const postData: HarPostData = { mimeType: contentType ?? '', text: '' };
  // Bytes that still carry a content coding are binary whatever the media type says.
  const { text, base64 } = decoded.stillEncoded
    ? { text: decoded.data.toString('base64'), base64: decoded.data.length > 0 }
    : bodyText(decoded.data, contentType);
  postData.text = text;
  if (base64) postData._encoding = 'base64';
  if (decoded.stillEncoded) postData._contentEncoding = decoded.stillEncoded;
  else if (!base64 && mediaType(contentType) === 'application/x-www-form-urlencoded') {
    postData.params = [...new URLSearchParams(text)].map(([name, value]) => ({ name, value }));
  }
  if (stored.truncated) postData._truncated = true;
  return postData;
}

function content(ex: ExchangeDetail): HarContent {
  const mimeType = ex.responseContentType ?? '';
  const body: StoredBody | null = ex.responseBody;
  const wireSize = ex.responseBodySize ?? body?.size ?? 0;
  if (!body) {
    const c: HarContent = { size: wireSize, mimeType };
    // No stored bytes although some were seen: they were not kept (cap 0 or the store fell behind).
    if (wireSize > 0) Object.assign(c, { text: '', _truncated: true as const });
    return c;
  }
  const decoded = removeContentEncoding(body, ex.responseHeaders);
  const c: HarContent = { size: decoded.stillEncoded ? wireSize : decoded.data.length, mimeType };
  if (decoded.stillEncoded) {
    c.text = decoded.data.toString('base64');
    c.encoding = 'base64';
    c._contentEncoding = decoded.stillEncoded;
  } else {
    const { text, base64 } = bodyText(decoded.data, mimeType);
    c.text = text;
    if (base64) c.encoding = 'base64';
    if (decoded.data !== body.data) c.compression = decoded.data.length - wireSize;
  }
  if (body.truncated) c._truncated = true;
  return c;
}

function tlsLeg(leg: TlsLegDetail | null): HarTlsLeg | null {
  if (!leg) return null;
  return {
    sni: leg.sni,
    alpnOffered: leg.alpnOffered,
    alpn: leg.alpn,
    version: leg.version,
    cipher: leg.cipher,
    handshakeMs: leg.handshakeMs,
    certificates: leg.certificates,
    error: leg.error,
  };
}

function errors(ex: ExchangeDetail, conn: ConnectionDetail | null): HarError[] {
  const list: HarError[] = [];
  if (ex.error) list.push({ source: 'exchange', ...ex.error });
  if (conn?.tls.client?.error) list.push({ source: 'tls-client', ...conn.tls.client.error });
  if (conn?.tls.upstream?.error) list.push({ source: 'tls-upstream', ...conn.tls.upstream.error });
  for (const d of conn?.decodeErrors ?? []) {
    list.push({ source: 'decoder', reason: 'decode', message: d.message, code: d.code, decoder: d.decoder, side: d.side });
  }
  if (conn?.error) list.push({ source: 'connection', ...conn.error });
  return list;
}

function serverAddress(ex: ExchangeDetail, conn: ConnectionDetail | null): string | null {
  const address = ex.remoteAddress ?? conn?.upstream?.remoteAddress ?? null;
  if (!address) return null;
  return address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
}
